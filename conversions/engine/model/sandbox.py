"""An untrusted checkpoint's bytes parsed in a confined child process; only plain tensors come back.

``torch.load(weights_only=True)`` and ``torch.export.load`` run no code from a file without pickled payloads,
but their zip readers, restricted unpickler and graph deserialiser still parse bytes an uploader chose. So the
parse runs in a child that reaches nothing worth taking, even if the file takes it over:

- it is a fresh interpreter (``subprocess``, never ``fork``: TensorFlow may have started threads in the
  worker) started with an explicit environment: ``PATH``, ``HOME``/``TMPDIR`` (an empty private folder),
  ``LANG`` and the thread-count variables, nothing else; no ``SECRET_KEY``, ``DATABASE_URL``, ``REDIS_URL``;
  it inherits no descriptor but the checkpoint (opened read-only by the worker) and its answer pipe;
- after importing what parsing needs it enters a network namespace of its own (``unshare(CLONE_NEWNET)``:
  no interface but a loopback that is down, so no 127.0.0.1 Redis or PostgreSQL port, no internet), sets
  ``no_new_privs`` and becomes ``QUANTWEB_SANDBOX_USER`` (``nobody`` by default) with no supplementary
  groups; with the database, ``var/`` and ``MEDIA_ROOT`` owner-only (``quantweb.settings``) it cannot open
  them, nor other users' uploads; it reads the checkpoint only through the descriptor it was handed;
- its address space (``QUANTWEB_SANDBOX_MEMORY_MB``) and CPU seconds (``QUANTWEB_SANDBOX_CPU_S``) are capped,
  and it can write no byte to any file.

If any of that fails (the worker is neither root nor holds CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN, or the
user does not exist) the file is refused with a sentence saying how to run the worker; it is never parsed
unconfined. The answer travels as raw bytes (a JSON header, then each tensor's bytes) that the worker checks
and rebuilds with ``torch.frombuffer``: nothing the child sends is unpickled.
"""

from __future__ import annotations

import ctypes
import io
import json
import math
import os
import pwd
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import BinaryIO, Callable

import torch

from conversions.engine.errors import CheckpointError

USER_ENV = "QUANTWEB_SANDBOX_USER"
MEMORY_ENV = "QUANTWEB_SANDBOX_MEMORY_MB"
CPU_ENV = "QUANTWEB_SANDBOX_CPU_S"
DEFAULT_CPU_S = 900
TIMEOUT_S = 1800.0
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
PASSED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The only variables of the worker's environment the child sees (besides the fixed PATH, HOME, LANG)."""

Parse = Callable[[BinaryIO, Path], dict[str, torch.Tensor]]
"""What the child runs: the checkpoint's bytes as a read-only stream and its path (for messages only)."""

_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
              torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128)
}  # fmt: skip

_HOW_TO_RUN = (
    "run the worker as root (it starts the parsing child as root, which drops to {user} with no network) or "
    "as a user holding CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN (systemd: AmbientCapabilities=CAP_SETUID "
    "CAP_SETGID CAP_SYS_ADMIN), or have a staff member trust {{checkpoint}} ({{trust_checkpoint}}) so it loads "
    "in the worker itself."
)


@dataclass(frozen=True)
class SandboxedState:
    state: dict[str, torch.Tensor]
    uid: int
    """The uid the child parsed the file as (the sandbox user's)."""

    def describe(self) -> str:
        return f"parsed in a separate process as uid {self.uid}, without network"


@dataclass(frozen=True)
class SandboxUser:
    name: str
    uid: int
    gid: int


def sandbox_user() -> SandboxUser:
    """``QUANTWEB_SANDBOX_USER`` (a name or a uid; ``nobody`` by default), checked to exist and not be root."""
    who = os.environ.get(USER_ENV) or "nobody"
    try:
        entry = pwd.getpwuid(int(who)) if who.isdigit() else pwd.getpwnam(who)
    except KeyError:
        raise CheckpointError(
            f"refused to parse the checkpoint: the sandbox user {who!r} ({USER_ENV}) does not exist; create a "
            "dedicated unprivileged user (useradd --system --no-create-home --shell /usr/sbin/nologin "
            f"quantweb-sandbox) and set {USER_ENV} to it in the worker's environment.",
            field="checkpoint",
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise CheckpointError(
            f"refused to parse the checkpoint: the sandbox user {who!r} ({USER_ENV}) is root or in group root; "
            "set it to an unprivileged user such as nobody.",
            field="checkpoint",
        )
    return SandboxUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _memory_limit_bytes(size: int) -> int:
    """The child's address-space cap: the setting, else room for torch itself plus a few copies of the file."""
    setting = os.environ.get(MEMORY_ENV)
    if setting:
        return int(float(setting) * 2**20)
    return 8 * 2**30 + 4 * size


def child_environment(home: str) -> dict[str, str]:
    """The child's whole environment: nothing of the worker's but the thread counts."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"}
    env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
    return env


_CHILD_CODE = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
    "from conversions.engine.model.sandbox import _main; _main(sys.argv[2:])"
)


def load_state_isolated(path: Path, parse: Parse) -> SandboxedState:
    """``parse(the file's bytes, path)`` in the confined child: its tensors by name, or its ``CheckpointError``.

    ``parse`` must be importable by module and name; it returns a flat dict of tensors or raises."""
    return _run_confined(path, parse, programs=False)


def check_program_isolated(path: Path, parse: Parse) -> SandboxedState:
    """As ``load_state_isolated``, for a ``parse`` that reads a ``torch.export`` archive (the child imports
    what that needs before it drops its privileges)."""
    return _run_confined(path, parse, programs=True)


def _run_confined(path: Path, parse: Parse, programs: bool) -> SandboxedState:
    user = sandbox_user()
    limits = (_memory_limit_bytes(path.stat().st_size), int(os.environ.get(CPU_ENV) or DEFAULT_CPU_S))
    reference = f"{parse.__module__}:{parse.__qualname__}"
    # -I: the interpreter reads no PYTHON* variable and adds no folder of its own; the import path is the worker's.
    search = [os.path.abspath(p or ".") for p in sys.path]
    with tempfile.TemporaryDirectory(prefix="quantweb-sandbox-") as home, path.open("rb") as source:
        read_end, write_end = os.pipe()
        conn = Connection(read_end, writable=False)
        args = [json.dumps(search), str(source.fileno()), str(write_end), reference, str(path),
                str(user.uid), str(user.gid), user.name, str(limits[0]), str(limits[1]), str(int(programs))]  # fmt: skip
        proc = None
        try:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-c", _CHILD_CODE, *args],
                    env=child_environment(home), cwd="/", stdin=subprocess.DEVNULL,
                    pass_fds=(source.fileno(), write_end), close_fds=True,
                )  # fmt: skip
            finally:
                os.close(write_end)  # only the child holds the write end: its death is an EOF here
            return _receive(proc, conn, path, limits)
        finally:
            conn.close()
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()


def _receive(proc: subprocess.Popen, conn: Connection, path: Path, limits: tuple[int, int]) -> SandboxedState:
    try:
        if not conn.poll(TIMEOUT_S):
            raise CheckpointError(
                f"reading {path} in the sandboxed process did not finish within {TIMEOUT_S:.0f} s; check that "
                "{checkpoint} is a state dict written by torch.save, or have a staff member trust it ({trust_checkpoint})."
            )
        header = json.loads(conn.recv_bytes(1 << 24).decode("utf-8"))
        if header["status"] == "error":
            raise CheckpointError(header["message"], field=header.get("field"))
        state = {}
        for name, dtype, shape, nbytes in header["tensors"]:
            state[str(name)] = _tensor(conn, _DTYPES[dtype], [int(d) for d in shape], int(nbytes))
    except EOFError:  # the child died before or while answering
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise CheckpointError(
            f"the sandboxed process reading {path} {_death(proc.returncode)} before answering; its limits are "
            f"{MEMORY_ENV}={limits[0] // 2**20} MB of address space and "
            f"{CPU_ENV}={limits[1]} CPU seconds: raise them in the worker's "
            "environment if the file is that big, or check that {checkpoint} is a state dict written by torch.save."
        ) from None
    except (KeyError, ValueError, TypeError, RuntimeError) as err:  # a malformed answer: the child misbehaved
        raise CheckpointError(
            f"the sandboxed process reading {path} sent a malformed answer ({type(err).__name__}: {err}); "
            "the file may be crafted to attack the loader: do not trust {checkpoint}."
        ) from None
    return SandboxedState(state, int(header["uid"]))


def _tensor(conn: Connection, dtype: torch.dtype, shape: list[int], nbytes: int) -> torch.Tensor:
    element = torch.empty((), dtype=dtype).element_size()
    if nbytes != math.prod(shape) * element or min(shape, default=0) < 0:
        raise ValueError(f"{nbytes} bytes do not make a {dtype} tensor of shape {tuple(shape)}")
    buffer = bytearray(nbytes)
    if nbytes:  # recv_bytes_into refuses (BufferTooShort) a message longer than the header declared
        if conn.recv_bytes_into(buffer) != nbytes:
            raise ValueError("a tensor's bytes are shorter than the header declared")
    else:
        conn.recv_bytes()
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(buffer, dtype=dtype).reshape(shape)


class _Refused(Exception):
    """The child could not confine itself; the file was not parsed."""


def _main(argv: list[str]) -> None:
    """The child: confines itself, parses, answers on the pipe. Runs under ``python -I -c``."""
    source_fd, answer_fd, reference, path, uid, gid, user, memory, cpu_s, programs = argv
    conn = Connection(int(answer_fd), readable=False)
    try:
        module, _, name = reference.partition(":")
        parse = __import__(module, fromlist=[name])
        for part in name.split("."):
            parse = getattr(parse, part)
        stream = os.fdopen(int(source_fd), "rb")
        _warm_up(programs == "1")  # the interpreter and torch may be readable by root only: import everything before the drop
        _confine(int(uid), int(gid), user)
        _limit(int(memory), int(cpu_s))
        _answer(conn, parse(stream, Path(path)), path)
    except _Refused as err:
        message = f"refused to parse {path} unconfined: the sandboxed process could not {err}; " + _HOW_TO_RUN.format(
            user=f"{USER_ENV}={user}"
        )
        conn.send_bytes(json.dumps({"status": "error", "message": message, "field": "checkpoint"}).encode())
    except CheckpointError as err:
        if "allocate memory" in err.template:  # torch's allocator under RLIMIT_AS, worded by loading as unreadable
            conn.send_bytes(_failure(f"ran out of memory under its limit of {int(memory) // 2**20} MB"))
            return
        conn.send_bytes(json.dumps({"status": "error", "message": err.template, "field": err.field}).encode())
    except MemoryError:
        conn.send_bytes(_failure("ran out of memory (MemoryError)"))
    except BaseException as err:  # everything else goes back to the parent as one message
        conn.send_bytes(_failure(f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"))
    finally:
        conn.close()


def _answer(conn: Connection, state: dict[str, torch.Tensor], path: str) -> None:
    entries, blobs = [], []
    for name, tensor in state.items():
        if tensor.dtype not in _DTYPES.values() or tensor.layout != torch.strided:
            raise CheckpointError(
                f"{path}: the tensor {name} is a {tensor.dtype} {tensor.layout} tensor, which the sandboxed load "
                "cannot pass on; save plain float weights, or have a staff member trust {checkpoint} "
                "({trust_checkpoint}) so it loads in the worker itself."
            )
        flat = tensor.detach().contiguous().reshape(-1)
        raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        entries.append([name, str(tensor.dtype).removeprefix("torch."), list(tensor.shape), len(raw)])
        blobs.append(raw)
    conn.send_bytes(json.dumps({"status": "ok", "uid": os.getuid(), "tensors": entries}).encode())
    for raw in blobs:
        conn.send_bytes(raw)


def _confine(uid: int, gid: int, user: str) -> None:
    """No network, no way back to more privileges, the sandbox user: all of it, or ``_Refused`` saying what failed."""
    if os.name != "posix" or not sys.platform.startswith("linux"):
        raise _Refused(f"confine itself on {sys.platform} (the sandbox needs Linux namespaces)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise _Refused(f"leave the network (unshare(CLONE_NEWNET) failed: {os.strerror(err)})")
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as err:
        raise _Refused(f"become {user} (uid {uid}): {err.strerror}") from None
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _Refused(f"set no_new_privs ({os.strerror(ctypes.get_errno())})")
    if (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) != (uid, uid, gid, gid) or os.getgroups():
        raise _Refused(f"become {user}: still uid {os.geteuid()} gid {os.getegid()} groups {os.getgroups()}")


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
    return json.dumps({"status": "error", "message": message, "field": "checkpoint"}).encode()


def _warm_up(programs: bool) -> None:
    """Runs once, before the drop, everything a parse imports lazily: a state dict's, and a torch.export
    archive's when ``programs`` (exporting a tiny program costs about a second, so only then)."""
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2, dtype=torch.bfloat16)}, buffer)
    buffer.seek(0)
    torch.load(buffer, map_location="cpu", weights_only=True)
    torch.zeros(1).view(torch.uint8).numpy()
    if not programs:
        return
    import encodings.cp437  # noqa: F401  (zipfile decodes member names without the UTF-8 flag with it)

    program = io.BytesIO()
    torch.export.save(torch.export.export(torch.nn.Linear(2, 2).eval(), (torch.zeros(1, 2),)), program)
    program.seek(0)
    torch.export.load(program).graph_module  # noqa: B018  (touches the deserialised graph's lazy imports)


def _limit(memory: int, cpu_s: int) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(used.ru_utime + used.ru_stime) + 1 + cpu_s  # the seconds spent importing torch do not count
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    # Nothing to write: a file taken over by the parse cannot leave data in /tmp (Python ignores SIGXFSZ, so
    # a write fails with EFBIG); the answer pipe is not a regular file and is not limited.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
