"""What a hostile checkpoint would try, run by the sandboxed child in place of the parser.

The "checkpoint" it is handed is JSON: the files to open and to write, the 127.0.0.1 ports to connect to. It answers
with what it found, as JSON bytes in a uint8 tensor (the only thing the sandbox passes back). Everything it
needs is imported here, before the child drops its privileges.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401  (connecting encodes the host name; after the drop nothing imports)
import json
import os
import socket
from pathlib import Path
from typing import BinaryIO

import torch


def _errno_of(action) -> int:
    try:
        action()
    except OSError as err:
        return err.errno or -1
    return 0


def probe(stream: BinaryIO, path: Path) -> dict[str, torch.Tensor]:
    asked = json.loads(stream.read())
    status = Path("/proc/self/status").read_text()
    facts = {
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "groups": os.getgroups(),
        "environ": dict(os.environ),
        "no_new_privs": "NoNewPrivs:\t1" in status,
        "open": {f: _errno_of(lambda f=f: Path(f).read_bytes()) for f in asked["files"]},
        "connect": {
            str(port): _errno_of(lambda port=port: socket.create_connection(("127.0.0.1", port), timeout=2).close())
            for port in asked["ports"]
        },
        "parent_environ": _errno_of(lambda: Path(f"/proc/{os.getppid()}/environ").read_bytes()),
        "write": {f: _errno_of(lambda f=f: Path(f).write_bytes(b"left behind")) for f in asked.get("write", [])},
    }
    return {"facts": torch.frombuffer(bytearray(json.dumps(facts).encode()), dtype=torch.uint8)}


def facts_of(state: dict[str, torch.Tensor]) -> dict:
    return json.loads(state["facts"].numpy().tobytes())
