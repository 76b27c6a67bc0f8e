"""Where a run's files go and how they are written: planned before any work, written atomically at the end."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from conversions.engine.config import ExportConfig
from conversions.engine.convert.tf_routes import TFGraph
from conversions.engine.report import atomic
from conversions.engine.report.files import write_report_files
from conversions.engine.report.results import ExportReport

DEFAULT_EXPORT_DIR = Path("exports")


@dataclass(frozen=True)
class OutputPlan:
    """Every file a run will write, known before the work starts so a name clash fails in the first second."""

    variants: dict[str, Path]
    """variant -> ``.tflite`` path."""
    extra: dict[str, Path] = field(default_factory=dict)
    """``onnx`` / ``saved_model`` -> path, for ``--format``."""
    report: Path = Path("report.json")
    pages: dict[str, Path] = field(default_factory=dict)
    """``report_md`` / ``report_html``: written for several variants, beside report.json."""

    def paths(self) -> list[Path]:
        return [*self.variants.values(), *self.extra.values(), self.report, *self.pages.values()]

    def check_writable(self, force: bool) -> None:
        for path in self.paths():
            atomic.check_writable(path, force)

    def files(self) -> dict[str, str]:
        """What the report lists as the run's other files, by kind."""
        return {**{k: str(p) for k, p in self.extra.items()}, **{k: str(p) for k, p in self.pages.items()},
                "report": str(self.report)}  # fmt: skip

    def with_variant_path(self, variant: str, path: Path) -> "OutputPlan":
        return dataclasses.replace(self, variants={**self.variants, variant: path})


def plan_outputs(config: ExportConfig, stem: str, want_tflite: bool = True) -> OutputPlan:
    """The files of ``config``: one variant with ``output`` goes exactly there; otherwise into ``output_dir``
    (or beside the checkpoint), named by ``output_template``."""
    variants = _variant_paths(config, stem) if want_tflite else {}
    formats = set(config.formats)
    if "all" in formats:
        formats |= {"onnx", "saved_model"}
    folder = next(iter(variants.values())).parent if variants else _folder(config)
    extra = {}
    if "onnx" in formats:
        extra["onnx"] = folder / f"{stem}.onnx"
    if "saved_model" in formats:
        extra["saved_model"] = folder / f"{stem}_saved_model"
    if len(variants) == 1:
        first = next(iter(variants.values()))
        report = first.with_name(first.stem + "_report.json")
    elif variants:
        report = folder / "report.json"
    else:
        report = folder / f"{stem}_report.json"
    pages = {"report_md": folder / "report.md", "report_html": folder / "report.html"} if len(variants) > 1 else {}
    return OutputPlan(variants, extra, report, pages)


def _folder(config: ExportConfig) -> Path:
    if config.output_dir:
        return Path(config.output_dir)
    if config.output:
        return Path(config.output).parent
    if config.model.checkpoint:
        return Path(config.model.checkpoint).parent
    return DEFAULT_EXPORT_DIR


def _variant_paths(config: ExportConfig, stem: str) -> dict[str, Path]:
    if config.output and len(config.variants) == 1:
        return {config.variants[0]: Path(config.output)}
    folder = _folder(config)
    return {v: folder / config.output_template.format(stem=stem, variant=v) for v in config.variants}


def write_extra_outputs(extra: dict[str, Path], graph: TFGraph, force: bool) -> None:
    if "onnx" in extra:
        atomic.copy_file_atomic(graph.onnx_path, extra["onnx"], force=force)
    if "saved_model" in extra:
        import tensorflow as tf

        with tempfile.TemporaryDirectory(prefix="quantweb-sm-") as tmp:
            module = tf.Module()
            module.model = graph.keras_model
            tf.saved_model.save(module, tmp, signatures={"serving_default": graph.concrete_function})
            atomic.copy_tree_atomic(Path(tmp), extra["saved_model"], force=force)


def write_outputs(report: ExportReport, built: dict[str, bytes], plan: OutputPlan, graph: TFGraph, force: bool) -> None:
    """Writes every file of the run, each atomically; if any write fails, removes the ones already written,
    so a failed run leaves neither a partial file nor a partial set (and a re-run needs no --force)."""
    written: list[Path] = []
    try:
        for variant, path in plan.variants.items():
            atomic.write_bytes_atomic(path, built[variant], force=force)
            written.append(path)
        write_extra_outputs(plan.extra, graph, force)
        written.extend(plan.extra.values())
        if plan.pages:
            write_report_files(report, plan.pages, force)
            written.extend(plan.pages.values())
        atomic.write_bytes_atomic(plan.report, json.dumps(report.to_dict(), indent=2).encode(), force=force)
    except BaseException:
        for path in written:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
