"""The models that ship with facecli (ONNX files with their model card in the metadata; see README.md here)."""
