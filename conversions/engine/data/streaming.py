"""Bounded-memory parallel decoding: worker processes decode and preprocess, the caller consumes in order.

At most ``workers * IN_FLIGHT_PER_WORKER`` chunks of ``CHUNK`` images are decoded ahead of the consumer,
however many images there are and however slow the consumer (the TFLite calibrator) is. Workers are
forked, so the per-image function (a lambda or a subclass's bound method) is inherited, never pickled;
forking after ``import tensorflow`` is fine because workers only use Pillow and numpy.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from typing import Callable, Iterator

import numpy as np

from .preprocess import ImageReadError

CHUNK = 4
IN_FLIGHT_PER_WORKER = 2

Result = tuple[int, "np.ndarray | None", "str | None"]
_worker_fn: Callable[[str], np.ndarray] | None = None


def default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(2, cpus)


def can_fork() -> bool:
    """Pool workers need ``fork`` and must not be started from a daemonic process (e.g. another Pool)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def _init(fn: Callable[[str], np.ndarray]) -> None:
    global _worker_fn
    _worker_fn = fn


def _run(fn: Callable[[str], np.ndarray], chunk: list[tuple[int, str]]) -> list[Result]:
    out: list[Result] = []
    for index, path in chunk:
        try:
            out.append((index, fn(path), None))
        except ImageReadError as err:
            out.append((index, None, str(err)))
    return out


def _work(chunk: list[tuple[int, str]]) -> list[Result]:
    assert _worker_fn is not None
    return _run(_worker_fn, chunk)


def stream(paths: list[str], fn: Callable[[str], np.ndarray], workers: int) -> Iterator[Result]:
    """Yields ``(index, array, None)`` or ``(index, None, reason)`` for each path, in order.

    ``workers=0`` (or a single path, or no ``fork``) decodes in this process. Breaking out of the loop
    stops the workers.
    """
    indexed = list(enumerate(paths))
    chunks = [indexed[i : i + CHUNK] for i in range(0, len(indexed), CHUNK)]
    if workers <= 0 or len(paths) <= 1 or not can_fork():
        for chunk in chunks:
            yield from _run(fn, chunk)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_init, initargs=(fn,))
    try:
        todo = iter(chunks)
        pending: deque = deque()
        for chunk in todo:
            pending.append(pool.apply_async(_work, (chunk,)))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                break
        while pending:
            results = pending.popleft().get()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.apply_async(_work, (nxt,)))
            yield from results
    finally:
        pool.terminate()
        pool.join()
