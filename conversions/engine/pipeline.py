"""The one public entry of the engine: ``run_export(config, progress) -> ExportReport``.

Stages: load the model -> draw calibration and held-out data -> ONNX -> TensorFlow (onnx2tf, with fallback
routes) -> every requested ``.tflite`` variant from that one graph -> verify each against PyTorch -> write the
files atomically. float32 is always built in memory, since sizes and latencies are reported against it.
``ModelExporter`` is the same machinery for users of the older script API.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import atomic, detection
from .config import CALIBRATED_VARIANTS, DataSpec, ExportConfig, ModelSpec
from .accuracy import class_to_output, labeled_accuracy, read_labels, with_drop
from .accuracy_guard import build_int8, without_int8
from .errors import QuantwebError
from .model_loading import LoadedModel, load_model
from .onnx_export import export_onnx
from .progress import NullProgress, Progress, timed
from .report_files import write_report_files
from .results import ExportReport, VariantReport
from .tf_convert import TFGraph, convert_to_tf, set_quiet_tf_logging, to_tf_layout
from .tflite_export import RepresentativeDataGen, convert_variant

DEFAULT_EXPORT_DIR = Path("exports")


def variant_label(variant: str) -> str:
    """``none`` is stored and shown as ``float32``: the name says what is in the file."""
    return "float32" if variant == "none" else variant


@dataclass
class EvaluationSet:
    inputs_nchw: np.ndarray
    labels: list[int | None]
    files: list[str]
    source: str
    targets: np.ndarray | None = None
    """Model output index of each sample's class (-1 when unknown); None when the dataset has no classes."""
    class_names: list[str] | None = None
    """Names by output index, for showing predictions (labels file, or the sorted class folders)."""


@dataclass
class PreparedData:
    generator: Any | None
    evaluation: EvaluationSet
    report: dict[str, Any]
    warnings: list[str]


def plan_outputs(config: ExportConfig, stem: str) -> dict[str, Path]:
    """variant -> ``.tflite`` path. One variant with ``output`` goes exactly there; otherwise ``output_dir``."""
    if config.output and len(config.variants) == 1:
        return {config.variants[0]: Path(config.output)}
    if config.output_dir:
        folder = Path(config.output_dir)
    elif config.output:
        folder = Path(config.output).parent
    elif config.model.checkpoint:
        folder = Path(config.model.checkpoint).parent
    else:
        folder = DEFAULT_EXPORT_DIR
    return {
        v: folder / config.output_template.format(stem=stem, variant=variant_label(v)) for v in config.variants
    }


def report_path_for(outputs: dict[str, Path]) -> Path:
    first = next(iter(outputs.values()))
    if len(outputs) == 1:
        return first.with_name(first.stem + "_report.json")
    return first.parent / "report.json"


def run_export(config: ExportConfig, progress: Progress | None = None) -> ExportReport:
    """Converts, verifies and writes every requested variant; raises ``QuantwebError`` on bad input."""
    set_quiet_tf_logging()
    progress = progress or NullProgress()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    warnings: list[str] = []
    want_tflite = bool({"tflite", "all"} & set(config.formats))

    with timed(timings, "load"):
        progress.stage("load model")
        loaded = detection.load_ultralytics(config.model) or load_model(config.model)
        task = detection.resolve_task(config, loaded)
    stem = config.model.name
    outputs = plan_outputs(config, stem) if want_tflite else {}
    extra_outputs = _plan_extra_outputs(config, outputs, stem)
    for path in [*outputs.values(), *extra_outputs.values()]:
        atomic.check_writable(path, config.force)
    report_path = report_path_for(outputs) if outputs else next(iter(extra_outputs.values())).with_suffix(".json")
    # Several variants get report.md and a self-contained report.html beside report.json.
    report_folder = report_path.parent if len(outputs) > 1 else None
    for path in [report_path, *([report_folder / "report.md", report_folder / "report.html"] if report_folder else [])]:
        atomic.check_writable(path, config.force)

    with timed(timings, "data"):
        progress.stage("read dataset")
        data = prepare_data(config, loaded, progress)
    warnings.extend(data.warnings)

    with tempfile.TemporaryDirectory(prefix="quantweb-") as tmp:
        workdir = Path(tmp)
        with timed(timings, "onnx"):
            progress.stage("export ONNX")
            onnx_path = export_onnx(loaded.module, loaded.input_shape, workdir / f"{stem}.onnx")
            head = detection.prepare_head(task, config, loaded, data, onnx_path, progress)
            onnx_path, loaded = head.onnx_path, head.loaded  # a detector's head made int8-safe
            warnings.extend(head.warnings)
        with timed(timings, "onnx2tf"):
            progress.stage("convert ONNX to TensorFlow (onnx2tf)")
            graph = convert_to_tf(onnx_path, workdir, data.evaluation.inputs_nchw, progress)
        progress.log(f"conversion route: {graph.route} (float graph matches ONNX at {graph.sqnr_vs_onnx_db:.1f} dB)")

        built, notes = _build_variants(without_int8(config), graph, data, timings, progress)
        for variant, msgs in notes.items():
            warnings.extend(f"{variant_label(variant)}: {m}" for m in msgs)
        guard = None  # int8: one calibration, --calibration ranges, per-layer error, --max-drop fallback (#6)
        if "int8" in config.variants:
            stream = _calibration_stream(data, graph.input_layout)
            guard = build_int8(config, graph, built, stream, data.evaluation, progress, timings, len(data.generator))
            built["int8"], outputs = guard.model, guard.rename_outputs(outputs)
            warnings.extend(guard.warnings)

        with timed(timings, "verify"):
            progress.stage("verify against PyTorch")
            variant_reports, pytorch = _verify(config, loaded, graph, built, data, outputs, progress)
            if task == "detect":
                detection.evaluate_variants(head, variant_reports, pytorch, built, data, graph.input_layout, progress)

        if guard is not None:
            guard.attach(variant_reports)

        timings["calibrate_convert"] = round(sum(v for k, v in timings.items() if k.startswith("convert_")), 3)
        report = ExportReport(
            model={
                "name": stem,
                "checkpoint": config.model.checkpoint,
                "architecture": config.model.model,
                "load_route": loaded.route,
                "description": loaded.description,
                "input_shape": list(loaded.input_shape),
                "task": task,
            },
            variants=variant_reports,
            pytorch=pytorch,
            calibration=data.report.get("calibration", {}),
            evaluation=data.report.get("evaluation", {}),
            dataset=data.report.get("dataset"),
            conversion_route=graph.to_route_dict(),
            timings_s=timings,
            versions=tool_versions(),
            warnings=warnings,
            intermediate_files={kind: str(path) for kind, path in extra_outputs.items()},
        )
        with timed(timings, "write"):
            progress.stage("write outputs")
            timings["total"] = round(time.perf_counter() - started, 3)
            _write_outputs(report, built, outputs, extra_outputs, graph, report_path, report_folder, config.force)
    return report


def _write_outputs(
    report: ExportReport,
    built: dict[str, bytes],
    outputs: dict[str, Path],
    extra_outputs: dict[str, Path],
    graph: TFGraph,
    report_path: Path,
    report_folder: Path | None,
    force: bool,
) -> None:
    """Writes every file of the run, each atomically; if any write fails, removes the ones already written,
    so a failed run leaves neither a partial file nor a partial set (and a re-run needs no --force)."""
    written: list[Path] = []
    try:
        for variant, path in outputs.items():
            atomic.write_bytes_atomic(path, built[variant], force=force)
            written.append(path)
        _write_extra_outputs(extra_outputs, graph, force)
        written.extend(extra_outputs.values())
        if report_folder is not None:
            files = write_report_files(report, report_folder, force)
            report.intermediate_files.update(files)
            written.extend(Path(p) for p in files.values())
        report.intermediate_files["report"] = str(report_path)
        atomic.write_bytes_atomic(report_path, json.dumps(report.to_dict(), indent=2).encode(), force=force)
    except BaseException:
        for path in written:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise


def prepare_data(config: ExportConfig, loaded: LoadedModel, progress: Progress) -> PreparedData:
    """Calibration stream + held-out evaluation inputs (NCHW) from the dataset, or synthetic inputs without one."""
    spec = config.data
    if not spec.dataset_dir:
        if config.needs_calibration:
            raise QuantwebError(
                "int8 and int16x8 need calibration images: pass --dataset-dir with images like those the model "
                "will see in deployment (an ImageFolder tree or a flat folder), or use --quantize dynamic."
            )
        inputs = _synthetic_inputs(loaded.input_shape, 16)
        note = "no --dataset-dir: fidelity measured on 16 synthetic inputs, not real images"
        return PreparedData(
            None,
            EvaluationSet(inputs, [None] * len(inputs), [], "synthetic"),
            {"calibration": {"samples": 0}, "evaluation": {"samples": len(inputs), "source": "synthetic"}},
            [note],
        )

    from .representative_data import RepresentativeDataGenerator

    preset = spec.preprocess
    if preset == "auto":
        preset = loaded.preprocess_hint or "imagenet"
    generator = RepresentativeDataGenerator(
        spec.dataset_dir,
        dataset_type=spec.dataset_type,
        num_samples=spec.num_calib_samples if config.needs_calibration else 0,
        split=spec.split,
        seed=spec.seed,
        preprocess=preset,
        input_shape=loaded.input_shape,
        dtype="float32",
        layout="NCHW",
        num_eval_samples=spec.num_eval_samples,
        num_workers=spec.num_workers,
        preprocess_overrides=spec.preprocess_overrides or None,
    )
    for line in generator.summary_lines():
        progress.log(line)
    inputs, labels, files = [], [], []
    for array, item in generator.iter_evaluation():
        inputs.append(array)
        labels.append(item.label)
        files.append(item.path)
    if not inputs:
        raise QuantwebError(
            f"{spec.dataset_dir}: no held-out images are left for verification after calibration; add images or "
            "lower --num-calib-samples."
        )
    evaluation = EvaluationSet(np.stack(inputs).astype(np.float32), labels, files, "dataset")
    _attach_targets(evaluation, generator.structure.classes, spec.labels_file, loaded)
    report = generator.report()
    report.setdefault("dataset", report.get("structure"))
    report["calibration"] = {
        **report.get("calibration", {}),
        "seed": spec.seed,
        "dataset_dir": str(spec.dataset_dir),
        "layout": generator.structure.layout,
    }
    return PreparedData(generator, evaluation, report, list(getattr(generator, "notes", [])))


def _attach_targets(evaluation: EvaluationSet, classes: list[str], labels_file: str | None, loaded: LoadedModel) -> None:
    """Maps class folders to output indices so labeled accuracy can be computed (ImageFolder data only)."""
    if not classes or all(label is None for label in evaluation.labels):
        if labels_file:
            evaluation.class_names = read_labels(labels_file)
        return
    import torch

    with torch.no_grad():
        num_outputs = int(np.prod(_first_output(loaded.module(torch.zeros(loaded.input_shape))).shape[1:]))
    names = read_labels(labels_file) if labels_file else None
    mapping = class_to_output(classes, names, num_outputs)
    evaluation.targets = np.array([mapping[lbl] if lbl is not None else -1 for lbl in evaluation.labels])
    evaluation.class_names = names or sorted(classes)


def _synthetic_inputs(shape: tuple[int, ...], count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((count, *shape[1:])).astype(np.float32)


def _calibration_stream(data: PreparedData, layout: str) -> RepresentativeDataGen | None:
    if data.generator is None:
        return None
    gen = data.generator

    def stream() -> Iterable[list[np.ndarray]]:
        for sample in gen:
            yield [to_tf_layout(np.asarray(sample, dtype=np.float32)[None], layout)]

    return stream


def _build_variants(
    config: ExportConfig, graph: TFGraph, data: PreparedData, timings: dict[str, float], progress: Progress
) -> tuple[dict[str, bytes], dict[str, list[str]]]:
    built: dict[str, bytes] = {}
    notes: dict[str, list[str]] = {}
    calibration = _calibration_stream(data, graph.input_layout)
    expected = len(data.generator) if data.generator is not None else None
    wanted = ["none", *[v for v in config.variants if v != "none"]]
    for variant in wanted:
        with timed(timings, f"convert_{variant_label(variant)}"):
            progress.stage(f"convert {variant_label(variant)}" + (" (calibrating)" if variant in CALIBRATED_VARIANTS else ""))
            built[variant], notes[variant] = convert_variant(
                graph.concrete_function,
                variant,
                calibration if variant in CALIBRATED_VARIANTS else None,
                io_type=config.io_type if variant == "int8" else "float32",
                progress=progress,
                expected_samples=expected,
            )
    return built, notes


def _verify(
    config: ExportConfig,
    loaded: LoadedModel,
    graph: TFGraph,
    built: dict[str, bytes],
    data: PreparedData,
    outputs: dict[str, Path],
    progress: Progress,
) -> tuple[list[VariantReport], dict[str, Any]]:
    import torch

    from .verify import TFLiteModel, audit_ops, fidelity, measure_latencies, predict_many

    eval_nchw = data.evaluation.inputs_nchw
    step = 1 if loaded.route == "exported_program" else 16  # an exported program keeps its traced batch size
    with torch.no_grad():
        chunks = [loaded.module(torch.from_numpy(eval_nchw[i : i + step])) for i in range(0, len(eval_nchw), step)]
    ref = np.concatenate([_first_output(c).numpy() for c in chunks]).astype(np.float32)
    eval_tf = to_tf_layout(eval_nchw, graph.input_layout)

    wanted = ["none", *[v for v in config.variants if v != "none"]]
    sample = eval_tf[:1]
    latencies: dict[str, dict[str, Any]] = {v: {} for v in wanted}
    for threads in config.latency_threads:
        progress.log(f"timing {len(wanted)} models, {config.latency_runs} runs each, {threads} thread(s)")
        stats = measure_latencies({v: built[v] for v in wanted}, sample, threads=threads, runs=config.latency_runs)
        for v, s in stats.items():
            latencies[v][str(threads)] = s

    targets = data.evaluation.targets
    pytorch_accuracy = labeled_accuracy(ref, targets) if targets is not None else None
    float_size = len(built["none"])
    reports = []
    outputs_by_variant: dict[str, np.ndarray] = {}
    for i, variant in enumerate(wanted):
        progress.update(i / len(wanted), variant_label(variant))
        model = TFLiteModel(built[variant])
        out = _first_of(predict_many(model, eval_tf))
        outputs_by_variant[variant] = out
        fully_integer, float_ops, counts = audit_ops(built[variant])
        io = model.io_description()
        target = outputs.get(variant)
        reports.append(
            VariantReport(
                variant=variant_label(variant),
                output=str(target) if target else "",
                size_bytes=len(built[variant]),
                sha256=hashlib.sha256(built[variant]).hexdigest(),
                float32_size_bytes=float_size,
                size_ratio=round(len(built[variant]) / float_size, 4),
                input={
                    "shape": io["input"]["shape"],
                    "dtype": io["input"]["dtype"],
                    "layout": graph.input_layout,
                    "scale": io["input"]["scale"],
                    "zero_point": io["input"]["zero_point"],
                    **_normalisation(data),
                },
                output_details={"outputs": io["outputs"]},
                latency_ms=latencies[variant],
                fidelity=fidelity(ref, out),
                fully_integer=fully_integer,
                float_ops=float_ops,
                op_counts=counts,
                accuracy=with_drop(labeled_accuracy(out, targets), pytorch_accuracy) if pytorch_accuracy else None,
            )
        )
    # The float32 model is only reported as a variant when it was asked for; its figures stay the reference.
    asked = {variant_label(v) for v in config.variants}
    float_report = reports[0]
    pytorch = {
        "evaluation_samples": len(eval_nchw),
        "float32_fidelity": {"sqnr_db": float_report.fidelity.sqnr_db} if float_report.fidelity else None,
        "float32_latency_ms": {k: vars(v) for k, v in float_report.latency_ms.items()},
        "float32_size_bytes": float_size,
        "accuracy": pytorch_accuracy,
        "disagreements": disagreement_examples(ref, outputs_by_variant, config.variants, data.evaluation),
    }
    return [r for r in reports if r.variant in asked], pytorch


def disagreement_examples(
    ref: np.ndarray, outputs: dict[str, np.ndarray], variants: tuple[str, ...], evaluation: EvaluationSet, limit: int = 6
) -> dict[str, Any] | None:
    """A few held-out images where the most quantized variant and PyTorch disagree, with both top-3."""
    from .verify import is_classifier_output, top_k

    quantized = [v for v in ("int8", "int16x8", "dynamic", "float16") if v in variants and v in outputs]
    if not quantized or not is_classifier_output(ref) or not evaluation.files:
        return None
    variant = quantized[0]
    out = outputs[variant]
    differ = np.flatnonzero(ref.argmax(axis=1) != out.argmax(axis=1))[:limit]
    names = evaluation.class_names

    def named(pairs: list[tuple[int, float]]) -> list[dict[str, Any]]:
        return [{"index": i, "name": names[i] if names and i < len(names) else str(i), "p": p} for i, p in pairs]

    return {
        "variant": variant_label(variant),
        "count": int((ref.argmax(axis=1) != out.argmax(axis=1)).sum()),
        "examples": [
            {
                "file": evaluation.files[i],
                "thumbnail": _thumbnail_data_uri(evaluation.files[i]),
                "pytorch_top3": named(top_k(ref[i])),
                "variant_top3": named(top_k(out[i])),
            }
            for i in differ
        ],
    }


def _thumbnail_data_uri(path: str, size: int = 112) -> str | None:
    import base64
    import io

    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _first_output(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out


def _first_of(outs: list[np.ndarray]) -> np.ndarray:
    return outs[0]


def _normalisation(data: PreparedData) -> dict[str, Any]:
    """How pixels become model input; ``pixel_scale`` so it never hides the input tensor's quantization ``scale``."""
    spec = data.report.get("preprocess") or {}
    return {"mean": spec.get("mean"), "std": spec.get("std"), "pixel_scale": spec.get("scale"), "preset": spec.get("preset")}


def _plan_extra_outputs(config: ExportConfig, outputs: dict[str, Path], stem: str) -> dict[str, Path]:
    formats = set(config.formats)
    if "all" in formats:
        formats |= {"onnx", "saved_model"}
    if outputs:
        folder = next(iter(outputs.values())).parent
    else:
        folder = Path(config.output_dir) if config.output_dir else (
            Path(config.model.checkpoint).parent if config.model.checkpoint else DEFAULT_EXPORT_DIR
        )
    extra = {}
    if "onnx" in formats:
        extra["onnx"] = folder / f"{stem}.onnx"
    if "saved_model" in formats:
        extra["saved_model"] = folder / f"{stem}_saved_model"
    return extra


def _write_extra_outputs(extra: dict[str, Path], graph: TFGraph, force: bool) -> dict[str, str]:
    written = {}
    if "onnx" in extra:
        atomic.copy_file_atomic(graph.onnx_path, extra["onnx"], force=force)
        written["onnx"] = str(extra["onnx"])
    if "saved_model" in extra:
        import tensorflow as tf

        with tempfile.TemporaryDirectory(prefix="quantweb-sm-") as tmp:
            module = tf.Module()
            module.model = graph.keras_model
            tf.saved_model.save(module, tmp, signatures={"serving_default": graph.concrete_function})
            atomic.copy_tree_atomic(Path(tmp), extra["saved_model"], force=force)
        written["saved_model"] = str(extra["saved_model"])
    return written


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnx2tf", "onnxsim", "tensorflow", "ai-edge-litert", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


class ModelExporter:
    """The script-era API over the same engine functions the command uses.

    >>> exp = ModelExporter("model.pth", model="mypkg.models:build", input_shape=(1, 3, 224, 224))
    >>> exp.export_to_tflite(output_path="model_int8.tflite", quantize="int8", representative_data_gen=gen)
    """

    def __init__(
        self,
        checkpoint: str | Path | None,
        model: str | None = None,
        input_shape: tuple[int, ...] = (1, 3, 224, 224),
        model_kwargs: dict[str, Any] | None = None,
        trust_checkpoint: bool = False,
        force: bool = False,
    ) -> None:
        self.spec = ModelSpec(
            checkpoint=str(checkpoint) if checkpoint else None,
            model=model,
            model_kwargs=dict(model_kwargs or {}),
            input_shape=tuple(input_shape),
            trust_checkpoint=trust_checkpoint,
        )
        self.force = force
        self._loaded: LoadedModel | None = None
        self._graphs: dict[Path, TFGraph] = {}
        self._workdir = Path(tempfile.mkdtemp(prefix="quantweb-exporter-"))

    def load_checkpoint(self):
        if self._loaded is None:
            self._loaded = load_model(self.spec)
        return self._loaded.module

    def export_to_onnx(self, path: str | Path) -> Path:
        self.load_checkpoint()
        path = Path(path)
        atomic.check_writable(path, self.force)
        tmp = export_onnx(self._loaded.module, self._loaded.input_shape, self._workdir / path.name)
        atomic.copy_file_atomic(tmp, path, force=self.force)
        return path

    def export_to_tflite(
        self,
        onnx_path: str | Path | None = None,
        output_path: str | Path = "model.tflite",
        quantize: str = "int8",
        representative_data_gen: Callable[[], Iterable[list[np.ndarray]]] | None = None,
        io_type: str = "float32",
    ) -> Path:
        output_path = Path(output_path)
        atomic.check_writable(output_path, self.force)
        if onnx_path is None:
            onnx_path = self.export_to_onnx(self._workdir / f"{self.spec.name}.onnx")
        graph = self._graph(Path(onnx_path))
        data, _ = convert_variant(graph.concrete_function, quantize, representative_data_gen, io_type=io_type)
        atomic.write_bytes_atomic(output_path, data, force=self.force)
        return output_path

    def export_all(
        self, output_dir: str | Path, dataset_dir: str | Path | None = None, variants: tuple[str, ...] = ("none", "float16", "dynamic", "int8"), **data_kwargs: Any
    ) -> ExportReport:
        config = ExportConfig(
            model=self.spec,
            data=DataSpec(dataset_dir=str(dataset_dir) if dataset_dir else None, **data_kwargs),
            variants=variants,
            output_dir=str(output_dir),
            formats=("all",),
            force=self.force,
        )
        return run_export(config)

    def _graph(self, onnx_path: Path) -> TFGraph:
        if onnx_path not in self._graphs:
            set_quiet_tf_logging()
            self._graphs[onnx_path] = convert_to_tf(onnx_path, self._workdir, None)
        return self._graphs[onnx_path]

    def close(self) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)


__all__ = ["ModelExporter", "run_export", "plan_outputs", "variant_label"]
