"""ONNX -> TensorFlow graph through onnx2tf, trying routes until one converts, matches ONNX *and* makes a
float32 ``.tflite``.

onnx2tf 1.29 rejects or mis-converts some real models: EfficientNet-Lite0's same-padding blocks fail at
``/_blocks.2/Add`` when the pad amounts arrive as a Shape/ConstantOfShape/Slice chain, and values that come
from ONNX ``Constant`` nodes (split sizes, reduce axes) become int64 TF tensors that TFLite cannot legalise
(``tf.SplitV``). Constant-folding the graph first fixes both, so the folded routes come first: onnxsim, then
ONNX Runtime's own graph optimizer where onnxsim fails (its strict shape inference rejects graphs onnx's own
accepts, and it crashes on anchor grids a detector builds in ``forward``), then the graph as exported. A
graph that matches ONNX can still fail at TFLite conversion: a route counts only once its float32
``.tflite`` is built, and the pseudo-op routes (onnx2tf rewriting ops into TFLite primitives) come last.
Each route runs onnx2tf without its strict mode first (see ``MODES``). Every attempt starts from its own copy
of the (folded) file, since onnx2tf rewrites the ``.onnx`` it is given.

Two things onnx2tf would otherwise do behind our back are pinned down here:
- it downloads 20 MS-COCO images to drive its internal checks: we hand it the run's own samples instead;
- it serialises the model through tf_keras's SavedModel tracking several times (most of its ~60 s on
  EfficientNet): we take the in-memory Keras model (``disable_model_save``) and convert a concrete function.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conversions.engine.convert.onnx_export import exported_opset
from conversions.engine.convert.route_errors import failing_op, failure_message, short_error, strip_ansi
from conversions.engine.errors import ConversionError
from conversions.engine.progress import NullProgress, Progress
from conversions.engine.tensors import align_layout, sqnr_db, to_tf_layout

ROUTE_MIN_SQNR_DB = 40.0
"""A converted float graph must match ONNX Runtime at least this closely, or the route counts as failed."""


@dataclass(frozen=True)
class Route:
    name: str
    simplify: bool
    fold: str | None = None
    """``onnxruntime``: fold constants with ONNX Runtime's graph optimizer first."""
    onnx2tf_options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


PSEUDO_OPS = ["erf", "gelu", "hardswish", "leakyrelu", "pow"]
"""onnx2tf's Python API compares these names in lower case (only its CLI lower-cases what it is given)."""

ROUTES: tuple[Route, ...] = (
    # Folded first: onnx2tf turns values that come from ONNX ``Constant`` nodes into int64 TF tensors, which
    # become ``tf.SplitV`` / ``tf.Mean(axes: i64)`` that TFLite cannot legalise; folded into initializers the
    # same ops become STRIDED_SLICE and a static MEAN. Folding also removes the Shape/Slice chains of 'same'
    # padding that onnx2tf mis-lays-out. The unfolded graph stays as a route for graphs the folders break.
    Route("onnxsim+onnx2tf", simplify=True, description="constant-fold the graph with onnxsim, then onnx2tf"),
    Route(
        "ortfold+onnx2tf",
        simplify=False,
        fold="onnxruntime",
        description="constant-fold with ONNX Runtime's basic graph optimizer, then onnx2tf",
    ),
    Route("onnx2tf", simplify=False, description="onnx2tf on the exported graph as it is"),
    Route(
        "onnx2tf-pseudo-ops",
        simplify=False,
        onnx2tf_options={"replace_to_pseudo_operators": PSEUDO_OPS},
        description="onnx2tf replacing ops that TFLite lacks (Erf, GELU, ...) with equivalent primitives",
    ),
    Route(
        "ortfold+onnx2tf-pseudo-ops",
        simplify=False,
        fold="onnxruntime",
        onnx2tf_options={"replace_to_pseudo_operators": PSEUDO_OPS},
        description="ONNX Runtime constant folding, then onnx2tf with pseudo-ops",
    ),
)

MODES: tuple[str, ...] = ("fast", "strict")
"""onnx2tf's strict mode brute-forces operand layouts for dozens of op kinds (most of its time on a
transformer); without it onnx2tf is several times faster and usually right. Each route runs fast first and
is kept only if its graph matches ONNX Runtime (``ROUTE_MIN_SQNR_DB``); strict mode is the retry."""


@dataclass
class TFGraph:
    """The converted float graph, ready for ``TFLiteConverter.from_concrete_functions``."""

    keras_model: Any
    concrete_function: Any
    input_shape: tuple[int, ...]
    """As TensorFlow takes it (NHWC for an image model)."""
    input_layout: str
    route: str
    attempts: list[dict[str, Any]]
    onnx_path: Path
    sqnr_vs_onnx_db: float
    float32_model: bytes | None = None
    """The route's float32 ``.tflite``: a route counts only once this is built, and the pipeline reuses it."""
    float32_notes: list[str] = field(default_factory=list)
    opset: int = 0
    """The ONNX opset the converted file was exported at."""

    def to_route_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "opset": self.opset,
            "attempts": self.attempts,
            "input_layout": self.input_layout,
            "tf_input_shape": list(self.input_shape),
            "sqnr_vs_onnx_db": round(self.sqnr_vs_onnx_db, 2),
        }


def convert_to_tf(
    onnx_path: Path,
    workdir: Path,
    sample_inputs_nchw: np.ndarray | None,
    progress: Progress | None = None,
    routes: tuple[Route, ...] | None = None,
) -> TFGraph:
    """Tries each route (default ``ROUTES``), fast mode before strict; returns the first graph that matches
    ONNX Runtime and builds a float32 ``.tflite``. Every attempt is recorded with its stage seconds."""
    progress = progress or NullProgress()
    routes = ROUTES if routes is None else routes
    import onnx

    onnx_model = onnx.load(str(onnx_path), load_external_data=False)
    input_shape = tuple(d.dim_value for d in onnx_model.graph.input[0].type.tensor_type.shape.dim)
    probe = _probe_inputs(sample_inputs_nchw, input_shape)
    reference = _onnxruntime_outputs(onnx_path, probe)
    attempts: list[dict[str, Any]] = []
    folded: dict[tuple[bool, str | None], Path] = {}  # each fold is done once, whatever the mode or route
    tflite_failed_folded = False
    plan = [(route, mode) for route in routes for mode in MODES]
    for i, (route, mode) in enumerate(plan):
        progress.update(i / len(plan), f"{route.name} ({mode})")
        if _skipped(route, mode, attempts, tflite_failed_folded, progress):
            continue
        attempt: dict[str, Any] = {"route": route.name, "mode": mode}
        seconds: dict[str, float] = {}
        stage = "prepare"
        try:
            with _stage_clock(seconds, "fold"):
                stage = "onnxsim" if route.simplify else "onnxruntime folding" if route.fold else "prepare"
                source = _folded(onnx_path, workdir, route, folded)
                route_onnx = _route_copy(source, workdir / f"route_{i}_{route.name}_{mode}")
            stage = "onnx2tf"
            with _stage_clock(seconds, "onnx2tf"):
                options = {**route.onnx2tf_options, "disable_strict_mode": mode == "fast"}
                keras_model = _run_onnx2tf(route_onnx, workdir / f"onnx2tf_{i}", probe, options)
                graph = _wrap(keras_model, route, attempts, route_onnx, input_shape)
            stage = "compare with ONNX Runtime"
            with _stage_clock(seconds, "compare"):
                sqnr = _compare(graph, probe, reference)
            graph.sqnr_vs_onnx_db = sqnr
            if sqnr < ROUTE_MIN_SQNR_DB:
                raise _RouteMismatch(f"converted, but its outputs differ from ONNX Runtime (SQNR {sqnr:.1f} dB)")
            stage = "float32 TFLite conversion"
            from conversions.engine.convert.tflite_variant import convert_variant

            with _stage_clock(seconds, "float32 tflite"):
                graph.float32_model, graph.float32_notes = convert_variant(graph.concrete_function, "float32")
        except Exception as err:  # onnx2tf raises anything from ValueError to SystemExit-wrapped errors
            attempt.update(ok=False, stage=stage, error=short_error(err), **failing_op(err), seconds=seconds)
            attempts.append(attempt)
            if stage == "float32 TFLite conversion" and (route.simplify or route.fold):
                tflite_failed_folded = True
            at = f" at {attempt['onnx_op']}" if attempt.get("onnx_op") else ""
            progress.log(f"route {route.name} ({mode}) failed in {stage}{at} ({attempt['error'][:300]})")
            continue
        attempt.update(ok=True, sqnr_vs_onnx_db=round(sqnr, 2), seconds=seconds)
        attempts.append(attempt)
        graph.opset = exported_opset(onnx_path)
        return graph
    raise ConversionError(failure_message(onnx_path, attempts))


def _skipped(
    route: Route, mode: str, attempts: list[dict[str, Any]], tflite_failed_folded: bool, progress: Progress
) -> bool:
    """Whether this attempt cannot succeed where an earlier one failed, so its onnx2tf pass is saved."""
    last = attempts[-1] if attempts else None
    same_route = last is not None and last["route"] == route.name
    if mode == "strict" and same_route and last.get("stage") in ("onnxsim", "onnxruntime folding",
                                                                 "float32 TFLite conversion"):
        # The fold failed (strict mode folds nothing), or the graph's ops have no TFLite kernel: strict
        # mode changes layouts, not which ops onnx2tf emits.
        return True
    if tflite_failed_folded and not (route.simplify or route.fold) and not route.onnx2tf_options:
        # A folded graph already failed at TFLite conversion: the unfolded one emits the same ops and more
        # of them dynamic (folding only ever turns Constant nodes into initializers), so only op rewrites
        # (the pseudo-op routes) can help now.
        if mode == "fast":
            progress.log(f"route {route.name} skipped: a folded graph already failed at TFLite conversion")
        return True
    return False


@contextlib.contextmanager
def _stage_clock(seconds: dict[str, float], stage: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = round(seconds.get(stage, 0.0) + time.perf_counter() - started, 2)


def _folded(onnx_path: Path, workdir: Path, route: Route, cache: dict[tuple[bool, str | None], Path]) -> Path:
    """The route's folded graph, made once per kind of folding and shared by every attempt that needs it."""
    key = (route.simplify, route.fold)
    if key == (False, None):
        return onnx_path
    if key not in cache:
        copy = _route_copy(onnx_path, workdir / f"fold_{'onnxsim' if route.simplify else route.fold}")
        if route.simplify:
            copy = _simplified(copy)
        if route.fold == "onnxruntime":
            copy = _ort_folded(copy)
        cache[key] = copy
    return cache[key]


def _route_copy(onnx_path: Path, folder: Path) -> Path:
    """A private copy of the exported file (with any external-data files beside it) for one route."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / onnx_path.name
    shutil.copy2(onnx_path, target)
    for extra in onnx_path.parent.glob(onnx_path.name + ".data"):
        shutil.copy2(extra, folder / extra.name)
    return target


def _ort_folded(onnx_path: Path) -> Path:
    """ONNX Runtime's basic level (constant folding, redundant nodes) written back as standard ONNX ops."""
    import onnxruntime as ort

    target = onnx_path.with_name(onnx_path.stem + "_ortfold.onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(target)
    opts.log_severity_level = 3
    ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    return target


class _RouteMismatch(Exception):
    """The route converted, but its graph does not compute what ONNX Runtime computes."""


class _OnnxTfExit(Exception):
    """onnx2tf called sys.exit(); carries what it printed."""


def _probe_inputs(samples: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if samples is not None and len(samples) and tuple(samples.shape[1:]) == tuple(shape[1:]):
        return np.ascontiguousarray(samples[:8], dtype=np.float32)
    # Smooth deterministic images: realistic enough for onnx2tf's shape checks, no download, no RNG state.
    n, c, h, w = shape if len(shape) == 4 else (1, *shape[1:], 1, 1)[:4]
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    imgs = [np.stack([np.sin((k + 1) * xx + j) * np.cos((k + 2) * yy - j) for j in range(c)]) for k in range(4)]
    return np.asarray(imgs, dtype=np.float32).reshape((4, *shape[1:]))


def _onnxruntime_outputs(onnx_path: Path, probe: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: probe[i : i + 1]}) for i in range(len(probe))]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def _simplified(onnx_path: Path) -> Path:
    import onnx
    from onnxsim import simplify

    target = onnx_path.with_name(onnx_path.stem + "_simplified.onnx")
    model, ok = simplify(onnx.load(str(onnx_path)))
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified graph")
    onnx.save(model, str(target))
    return target


@contextlib.contextmanager
def _own_sample_images(probe_nchw: np.ndarray):
    """Makes onnx2tf use our samples where it would download MS-COCO images (it reads them as NHWC)."""
    import onnx2tf.onnx2tf as o2t
    import onnx2tf.utils.common_functions as common

    nhwc = np.transpose(probe_nchw, (0, 2, 3, 1)) if probe_nchw.ndim == 4 else probe_nchw

    def provide() -> np.ndarray:
        return np.ascontiguousarray(nhwc)

    saved = (o2t.download_test_image_data, common.download_test_image_data)
    o2t.download_test_image_data = provide
    common.download_test_image_data = provide
    try:
        yield
    finally:
        o2t.download_test_image_data, common.download_test_image_data = saved


def _run_onnx2tf(onnx_path: Path, out_dir: Path, probe: np.ndarray, options: dict[str, Any]) -> Any:
    import onnx2tf

    out_dir.mkdir(parents=True, exist_ok=True)
    captured = io.StringIO()
    try:
        with _own_sample_images(probe), contextlib.redirect_stdout(captured):
            model = onnx2tf.convert(
                input_onnx_file_path=str(onnx_path),
                output_folder_path=str(out_dir),
                non_verbose=True,
                disable_model_save=True,
                # We simplify explicitly as a route; onnx2tf's own attempt shells out to an `onnxsim` that may
                # not be on PATH and then silently continues, which makes results depend on the shell.
                not_use_onnxsim=True,
                **options,
            )
    except SystemExit as err:
        raise _OnnxTfExit(strip_ansi(captured.getvalue())[-2000:] or f"onnx2tf exited with {err.code}") from None
    except Exception as err:
        err.onnx2tf_output = strip_ansi(captured.getvalue())[-4000:]  # type: ignore[attr-defined]
        raise
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    if model is None:
        raise RuntimeError("onnx2tf returned no model")
    return model


def _wrap(
    keras_model: Any, route: Route, attempts: list[dict[str, Any]], onnx_path: Path, onnx_shape: tuple[int, ...]
) -> TFGraph:
    import tensorflow as tf

    if len(keras_model.inputs) != 1:
        raise ConversionError(
            f"the model has {len(keras_model.inputs)} inputs; quantweb converts single-input vision models."
        )
    shape = tuple(int(d) if d is not None else 1 for d in keras_model.inputs[0].shape)
    spec = tf.TensorSpec(shape, tf.float32, name="input")

    @tf.function(input_signature=[spec])
    def serve(x):
        out = keras_model(x)
        if isinstance(out, (list, tuple)):
            return {f"output_{i}": o for i, o in enumerate(out)}
        return {"output": out}

    # onnx2tf transposes 4-D image inputs to channels-last; read the layout off the shapes, not assumptions.
    n, c, h, w = onnx_shape if len(onnx_shape) == 4 else (0, 0, 0, 0)
    layout = "NHWC" if len(shape) == 4 and shape == (n, h, w, c) else "NCHW"
    return TFGraph(keras_model, serve.get_concrete_function(), shape, layout, route.name, attempts, onnx_path, 0.0)


def _compare(graph: TFGraph, probe: np.ndarray, reference: list[np.ndarray]) -> float:
    outs = [graph.concrete_function(to_tf_layout(probe[i : i + 1], graph.input_layout)) for i in range(len(probe))]
    keys = sorted(outs[0])
    got = [np.concatenate([o[k].numpy() for o in outs]) for k in keys]
    if len(got) != len(reference):
        raise _RouteMismatch(f"has {len(got)} outputs where ONNX has {len(reference)}")
    sqnrs = [sqnr_db(ref, align_layout(out, ref.shape)) for ref, out in zip(reference, got)]
    return float(min(sqnrs))


def set_quiet_tf_logging() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
