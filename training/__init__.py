"""Training side of facecli: data, augmentation, model factory, losses, training loop and ONNX export."""
