"""nn.Module -> ONNX -> TensorFlow -> one .tflite variant (see ``conversions.engine`` for the map)."""
