"""Where a run's files go and how they are written: planned before any work, written atomically at the end."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from conversions.engine.config import ExportConfig
from conversions.engine.convert.tf_routes import TFGraph
from conversions.engine.report import atomic
from conversions.engine.report.files import write_report_files
from conversions.engine.report.results import ExportReport

DEFAULT_EXPORT_DIR = Path("exports")


def variant_label(variant: str) -> str:
    """``none`` is stored and shown as ``float32``: the name says what is in the file."""
    return "float32" if variant == "none" else variant


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


def plan_extra_outputs(config: ExportConfig, outputs: dict[str, Path], stem: str) -> dict[str, Path]:
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


def write_extra_outputs(extra: dict[str, Path], graph: TFGraph, force: bool) -> dict[str, str]:
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


def write_outputs(
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
        write_extra_outputs(extra_outputs, graph, force)
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
