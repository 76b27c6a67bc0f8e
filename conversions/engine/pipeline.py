"""The one entry of the engine: ``run_export(config, progress) -> ExportReport``.

Stages: load the model -> draw calibration and held-out data -> ONNX -> TensorFlow (onnx2tf, with fallback
routes) -> every requested ``.tflite`` variant from that one graph -> verify each against PyTorch -> write the
files atomically. float32 is always built in memory, since sizes and latencies are reported against it.
Each stage lives in its package (see ``conversions.engine``); this module only strings them together.
"""

from __future__ import annotations

import platform
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from conversions.engine import detection
from conversions.engine.config import CALIBRATED_VARIANTS, ExportConfig
from conversions.engine.convert.onnx_export import export_onnx
from conversions.engine.convert.onnx_rewrites import divisions_as_products
from conversions.engine.convert.tf_routes import (
    TFGraph,
    convert_to_tf,
    set_quiet_tf_logging,
)
from conversions.engine.convert.tflite_variant import convert_variant
from conversions.engine.convert.torch_rewrites import rewrite_for_int8
from conversions.engine.data.run_inputs import (
    PreparedData,
    calibration_stream,
    prepare_data,
)
from conversions.engine.int8.build import build_int8, without_int8
from conversions.engine.metadata.write import ModelFacts, add_metadata
from conversions.engine.model.loading import load_model
from conversions.engine.progress import NullProgress, Progress, timed
from conversions.engine.report.outputs import plan_outputs, write_outputs
from conversions.engine.report.device_results import EmbeddedMetadata, MicroTarget, Targets
from conversions.engine.report.results import ExportReport
from conversions.engine.tensors import to_tf_layout
from conversions.engine.variants import REFERENCE
from conversions.engine.verify.micro import for_file
from conversions.engine.verify.variants import (
    slower_than_float,
    slower_warnings,
    verify_variants,
    xnnpack_warnings,
)


def run_export(config: ExportConfig, progress: Progress | None = None) -> ExportReport:
    """Converts, verifies and writes every requested variant; raises ``QuantwebError`` on bad input."""
    set_quiet_tf_logging()
    progress = progress or NullProgress()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    warnings: list[str] = []
    want_tflite = bool({"tflite", "all"} & set(config.formats))
    if not want_tflite:
        # --format onnx / saved_model: no .tflite is written, but the graph is still converted to a float32
        # .tflite in memory and checked against PyTorch, so an export is never handed over unverified.
        config = replace(config, variants=(REFERENCE,))

    with timed(timings, "load"):
        progress.stage("load model")
        loaded = detection.load_ultralytics(config.model) or load_model(config.model)
        task = detection.resolve_task(config, loaded)
    stem = config.model.name
    plan = plan_outputs(config, stem, want_tflite)
    plan.check_writable(config.force)

    with timed(timings, "data"):
        progress.stage("read dataset")
        data = prepare_data(config, loaded, progress)
    warnings.extend(data.warnings)

    with tempfile.TemporaryDirectory(prefix="quantweb-") as tmp:
        workdir = Path(tmp)
        with timed(timings, "onnx"):
            progress.stage("export ONNX")
            rewritten = rewrite_for_int8(loaded.module, config.variants)  # int8 kept on XNNPACK's kernels
            onnx_path = export_onnx(rewritten.module, loaded.input_shape, workdir / f"{stem}.onnx")
            warnings.extend(rewritten.notes + divisions_as_products(onnx_path))
            head = detection.prepare_head(task, config, loaded, data, onnx_path, progress)
            onnx_path, loaded = head.onnx_path, head.loaded  # a detector's head made int8-safe
            warnings.extend(head.warnings)
        with timed(timings, "onnx2tf"):
            progress.stage("convert ONNX to TensorFlow (onnx2tf)")
            graph = convert_to_tf(onnx_path, workdir, data.evaluation.inputs_nchw, progress)
        progress.log(f"conversion route: {graph.route} (float graph matches ONNX at {graph.sqnr_vs_onnx_db:.1f} dB)")

        built, notes = _build_variants(without_int8(config), graph, data, timings, progress)
        for variant, msgs in notes.items():
            warnings.extend(f"{variant}: {m}" for m in msgs)
        # TFLite Micro runs the int8 file in its own child process, on a worker thread, and so does the int8
        # per-layer table: they share the second core while this one checks the int8 file is usable and
        # verifies every variant against PyTorch (the interpreters release the GIL while they run). Micro
        # starts as soon as the int8 model exists.
        with ThreadPoolExecutor(max_workers=1) as pool:
            early: list[tuple[bytes, Future]] = []

            def start_micro(model: bytes) -> None:
                early.append((model, pool.submit(_micro_targets, {"int8": model}, data, graph.input_layout)))

            int8 = None  # one calibration serves the plain int8 model, its per-layer error and any fallback
            if "int8" in config.variants:
                stream = calibration_stream(data, graph.input_layout)
                int8 = build_int8(config, graph, built, stream, data.evaluation, progress, timings, len(data.generator),
                                  on_quantized=start_micro)  # fmt: skip
                built["int8"] = int8.model
                plan = replace(plan, variants=int8.rename_outputs(plan.variants))
                warnings.extend(int8.warnings)
                if not any(m is int8.model for m, _ in early):  # the guard changed the file: check the one that ships
                    start_micro(int8.model)
            micro = next((f for m, f in early if m is built.get("int8")), None)

            embedded: dict[str, EmbeddedMetadata] = {}
            if config.metadata and want_tflite:
                with timed(timings, "metadata"):
                    progress.stage("write metadata (normalisation, labels) into each .tflite")
                    facts = model_facts(config, loaded, data, graph.input_layout, task)
                    eval_tf = to_tf_layout(data.evaluation.inputs_nchw, graph.input_layout)
                    built, embedded, notes = add_metadata(built, facts, eval_tf)
                    warnings.extend(notes)

            with timed(timings, "verify"):
                progress.stage("verify against PyTorch" + (" (TFLite Micro beside it)" if "int8" in built else ""))
                variant_reports, pytorch = verify_variants(config, loaded, graph, built, data, plan.variants, progress)
                if task == "detect":
                    variant_reports, pytorch = detection.evaluate_variants(
                        head, variant_reports, pytorch, built, data, graph.input_layout, progress
                    )
            targets: dict[str, MicroTarget] = {}
            if micro is not None:
                with timed(timings, "tflite_micro_wait"):
                    targets, timings["tflite_micro"] = micro.result()
                targets = {v: for_file(t, built[v]) for v, t in targets.items()}  # its size with the metadata
            if int8 is not None and int8.pending is not None:  # the per-layer table ran beside all of that
                with timed(timings, "layer_table_wait"):
                    noted = len(int8.warnings)
                    int8 = int8.settled(progress)
                    warnings.extend(int8.warnings[noted:])
        for variant, target in targets.items():
            progress.log(f"{variant}: {target.message}")
        if int8 is not None:
            variant_reports = [int8.annotate(v) if v.variant == "int8" else v for v in variant_reports]
        variant_reports = [
            replace(v, metadata=embedded.get(v.variant), **_targets(targets.get(v.variant))) for v in variant_reports
        ]
        variant_reports = slower_than_float(variant_reports, pytorch)
        warnings.extend(xnnpack_warnings(variant_reports) + slower_warnings(variant_reports))

        timings["calibrate_convert"] = round(sum(v for k, v in timings.items() if k.startswith("convert_")), 3)
        report = ExportReport(
            model={
                "name": stem,
                "checkpoint": config.model.checkpoint,
                "architecture": config.model.model,
                "load_route": loaded.route,
                "description": loaded.description,
                "prefixes_stripped": list(loaded.prefixes_stripped),
                "outputs": list(loaded.output_names),
                "input_shape": list(loaded.input_shape),
                "task": task,
            },
            variants=tuple(variant_reports),
            pytorch=pytorch,
            calibration=data.report.get("calibration", {}),
            evaluation=data.report.get("evaluation", {}),
            dataset=data.report.get("dataset"),
            conversion_route=graph.to_route_dict(),
            timings_s=timings,
            versions=tool_versions(),
            warnings=tuple(warnings),
            intermediate_files=plan.files(),
        )
        with timed(timings, "write"):
            progress.stage("write outputs")
            timings["total"] = round(time.perf_counter() - started, 3)
            write_outputs(report, built, plan, graph, config.force)
    return report


def _build_variants(
    config: ExportConfig, graph: TFGraph, data: PreparedData, timings: dict[str, float], progress: Progress
) -> tuple[dict[str, bytes], dict[str, list[str]]]:
    built: dict[str, bytes] = {}
    notes: dict[str, list[str]] = {}
    calibration = calibration_stream(data, graph.input_layout)
    expected = len(data.generator) if data.generator is not None else None
    wanted = [REFERENCE, *[v for v in config.variants if v != REFERENCE]]
    for variant in wanted:
        if variant == REFERENCE and graph.float32_model is not None:  # the route already built and checked it
            built[variant], notes[variant] = graph.float32_model, list(graph.float32_notes)
            continue
        with timed(timings, f"convert_{variant}"):
            progress.stage(f"convert {variant}" + (" (calibrating)" if variant in CALIBRATED_VARIANTS else ""))
            built[variant], notes[variant] = convert_variant(
                graph.concrete_function,
                variant,
                calibration if variant in CALIBRATED_VARIANTS else None,
                io_type=config.io_type if variant == "int8" else "float32",
                progress=progress,
                expected_samples=expected,
            )
    return built, notes


def model_facts(config: ExportConfig, loaded, data: PreparedData, layout: str, task: str) -> ModelFacts:
    """What the files' metadata tells a device about the model, from the run's settings."""
    return ModelFacts(
        name=config.model.name,
        version=config.model.version,
        description=loaded.description,
        task=task,
        layout=layout,
        preprocess=data.report.get("preprocess"),
        class_names=tuple(data.evaluation.class_names or ()),
    )


def _micro_targets(built: dict[str, bytes], data: PreparedData, layout: str) -> tuple[dict[str, MicroTarget], float]:
    """Every int8 file in TFLite Micro (arena, missing ops, exactness against LiteRT), and the seconds it took.

    Runs on a worker thread: it reports nothing to ``progress`` (whose writes may need the caller's thread)."""
    from conversions.engine.verify.micro import micro_readiness

    started = time.perf_counter()
    inputs = to_tf_layout(data.evaluation.inputs_nchw, layout)
    targets = {v: micro_readiness(model, inputs) for v, model in built.items() if v == "int8"}
    return targets, round(time.perf_counter() - started, 3)


def _targets(micro: MicroTarget | None) -> dict[str, Targets]:
    return {"targets": Targets(tflite_micro=micro)} if micro is not None else {}


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnx2tf", "onnxsim", "tensorflow", "ai-edge-litert", "tflite-micro", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out
