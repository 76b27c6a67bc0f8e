"""Native steps that can abort the process, run in a spawned child so a crash becomes a message.

TFLite's interpreter with every tensor preserved (per-layer error) and XNNPACK's prepare can die with SIGABRT
on a graph they dislike; a Python ``except`` never sees that. ``run_isolated`` runs a function in a child
started with ``spawn`` (a fork after TensorFlow has started its threads can deadlock) and turns a signal,
an exception or a timeout into ``NativeCrash`` with one sentence the run records.

``QUANTWEB_NATIVE_ABORT=<step>`` makes the child of that step call ``os.abort()`` first: the tests use it to
prove that a real abort in each step becomes a message and the run still completes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import traceback
from typing import Any, Callable

ABORT_ENV = "QUANTWEB_NATIVE_ABORT"
DEFAULT_TIMEOUT_S = 900.0


class NativeCrash(Exception):
    """The isolated step died, raised or hung; ``str()`` says which step and how."""

    def __init__(self, step: str, how: str) -> None:
        super().__init__(f"{step} {how}")
        self.step = step
        self.how = how


@contextlib.contextmanager
def _main_not_reimported():
    """Spawn re-runs the parent's ``__main__`` in the child unless it cannot find it; the children here run
    functions of this package only, so a user's script without an ``if __name__ == "__main__"`` guard (or
    pytest, or manage.py) must not run again. Hiding ``__main__``'s file and spec during the start does that."""
    main = sys.modules.get("__main__")
    saved = {
        k: getattr(main, k)
        for k in ("__file__", "__spec__")
        if main is not None and hasattr(main, k)
    }
    for (
        key
    ) in saved:  # multiprocessing reads __spec__ unconditionally: None, not absent
        if key == "__spec__":
            main.__spec__ = None
        else:
            delattr(main, key)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


def start_child(proc: Any) -> None:
    """Starts a spawned child without it re-running the parent's ``__main__`` (a CLI or a benchmark script)."""
    with _main_not_reimported():
        proc.start()


def _child(
    conn: Any, step: str, fn: Callable[..., Any], args: tuple, kwargs: dict
) -> None:
    if os.environ.get(ABORT_ENV) == step:
        os.abort()
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except BaseException as err:  # everything goes back to the parent as a message
        where = (
            traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
        )
        text = " ".join(str(err).split())[:400] or type(err).__name__
        conn.send(
            (
                "error",
                f"{type(err).__name__}: {text}" + (f" ({where.name})" if where else ""),
            )
        )
    finally:
        conn.close()


def run_isolated(
    step: str,
    fn: Callable[..., Any],
    *args: Any,
    timeout: float = DEFAULT_TIMEOUT_S,
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)`` in a spawned child; its result, or ``NativeCrash`` naming ``step``.

    ``fn`` must be importable by module and name, its arguments and result picklable (bytes, arrays, dataclasses).
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, step, fn, args, kwargs), daemon=True)
    start_child(proc)
    child.close()
    return _answer(proc, parent, step, timeout)


def _answer(proc: Any, parent: Any, step: str, timeout: float) -> Any:
    """The child's result, or ``NativeCrash`` for a death, an error or a timeout; closes ``parent``."""
    try:
        if not parent.poll(timeout):
            proc.kill()
            proc.join()
            raise NativeCrash(step, f"did not finish within {timeout:.0f} s")
        status, value = parent.recv()
    except (EOFError, ConnectionResetError):  # the child died before it could answer (mid-read: a reset)
        proc.join()
        raise NativeCrash(step, _death(proc.exitcode)) from None
    finally:
        parent.close()
    proc.join()
    if status == "error":
        raise NativeCrash(step, f"failed: {value}")
    return value


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"crashed in native code ({name})"
    return f"exited with code {code} before answering"


def xnnpack_check(model: bytes, threads: int = 1) -> None:
    """Prepares ``model`` with the default XNNPACK delegate and runs it once on zeros (raises if refused)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    d = interp.get_input_details()[0]
    interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
    interp.invoke()


def xnnpack_problem(model: bytes, threads: int = 1) -> str | None:
    """None when XNNPACK prepares and runs ``model``; else what went wrong, in one sentence."""
    try:
        run_isolated("XNNPACK prepare", xnnpack_check, model, threads, timeout=300)
    except NativeCrash as err:
        return str(err)
    return None
