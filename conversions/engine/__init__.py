"""The conversion engine: plain Python, no Django.

The CLI commands, the RQ jobs and the tests all call these modules; each module is one pipeline stage:

- ``model_loading``        checkpoint + architecture -> eval-mode ``nn.Module`` (or exported program)
- ``representative_data``  dataset folder -> detected layout, seeded sample, preprocessed stream
- ``onnx_export``          ``nn.Module`` -> ONNX file
- ``tf_convert``           ONNX -> TensorFlow SavedModel through onnx2tf, trying fallback routes
- ``tflite_export``        SavedModel -> float32 / float16 / dynamic / int8 / int16x8 ``.tflite``
- ``verify``               run ``.tflite`` in the interpreter: fidelity, latency, integer-only audit
- ``pipeline``             the one public entry that strings the stages together
"""
