"""ai-edge-quantizer's ``static_wi8_ai8`` recipe on a float32 .tflite, calibrated on .npy samples.

Runs in its own venv, never the project's: ai-edge-quantizer 0.4.2 pins ai-edge-litert 2.1.2 and numpy 2,
the project's onnx2tf pins ai-edge-litert 2.1.0 and numpy 1.26.4. ``benchmarks/bench_fidelity.py`` calls it::

    /work/venv-aeq/bin/python benchmarks/peers/aeq_quantize.py FLOAT.tflite CALIB.npy OUT.tflite

``CALIB.npy`` holds the calibration samples stacked on axis 0, each in the model's input layout (batch 1).
Prints one JSON line: the signature and input used, the sample count and the seconds spent.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def main(float_path: str, calib_path: str, out_path: str) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    started = time.perf_counter()
    signatures = Interpreter(model_path=float_path).get_signature_list()
    key = next(iter(signatures))  # a converted concrete function has one signature
    (input_name,) = signatures[key]["inputs"]
    samples = np.load(calib_path).astype(np.float32)
    qt = quantizer.Quantizer(float_path, recipe.static_wi8_ai8())
    result = qt.calibrate({key: [{input_name: s[None]} for s in samples]})
    qt.quantize(result).export_model(out_path, overwrite=True)
    print(json.dumps({"signature": key, "input": input_name, "samples": len(samples),
                      "seconds": round(time.perf_counter() - started, 2)}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
