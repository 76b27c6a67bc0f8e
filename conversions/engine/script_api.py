"""``ModelExporter``: the engine as a Python object for scripts, over the same functions ``export_models`` uses."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.convert.onnx_export import export_onnx
from conversions.engine.convert.tf_routes import (
    TFGraph,
    convert_to_tf,
    set_quiet_tf_logging,
)
from conversions.engine.convert.tflite_variant import convert_variant
from conversions.engine.model.loading import LoadedModel, load_model
from conversions.engine.report import atomic
from conversions.engine.tensors import to_tf_layout
from conversions.engine.report.results import ExportReport


class ModelExporter:
    """Step-by-step export for scripts (load, ONNX, one ``.tflite``), or the whole pipeline with ``export_all``.

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
        # Script users rarely call close(); the scratch folder (ONNX files) goes when the exporter does.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._workdir, True)

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
        metadata: bool = True,
    ) -> Path:
        """One variant; with ``metadata`` the file carries its name, input size, labels (no normalisation:
        ``representative_data_gen``'s preprocessing is not known here)."""
        output_path = Path(output_path)
        atomic.check_writable(output_path, self.force)
        if onnx_path is None:
            onnx_path = self.export_to_onnx(self._workdir / f"{self.spec.name}.onnx")
        graph = self._graph(Path(onnx_path))
        data, _ = convert_variant(graph.concrete_function, quantize, representative_data_gen, io_type=io_type)
        if metadata:
            from conversions.engine.metadata.write import ModelFacts, add_metadata

            self.load_checkpoint()
            facts = ModelFacts(name=self.spec.name, description=self._loaded.description, layout=graph.input_layout,
                               class_names=tuple(self._loaded.class_names or ()))  # fmt: skip
            probe = to_tf_layout(np.random.default_rng(0).standard_normal((2, *self._loaded.input_shape[1:])).astype(np.float32),
                                 graph.input_layout)  # fmt: skip
            data = add_metadata({quantize: data}, facts, probe)[0][quantize]
        atomic.write_bytes_atomic(output_path, data, force=self.force)
        return output_path

    def export_all(
        self, output_dir: str | Path, dataset_dir: str | Path | None = None, variants: tuple[str, ...] = ("float32", "float16", "dynamic", "int8"), **data_kwargs: Any
    ) -> ExportReport:
        config = ExportConfig(
            model=self.spec,
            data=DataSpec(dataset_dir=str(dataset_dir) if dataset_dir else None, **data_kwargs),
            variants=variants,
            output_dir=str(output_dir),
            formats=("all",),
            force=self.force,
        )
        from conversions.engine.pipeline import (
            run_export,  #the full pipeline imports this module
        )

        return run_export(config)

    def _graph(self, onnx_path: Path) -> TFGraph:
        if onnx_path not in self._graphs:
            set_quiet_tf_logging()
            self._graphs[onnx_path] = convert_to_tf(onnx_path, self._workdir, None)
        return self._graphs[onnx_path]

    def close(self) -> None:
        self._cleanup()
