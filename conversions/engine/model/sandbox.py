"""An untrusted checkpoint's bytes parsed in a spawned, unprivileged child; only plain tensors come back.

``torch.load(weights_only=True)`` runs no code from the file, but its zip reader and restricted unpickler
still parse bytes an uploader chose. The child started here (``spawn``, never ``fork``: TensorFlow may have
started threads in the parent) imports what parsing needs, then, when it runs as root on POSIX, drops to
``QUANTWEB_SANDBOX_USER`` (a user name or uid; ``nobody`` by default) with no supplementary groups, caps its
address space (``QUANTWEB_SANDBOX_MEMORY_MB``) and CPU seconds (``QUANTWEB_SANDBOX_CPU_S``), and parses a
world-readable copy of the file (the original may be readable by root only). The answer travels as raw
bytes (a JSON header, then each tensor's bytes) that the parent checks and rebuilds with ``torch.frombuffer``:
nothing the child sends is unpickled, so even a child taken over by the file cannot run code in the worker.

A drop that is impossible (no such user, not permitted) is not silent: the load's description says so.

A ``.pt2`` stays in the worker: an ``ExportedProgram`` is a graph, not tensors, and could only come back
re-serialised for the parent to parse again; ``pt2_archive`` refuses, before loading, every untrusted archive
whose payloads ``torch.export.load`` would unpickle, so what remains parses JSON and raw tensor bytes only.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import multiprocessing
import os
import resource
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from conversions.engine.errors import CheckpointError
from conversions.engine.verify.native import start_child

USER_ENV = "QUANTWEB_SANDBOX_USER"
MEMORY_ENV = "QUANTWEB_SANDBOX_MEMORY_MB"
CPU_ENV = "QUANTWEB_SANDBOX_CPU_S"
DEFAULT_CPU_S = 900
TIMEOUT_S = 1800.0

_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
              torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128)
}  # fmt: skip


@dataclass
class SandboxedState:
    state: dict[str, torch.Tensor]
    uid: int
    """The uid the child parsed the file as."""
    warning: str | None
    """Why the child kept the worker's privileges (root and the drop failed), else None."""

    def describe(self) -> str:
        return self.warning or f"parsed in a separate process as uid {self.uid}"


def _memory_limit_bytes(size: int) -> int:
    """The child's address-space cap: the setting, else room for torch itself plus a few copies of the file."""
    setting = os.environ.get(MEMORY_ENV)
    if setting:
        return int(float(setting) * 2**20)
    return 8 * 2**30 + 4 * size


def load_state_isolated(
    path: Path, parse: Callable[[Path], dict[str, torch.Tensor]]
) -> SandboxedState:
    """``parse(copy of path)`` in the unprivileged child: its tensors by name, or its ``CheckpointError``.

    ``parse`` must be importable by module and name; it returns a flat dict of tensors or raises."""
    with tempfile.TemporaryDirectory(prefix="quantweb-sandbox-") as folder:
        os.chmod(folder, 0o755)  # the child, once nobody, must reach the copy
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o644)
        limits = (
            _memory_limit_bytes(copy.stat().st_size),
            int(os.environ.get(CPU_ENV) or DEFAULT_CPU_S),
        )
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child, args=(child, str(copy), parse, limits), daemon=True
        )
        start_child(proc)
        child.close()
        try:
            return _receive(proc, parent, path, str(copy))
        finally:
            parent.close()
            if proc.is_alive():
                proc.kill()
            proc.join()


def _receive(proc: Any, conn: Any, path: Path, copy: str) -> SandboxedState:
    try:
        if not conn.poll(TIMEOUT_S):
            raise CheckpointError(
                f"reading {path} in the sandboxed process did not finish within {TIMEOUT_S:.0f} s; check that "
                "{checkpoint} is a state dict written by torch.save, or have a staff member trust it ({trust_checkpoint})."
            )
        header = json.loads(conn.recv_bytes(1 << 24).decode("utf-8"))
        if header["status"] == "error":
            raise CheckpointError(
                header["message"].replace(copy, str(path)), field=header.get("field")
            )
        state = {}
        for name, dtype, shape, nbytes in header["tensors"]:
            state[str(name)] = _tensor(
                conn, _DTYPES[dtype], [int(d) for d in shape], int(nbytes)
            )
    except EOFError:  # the child died before or while answering
        proc.join(30)
        raise CheckpointError(
            f"the sandboxed process reading {path} {_death(proc.exitcode)} before answering; its limits are "
            f"{MEMORY_ENV}={_memory_limit_bytes(path.stat().st_size) // 2**20} MB of address space and "
            f"{CPU_ENV}={os.environ.get(CPU_ENV) or DEFAULT_CPU_S} CPU seconds: raise them in the worker's "
            "environment if the file is that big, or check that {checkpoint} is a state dict written by torch.save."
        ) from None
    except (
        KeyError,
        ValueError,
        TypeError,
        RuntimeError,
    ) as err:  # a malformed answer: the child misbehaved
        raise CheckpointError(
            f"the sandboxed process reading {path} sent a malformed answer ({type(err).__name__}: {err}); "
            "the file may be crafted to attack the loader: do not trust {checkpoint}."
        ) from None
    return SandboxedState(state, int(header["uid"]), header.get("warning"))


def _tensor(
    conn: Any, dtype: torch.dtype, shape: list[int], nbytes: int
) -> torch.Tensor:
    element = torch.empty((), dtype=dtype).element_size()
    if nbytes != math.prod(shape) * element or min(shape, default=0) < 0:
        raise ValueError(
            f"{nbytes} bytes do not make a {dtype} tensor of shape {tuple(shape)}"
        )
    buffer = bytearray(nbytes)
    if nbytes:  # recv_bytes_into refuses (BufferTooShort) a message longer than the header declared
        if conn.recv_bytes_into(buffer) != nbytes:
            raise ValueError("a tensor's bytes are shorter than the header declared")
    else:
        conn.recv_bytes()
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(buffer, dtype=dtype).reshape(shape)


def _child(
    conn: Any,
    copy: str,
    parse: Callable[[Path], dict[str, torch.Tensor]],
    limits: tuple[int, int],
) -> None:
    try:
        _warm_up()  # the interpreter and torch may be readable by root only: import everything before the drop
        warning = _drop_privileges()
        _limit(*limits)
        state = parse(Path(copy))
        entries, blobs = [], []
        for name, tensor in state.items():
            if tensor.dtype not in _DTYPES.values() or tensor.layout != torch.strided:
                raise CheckpointError(
                    f"{copy}: the tensor {name} is a {tensor.dtype} {tensor.layout} tensor, which the sandboxed load "
                    "cannot pass on; save plain float weights, or have a staff member trust {checkpoint} "
                    "({trust_checkpoint}) so it loads in the worker itself."
                )
            flat = tensor.detach().contiguous().reshape(-1)
            raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
            entries.append(
                [
                    name,
                    str(tensor.dtype).removeprefix("torch."),
                    list(tensor.shape),
                    len(raw),
                ]
            )
            blobs.append(raw)
        conn.send_bytes(
            json.dumps(
                {
                    "status": "ok",
                    "uid": os.getuid(),
                    "warning": warning,
                    "tensors": entries,
                }
            ).encode()
        )
        for raw in blobs:
            conn.send_bytes(raw)
    except CheckpointError as err:
        if (
            "allocate memory" in err.template
        ):  # torch's allocator under RLIMIT_AS, worded by loading as unreadable
            conn.send_bytes(
                _failure(
                    f"ran out of memory under its limit of {limits[0] // 2**20} MB"
                )
            )
            return
        conn.send_bytes(
            json.dumps(
                {"status": "error", "message": err.template, "field": err.field}
            ).encode()
        )
    except MemoryError:
        conn.send_bytes(_failure("ran out of memory (MemoryError)"))
    except (
        BaseException
    ) as err:  # everything else goes back to the parent as one message
        conn.send_bytes(
            _failure(f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
        )
    finally:
        conn.close()


def _death(code: int | None) -> str:
    if code == -signal.SIGXCPU:
        return "went over its CPU-time limit (SIGXCPU)"
    if code == -signal.SIGKILL:
        return "was killed (SIGKILL: the kernel's out-of-memory killer or an operator)"
    if code is not None and code < 0:
        return f"died of signal {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
    return f"exited with code {code}"


def _failure(what: str) -> bytes:
    message = (
        f"the sandboxed process could not read the checkpoint ({what}); if the file is big, raise {MEMORY_ENV} / "
        f"{CPU_ENV} in the worker's environment, else check that {{checkpoint}} is a state dict written by torch.save."
    )
    return json.dumps(
        {"status": "error", "message": message, "field": "checkpoint"}
    ).encode()


def _warm_up() -> None:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2, dtype=torch.bfloat16)}, buffer)
    buffer.seek(0)
    torch.load(buffer, map_location="cpu", weights_only=True)
    torch.zeros(1).view(torch.uint8).numpy()
    with contextlib.suppress(ImportError):
        import pwd  # noqa: F401  (read /etc/passwd before the drop too)


def _drop_privileges() -> str | None:
    """Becomes the sandbox user when root; the reason it could not, else None (not root: nothing to drop)."""
    if os.name != "posix" or os.getuid() != 0:
        return None
    import pwd

    who = os.environ.get(USER_ENV) or "nobody"
    try:
        entry = pwd.getpwuid(int(who)) if who.isdigit() else pwd.getpwnam(who)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except (KeyError, OSError) as err:
        return (
            f"parsed in a separate process but still as root: dropping to {who!r} failed ({type(err).__name__}: "
            f"{err}); set {USER_ENV} to an existing unprivileged user, or run the worker as one"
        )
    return None


def _limit(memory: int, cpu_s: int) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = (
        int(used.ru_utime + used.ru_stime) + 1 + cpu_s
    )  # the seconds spent importing torch do not count
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
