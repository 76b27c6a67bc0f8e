"""Accuracy guard figures: activation-range methods, the guard's runs, and end-to-end vs per-layer ranking.

    .venv/bin/python benchmarks/bench_accuracy_guard.py [--seeds 0,1,2] [--skip-lite0]

Models: the bundled EfficientNet-Lite0 (ImageNet weights) and the test model with a planted outlier range
(``tests/support/spiky_model.py``, 1x3x32x32). Data: the bundled photo crops (``demo/photos/crops``,
288 images); each seed draws 100 for calibration and the other 188 as held-out evaluation images. Fidelity is
measured against PyTorch on the held-out images: top-1 agreement on all of them, on the ones PyTorch
classifies with p >= 0.5 ("confident"), and SQNR of the logits.

1. Ranges: one calibration pass per (model, seed); minmax / percentile / mse models quantized from it.
2. The guard as ``export_models --max-drop 1`` runs it (``run_export``), its time and what it did.
3. Ranking (EfficientNet-Lite0, minmax ranges, seed 0): keep N ops in float chosen by the guard's end-to-end
   ranking vs by per-layer SQNR (worst first), and compare what each buys.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantweb.settings")

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec  # noqa: E402
from conversions.engine.convert.onnx_export import export_onnx  # noqa: E402
from conversions.engine.convert.tf_routes import (  # noqa: E402
    convert_to_tf,
    set_quiet_tf_logging,
)
from conversions.engine.convert.tflite_variant import convert_variant  # noqa: E402
from conversions.engine.data.run_inputs import (  # noqa: E402
    calibration_stream,
    prepare_data,
)
from conversions.engine.int8 import ranges as cr  # noqa: E402
from conversions.engine.report.records import to_json  # noqa: E402
from conversions.engine.int8.guard import Guard, float_units  # noqa: E402
from conversions.engine.int8.layer_error import layer_errors  # noqa: E402
from conversions.engine.model.loading import load_model  # noqa: E402
from conversions.engine.pipeline import run_export  # noqa: E402
from conversions.engine.progress import NullProgress  # noqa: E402
from conversions.engine.tensors import to_tf_layout  # noqa: E402
from conversions.engine.verify.interpreter import (  # noqa: E402
    TFLiteModel,
    predict_many,
)
from conversions.engine.verify.metrics import fidelity  # noqa: E402

PHOTOS = REPO / "demo" / "photos" / "crops"
SPIKY = REPO / "tests" / "support" / "spiky_model.py"


def specs(workdir: Path, skip_lite0: bool) -> dict[str, ModelSpec]:
    sys.path.insert(0, str(SPIKY.parent))
    from spiky_model import make_weights

    ckpt = workdir / "spiky.pth"
    torch.save(make_weights(), ckpt)
    out = {"test model (planted outliers)": ModelSpec(checkpoint=str(ckpt), model=f"{SPIKY}:build", input_shape=(1, 3, 32, 32),
                                                       trust_checkpoint=True)}
    if not skip_lite0:
        out = {"EfficientNet-Lite0": ModelSpec(model="efficientnet-lite0"), **out}
    return out


def config_for(spec: ModelSpec, seed: int, output: Path | None = None, **kwargs) -> ExportConfig:
    return ExportConfig(
        model=spec,
        data=DataSpec(dataset_dir=str(PHOTOS), num_calib_samples=100, num_eval_samples=188, seed=seed),
        variants=("int8",),
        output=str(output) if output else None,
        force=True,
        **kwargs,
    )


def fmt(f) -> str:
    return f"{f.top1_agreement:.1f} | {f.confident_top1_agreement:.1f} ({f.confident_samples}) | {f.sqnr_db:.2f}"


def bench_ranges(name: str, spec: ModelSpec, seeds: list[int], workdir: Path) -> None:
    loaded = load_model(spec)
    graph = None
    for seed in seeds:
        config = config_for(spec, seed)
        data = prepare_data(config, loaded, NullProgress())
        if graph is None:
            onnx_path = export_onnx(loaded.module, loaded.input_shape, workdir / f"{spec.name}.onnx")
            graph = convert_to_tf(onnx_path, workdir, data.evaluation.inputs_nchw)
        stream = calibration_stream(data, graph.input_layout)
        with torch.no_grad():
            x = data.evaluation.inputs_nchw
            ref = torch.cat([loaded.module(torch.from_numpy(x[i : i + 16])) for i in range(0, len(x), 16)]).numpy()
        eval_tf = to_tf_layout(data.evaluation.inputs_nchw, graph.input_layout)
        t0 = time.perf_counter()
        cal = cr.calibrate(graph.float32_model, stream, "percentile")
        t_cal = time.perf_counter() - t0
        _, _, inputs = cr.read_ranges(cal.calibrated)
        models = {
            "minmax": cr.quantize(cal.calibrated),
            "percentile": cr.quantize(cal.model),
            "mse": cr.quantize(cr.with_ranges(cal.calibrated, cr.choose_ranges(cal.minmax, cal.histograms, "mse", skip=inputs))),
        }
        for method, model in models.items():
            f = fidelity(ref, predict_many(TFLiteModel(model), eval_tf)[0])
            print(f"| {name} | {seed} | {method} | {fmt(f)} |", flush=True)
        print(f"<!-- {name} seed {seed}: calibration + histograms {t_cal:.1f} s -->", flush=True)


def bench_guard(name: str, spec: ModelSpec, workdir: Path) -> None:
    out = workdir / f"{spec.name}_guarded.tflite"
    t0 = time.perf_counter()
    report = run_export(config_for(spec, 0, out, max_drop=1.0))
    total = time.perf_counter() - t0
    v = report.variant("int8")
    g = to_json(v.guard)
    kept = ", ".join(dict.fromkeys(k["label"] for k in g["kept_float"])) or "none"
    cost = g.get("cost") or {}
    print(
        f"| {name} | {g['before']['value']:.1f} -> {g['after']['value']:.1f} | {g['result']} | {kept} | "
        f"{cost.get('size_ratio', 1.0):.2f} | {cost.get('latency_ratio', 1.0) or 1.0:.2f} | "
        f"{g['ranking_evaluations']} + {len(g['steps'])} | {report.timings_s['accuracy_guard']:.1f} | "
        f"{report.timings_s['convert_int8']:.1f} | {total:.0f} | {fmt(v.fidelity)} |",
        flush=True,
    )


def bench_ranking(spec: ModelSpec, workdir: Path, counts: tuple[int, ...] = (2, 4, 8, 12)) -> None:
    loaded = load_model(spec)
    config = config_for(spec, 0, calibration_method="minmax", max_drop=0.0, max_fallback=1.0)
    data = prepare_data(config, loaded, NullProgress())
    graph = convert_to_tf(export_onnx(loaded.module, loaded.input_shape, workdir / "rank.onnx"), workdir,
                          data.evaluation.inputs_nchw)
    stream = calibration_stream(data, graph.input_layout)
    float_model = convert_variant(graph.concrete_function, "float32")[0]
    cal = cr.calibrate(graph.float32_model, stream, "minmax")
    base = cr.quantize(cal.model)
    evaluation = SimpleNamespace(inputs_nchw=data.evaluation.inputs_nchw, targets=None)
    ranking = np.concatenate([s[0] for s, _ in zip(stream(), range(32))])
    guard = Guard(config, graph, float_model, stream, evaluation, ranking, NullProgress(), len(data.generator))
    layers = layer_errors(float_model, base, ranking, graph.onnx_path, graph.input_layout)
    t0 = time.perf_counter()
    units, _, _ = float_units(float_model)
    ranked = guard.rank(units, cal, guard.score(base), layers)
    t_rank = time.perf_counter() - t0
    by_layer = [op.name for op in layers.worst(len(layers.ops))]
    b = to_json(guard.budget.measure(base))
    print(f"| none (plain int8) | 0 | {b['top1_agreement']:.1f} | {b['value']:.1f} | {b['sqnr_db']:.2f} | 1.00 |")
    for n in counts:
        end_to_end: list[str] = []
        for u, _, _ in ranked:
            end_to_end = list(dict.fromkeys([*end_to_end, *u.ops]))
            if len(end_to_end) >= n:
                break
        for label, kept in (("per-layer SQNR, worst first", by_layer[:n]), ("end-to-end ranking (guard)", end_to_end[:n])):
            model = cr.quantize(cal.model, keep_float=kept)
            m = to_json(guard.budget.measure(model))
            print(f"| {label} | {len(kept)} | {m['top1_agreement']:.1f} | {m['value']:.1f} | {m['sqnr_db']:.2f} | "
                  f"{len(model) / len(base):.2f} |", flush=True)
    print(f"<!-- ranking: {guard.evaluations} conversions, {t_rank:.1f} s -->")
    label = {r.name: r.label for r in layers.ops}
    print("<!-- end-to-end top units: " + "; ".join(
        f"{'+'.join(dict.fromkeys(label.get(o, o) for o in u.ops))} {g:.2f} dB" for u, g, _ in ranked[:6]) + " -->")
    print("<!-- per-layer worst: " + "; ".join(label.get(o, o) for o in by_layer[:8]) + " -->")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--skip-lite0", action="store_true")
    parser.add_argument("--only", choices=("ranges", "guard", "ranking"))
    args = parser.parse_args()
    set_quiet_tf_logging()
    import django

    django.setup()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-guard-") as tmp:
        work = Path(tmp)
        models = specs(work, args.skip_lite0)
        if args.only in (None, "ranges"):
            print("\n| model | seed | ranges | top-1 agree % | confident % (n) | SQNR dB |\n| --- | ---: | --- | ---: | ---: | ---: |")
            for name, spec in models.items():
                bench_ranges(name, spec, seeds, work)
        if args.only in (None, "guard"):
            print("\n| model | budget metric before -> after | result | kept in float | size x | latency x | "
                  "conversions (rank + steps) | guard s | int8 convert s | run s | top-1 / confident (n) / SQNR vs PyTorch |")
            print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
            for name, spec in models.items():
                bench_guard(name, spec, work)
        if args.only in (None, "ranking") and not args.skip_lite0:
            print("\n| ops kept in float, chosen by | ops | top-1 agree % | confident % | SQNR dB | size x |\n"
                  "| --- | ---: | ---: | ---: | ---: | ---: |")
            bench_ranking(models["EfficientNet-Lite0"], work)


if __name__ == "__main__":
    main()
