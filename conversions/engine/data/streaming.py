"""Bounded-memory parallel decoding: worker processes decode and preprocess, the caller consumes in order.

At most ``workers * IN_FLIGHT_PER_WORKER`` chunks of ``CHUNK`` images are decoded ahead of the consumer,
however many images there are and however slow the consumer (the TFLite calibrator) is. When the sample
shape is known, workers write samples into slots of one shared anonymous memory map and send back only
their index: pushing 600 kB arrays through a 64 kB pipe costs more than decoding them. Each slot is
copied out before its chunk's slots are handed to the next chunk, so the map is the whole prefetch buffer.

Workers are forked, so the per-image function (a lambda or a subclass's bound method) and the memory map
are inherited, never pickled; workers only use Pillow and numpy. Forking a process that holds TensorFlow's
threads can still leave a worker dead or stuck on an inherited lock, so a worker that dies or stops
answering makes the stream finish the remaining images in this process instead of hanging.
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator

import numpy as np

from conversions.engine.data.preprocess import ImageReadError

log = logging.getLogger("quantweb.engine")

CHUNK = 8
IN_FLIGHT_PER_WORKER = 2
CHUNK_TIMEOUT_S = 120.0
"""A chunk of 8 images decodes in well under a second; one that takes this long has a worker stuck."""

Result = tuple[int, "np.ndarray | None", "str | None"]
_worker: dict[str, Any] = {}
_IN_SLOT = "slot"


def default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(2, cpus)


def can_fork() -> bool:
    """Pool workers need ``fork`` and must not be started from a daemonic process (e.g. another Pool)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def _run(fn: Callable[[str], np.ndarray], chunk: list[tuple[int, str]]) -> list[Result]:
    out: list[Result] = []
    for index, path in chunk:
        try:
            out.append((index, fn(path), None))
        except ImageReadError as err:
            out.append((index, None, str(err)))
    return out


def _init(state: dict[str, Any]) -> None:
    _worker.update(state)


def _work(chunk: list[tuple[int, str]], first_slot: int) -> list[tuple[int, Any, str | None]]:
    """Runs in a worker: decodes a chunk, parking samples of the expected shape in their slots."""
    slots: np.ndarray | None = _worker.get("slots")
    out: list[tuple[int, Any, str | None]] = []
    for offset, (index, array, reason) in enumerate(_run(_worker["fn"], chunk)):
        if slots is not None and array is not None and array.shape == slots.shape[1:] and array.dtype == slots.dtype:
            slots[first_slot + offset] = array
            out.append((index, _IN_SLOT, None))
        else:
            out.append((index, array, reason))
    return out


def stream(
    paths: list[str],
    fn: Callable[[str], np.ndarray],
    workers: int,
    sample_shape: tuple[int, ...] | None = None,
    sample_dtype: str | None = None,
) -> Iterator[Result]:
    """Yields ``(index, array, None)`` or ``(index, None, reason)`` for each path, in order.

    ``workers=0`` (or a single path, or no ``fork``) decodes in this process. ``sample_shape``/``dtype``,
    when known, enable the shared-memory slots. Breaking out of the loop stops the workers.
    """
    indexed = list(enumerate(paths))
    chunks = [indexed[i : i + CHUNK] for i in range(0, len(indexed), CHUNK)]
    if workers <= 0 or len(paths) <= 1 or not can_fork():
        for chunk in chunks:
            yield from _run(fn, chunk)
        return
    groups = workers * IN_FLIGHT_PER_WORKER
    slots = None
    if sample_shape:
        dtype = np.dtype(sample_dtype or "float32")
        nbytes = int(np.prod(sample_shape)) * dtype.itemsize
        buffer = mmap.mmap(-1, max(1, groups * CHUNK * nbytes))  # anonymous + shared: visible to forked workers
        slots = np.frombuffer(buffer, dtype=dtype).reshape(groups * CHUNK, *sample_shape)
    # With fork, initargs are inherited rather than pickled, and a replacement worker gets them too.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_init,
                               initargs=({"fn": fn, "slots": slots},))  # fmt: skip
    pending: deque = deque()
    done = 0
    try:
        for number, chunk in enumerate(chunks):
            if len(pending) == groups:
                yield from _collect(pending.popleft(), slots)
                done += 1
            pending.append((pool.submit(_work, chunk, (number % groups) * CHUNK), (number % groups) * CHUNK))
        while pending:
            yield from _collect(pending.popleft(), slots)
            done += 1
    except (BrokenProcessPool, FuturesTimeout) as err:
        # A decode worker died or hung (a native crash in an image library, a lock inherited through fork):
        # what is left is decoded here, slower but complete, rather than the stream hanging or failing.
        log.warning("image decode workers stopped (%s); decoding the remaining images in this process", err)
        _stop(pool)
        for chunk in chunks[done:]:
            yield from _run(fn, chunk)
    finally:
        _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stops the workers at once: queued chunks are dropped, a hung worker is killed."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=5)


def _collect(job: tuple[Any, int], slots: np.ndarray | None) -> list[Result]:
    """Waits for one chunk and copies its samples out of their slots (which the next chunk reuses)."""
    future, first_slot = job
    out: list[Result] = []
    for offset, (index, array, reason) in enumerate(future.result(timeout=CHUNK_TIMEOUT_S)):
        if isinstance(array, str) and array == _IN_SLOT:
            assert slots is not None
            array = slots[first_slot + offset].copy()
        out.append((index, array, reason))
    return out
