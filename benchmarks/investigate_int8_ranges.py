"""Why a model's int8 sits where it does: ranges, calibration size, per-layer error, the metric itself.

    nice -n 10 .venv/bin/python benchmarks/investigate_int8_ranges.py [--model tv_mobilenet_v2] [--calib 25,100,176]

Same images as ``bench_fidelity.py`` (the mirrored photo crops, 400 held out). Prints:
1. fidelity of min/max, percentile and mse ranges from one calibration pass, per calibration size;
2. agreement split by PyTorch's own top-1 margin (is the metric measuring quantization or coin flips?);
3. the per-layer error table (``int8/layer_error.py``) of min/max and percentile, worst ops first;
4. a per-tensor choice between min/max and percentile by each op's added noise on calibration images.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_fidelity import mirrored_photos, photo_case  # noqa: E402
from conversions.engine.config import ExportConfig  # noqa: E402
from conversions.engine.convert.onnx_export import export_onnx  # noqa: E402
from conversions.engine.convert.tf_routes import convert_to_tf, set_quiet_tf_logging  # noqa: E402
from conversions.engine.data.run_inputs import calibration_stream, prepare_data  # noqa: E402
from conversions.engine.int8 import ranges as cr  # noqa: E402
from conversions.engine.int8.build import first_samples  # noqa: E402
from conversions.engine.int8.layer_error import layer_errors  # noqa: E402
from conversions.engine.model.loading import load_model  # noqa: E402
from conversions.engine.progress import NullProgress  # noqa: E402
from conversions.engine.tensors import to_tf_layout  # noqa: E402
from conversions.engine.verify.interpreter import TFLiteModel, predict_many  # noqa: E402
from conversions.engine.verify.metrics import as_probabilities, fidelity  # noqa: E402


def show(label: str, ref: np.ndarray, model: bytes, eval_tf: np.ndarray) -> np.ndarray:
    out = predict_many(TFLiteModel(model), eval_tf)[0]
    f = fidelity(ref, out)
    print(f"| {label} | {f.top1_agreement} | {f.confident_top1_agreement} ({f.confident_samples}) | {f.sqnr_db} |", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tv_mobilenet_v2")
    parser.add_argument("--calib", default="100")
    parser.add_argument("--eval", type=int, default=400)
    args = parser.parse_args()
    set_quiet_tf_logging()
    with tempfile.TemporaryDirectory(prefix="investigate-") as tmp:
        work = Path(tmp)
        photos = mirrored_photos(work / "photos")
        graph = None
        for calib in [int(c) for c in args.calib.split(",")]:
            case = photo_case(args.model, work, photos, calib, args.eval)
            loaded = load_model(case.spec)
            data = prepare_data(ExportConfig(model=case.spec, data=case.data), loaded, NullProgress())
            x = data.evaluation.inputs_nchw
            with torch.no_grad():
                ref = torch.cat([loaded.module(torch.from_numpy(x[i : i + 16])) for i in range(0, len(x), 16)]).numpy()
            if graph is None:
                graph = convert_to_tf(export_onnx(loaded.module, loaded.input_shape, work / "m.onnx"), work, x)
            eval_tf = to_tf_layout(x, graph.input_layout)
            stream = calibration_stream(data, graph.input_layout)
            cal = cr.calibrate(graph.float32_model, stream, "percentile")
            _, _, inputs = cr.read_ranges(cal.calibrated)
            print(f"\n{args.model}, {cal.samples} calibration images, {len(x)} held out\n")
            print("| ranges | top-1 agree % | confident % (n) | SQNR dB |\n| --- | ---: | ---: | ---: |")
            minmax = cr.quantize(cal.calibrated)
            percentile = cr.quantize(cal.model)
            mse = cr.quantize(cr.with_ranges(cal.calibrated, cr.choose_ranges(cal.minmax, cal.histograms, "mse", skip=inputs)))
            out_mm = show("minmax", ref, minmax, eval_tf)
            show("percentile 99.99", ref, percentile, eval_tf)
            show("mse", ref, mse, eval_tf)
            six = [i for i, (lo, hi) in cal.minmax.items() if abs(hi - 6.0) < 1e-3]
            cut = [i for i in six if cal.ranges[i][1] < 6.0 - 1e-3]
            print(f"\nReLU6 outputs whose min/max reach 6: {len(six)}; narrowed below 6 by percentile: {len(cut)}")

        probs = as_probabilities(ref)
        top2 = np.sort(probs, axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        agree = ref.argmax(1) == out_mm.argmax(1)
        print("\n| PyTorch top-1 margin (p1 - p2) | images | minmax top-1 agree % |\n| --- | ---: | ---: |")
        for lo, hi in ((0, 0.05), (0.05, 0.2), (0.2, 0.5), (0.5, 1.01)):
            sel = (margin >= lo) & (margin < hi)
            print(f"| {lo}-{min(hi, 1)} | {sel.sum()} | {100 * agree[sel].mean() if sel.any() else float('nan'):.1f} |")

        samples = first_samples(stream, 32)
        tables = {}
        for label, model in (("minmax", minmax), ("percentile", percentile)):
            tables[label] = layer_errors(graph.float32_model or cal.calibrated, model, samples[16:32], graph.onnx_path,
                                         graph.input_layout, source="calibration images 16-31")  # fmt: skip
        mm, pc = ({r.name: r for r in t.ops} for t in (tables["minmax"], tables["percentile"]))
        print("\n| op (worst 10 under minmax) | minmax SQNR / added dB | percentile SQNR / added dB | float range |")
        print("| --- | ---: | ---: | --- |")
        for r in tables["minmax"].worst(10):
            p = pc.get(r.name)
            print(f"| #{r.depth} {r.op} {r.label} | {r.sqnr_db} / {r.added_noise_db} | "
                  f"{p.sqnr_db if p else '-'} / {p.added_noise_db if p else '-'} | [{r.float_min}, {r.float_max}] |")  # fmt: skip
        last = tables["minmax"].ops[-1]
        print(f"\nlast op {last.op} {last.label}: minmax {last.sqnr_db} dB, percentile {pc[last.name].sqnr_db} dB")

        # 4. per tensor, the range whose op adds less noise (on calibration images, never the held-out ones)
        index = {name: i for i, name in cal.names.items()}
        chosen = dict(cal.ranges)
        picked_minmax = 0
        for name, r in mm.items():
            p = pc.get(name)
            i = index.get(name)
            if i is None or p is None or r.added_noise_db is None or p.added_noise_db is None:
                continue
            if r.added_noise_db < p.added_noise_db:
                chosen[i] = cal.minmax[i]
                picked_minmax += 1
        print(f"\nper-tensor choice: {picked_minmax} of {len(mm)} op outputs take min/max\n")
        print("| ranges | top-1 agree % | confident % (n) | SQNR dB |\n| --- | ---: | ---: | ---: |")
        show("per-tensor choice by added noise", ref, cr.quantize(cr.with_ranges(cal.calibrated, chosen)), eval_tf)


if __name__ == "__main__":
    main()
