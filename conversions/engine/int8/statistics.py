"""Calibration statistics of every calibrated tensor, over all samples, on both cores.

TFLite's calibrator runs the model sample by sample on one thread with builtin kernels and keeps each
tensor's global absolute min and max (``calibration_logger.cc``, ``MinMax::Update``). So splitting the
samples into shards, running each shard in its own process and taking the min of the minima and the max of
the maxima gives its ranges (to a float ulp: LiteRT's kernels are not TensorFlow's build); the histograms that ``percentile`` and ``mse`` need are sums over the
same bins, which merge exactly too. Each shard runs in a spawned child (a crash in the interpreter becomes a
``NativeCrash``) that imports only numpy and LiteRT, so it starts in about a second.

Pass 1 gives the min/max; pass 2, only when a method needs histograms, bins every tensor over those merged
ranges. Large tensors contribute a fixed random subset of positions per sample (the same in every shard):
their extremes are exact from pass 1, and the histogram only needs the shape of the bulk.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from conversions.engine.verify.native import run_isolated

HISTOGRAM_BINS = 2048
MAX_VALUES_PER_SAMPLE = 65536
STEP = "calibration statistics"
"""How a crash of a shard's interpreter is named."""

Ranges = dict[int, tuple[float, float]]


def shard_count(samples: int) -> int:
    """One shard per core, never more than there are samples."""
    return max(1, min(os.cpu_count() or 1, samples))


class CalibrationShards:
    """The samples split over one spawned child per core, for the two passes over a calibrated model.

    ``with CalibrationShards(calibrated, samples) as shards: ranges = shards.minmax(tensors)``; then, for a
    method that needs them, ``shards.histograms(ranges)`` over (possibly adjusted) ranges."""

    def __init__(self, calibrated: bytes, samples: np.ndarray) -> None:
        self._calibrated = calibrated
        self._folder = tempfile.TemporaryDirectory(prefix="quantweb-calibration-")
        self._path = str(Path(self._folder.name) / "samples.npy")
        np.save(self._path, np.ascontiguousarray(samples, dtype=np.float32))
        shards = np.array_split(np.arange(len(samples)), shard_count(len(samples)))
        self._bounds = [(int(s[0]), int(s[-1]) + 1) for s in shards if len(s)]
        self._pool = ThreadPoolExecutor(max_workers=len(self._bounds))

    def __enter__(self) -> "CalibrationShards":
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown()
        self._folder.cleanup()

    def minmax(self, tensors: list[int]) -> Ranges:
        """Each tensor's min and max over every sample (exactly the calibrator's global min/max)."""
        parts = self._pool.map(lambda b: run_isolated(STEP, shard_minmax, self._calibrated, self._path, b, tensors),
                               self._bounds)
        return merge_minmax(list(parts))

    def histograms(self, ranges: Ranges, bins: int = HISTOGRAM_BINS) -> dict[int, np.ndarray]:
        """Each tensor's histogram over its range in ``ranges``, summed over the shards."""
        parts = list(self._pool.map(
            lambda b: run_isolated(STEP, shard_histograms, self._calibrated, self._path, b, ranges, bins),
            self._bounds,
        ))
        return {i: sum(p[i] for p in parts) for i in parts[0]}


def merge_minmax(parts: list[Ranges]) -> Ranges:
    out: Ranges = {}
    for part in parts:
        for i, (lo, hi) in part.items():
            old = out.get(i)
            out[i] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return out


def _interpreter_and_samples(calibrated: bytes, path: str, bounds: tuple[int, int]):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # As TFLite's calibrator runs it: builtin kernels, no delegate, one thread. LiteRT's kernels are a
    # different build from TensorFlow's, so a range can differ from the calibrator's by a float ulp.
    interp = Interpreter(
        model_content=calibrated,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
        num_threads=1,
    )
    interp.allocate_tensors()
    samples = np.load(path, mmap_mode="r")[bounds[0] : bounds[1]]
    return interp, interp.get_input_details()[0]["index"], samples


def shard_minmax(calibrated: bytes, path: str, bounds: tuple[int, int], tensors: list[int]) -> Ranges:
    """In a child: each tensor's min and max over the shard's samples."""
    interp, input_index, samples = _interpreter_and_samples(calibrated, path, bounds)
    lo = {i: np.inf for i in tensors}
    hi = {i: -np.inf for i in tensors}
    views = {i: interp.tensor(i) for i in tensors}
    for x in samples:
        interp.set_tensor(input_index, np.asarray(x, dtype=np.float32))
        interp.invoke()
        for i in tensors:
            _extremes(views[i](), i, lo, hi)
    return {i: (lo[i], hi[i]) for i in tensors if lo[i] <= hi[i]}


def _extremes(t: np.ndarray, i: int, lo: dict[int, float], hi: dict[int, float]) -> None:
    # ``t`` is a view into the interpreter's memory (no copy: ViT-B/16 keeps ~1 GB of tensors per image); it
    # must be gone before the next ``invoke``, which is why this is a function of its own.
    if t.size:
        lo[i] = min(lo[i], float(t.min()))
        hi[i] = max(hi[i], float(t.max()))


def shard_histograms(
    calibrated: bytes, path: str, bounds: tuple[int, int], ranges: Ranges, bins: int
) -> dict[int, np.ndarray]:
    """In a child: each tensor's histogram over its (merged) range, from the shard's samples."""
    interp, input_index, samples = _interpreter_and_samples(calibrated, path, bounds)
    hists = {i: np.zeros(bins, dtype=np.int64) for i, (lo, hi) in ranges.items() if hi > lo}
    shapes = {t["index"]: t["shape"] for t in interp.get_tensor_details()}
    picks: dict[int, np.ndarray] = {}
    for i in hists:
        size = int(np.prod(shapes[i]))
        if size > MAX_VALUES_PER_SAMPLE:  # seeded by the tensor, so every shard picks the same positions
            picks[i] = np.sort(np.random.default_rng(i).choice(size, MAX_VALUES_PER_SAMPLE, replace=False))
    views = {i: interp.tensor(i) for i in hists}
    for x in samples:
        interp.set_tensor(input_index, np.asarray(x, dtype=np.float32))
        interp.invoke()
        for i, hist in hists.items():
            _bin(views[i](), picks.get(i), ranges[i], bins, hist)
    return hists


def _bin(view: np.ndarray, pick: np.ndarray | None, bounds: tuple[float, float], bins: int, hist: np.ndarray) -> None:
    # ``view`` is the interpreter's memory, dropped on return (see ``_extremes``).
    lo, hi = bounds
    values = view.ravel()
    if pick is not None:
        values = values[pick]
    idx = ((values - lo) * (bins / (hi - lo))).astype(np.int64)
    np.clip(idx, 0, bins - 1, out=idx)
    hist += np.bincount(idx, minlength=bins)
