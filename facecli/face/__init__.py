"""Faces: detection, alignment and the model's view of an image, in one place.

- :mod:`facecli.face.detectors`: the :class:`~facecli.face.detectors.FaceDetector` protocol and the registry
  that the preprocessing record's ``detect`` names a detector from;
- :mod:`facecli.face.mtcnn`: the shipped detector (MTCNN in ONNX Runtime) and the constants measured with it;
- :mod:`facecli.face.align`: landmark templates and the similarity warp onto them;
- :mod:`facecli.face.preprocess`: :class:`~facecli.face.preprocess.Preprocessing`, the one record of how an
  image becomes a model input, read by training, export and inference alike.
"""
