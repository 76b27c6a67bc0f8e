"""A ``.pt2`` archive read without loading it: which of its payloads would be unpickled by ``torch.export.load``.

``torch.export.load`` unpickles (``weights_only=False``) every weight or constant the archive's own config
marks ``use_pickle``, every custom or opaque object constant and legacy ``<model>.pt`` weight files. A
plain ``torch.export.save`` of a vision model has none of these: its weights are raw bytes described by JSON.
So an archive with any of them runs code from the file and needs trust, like a pickled module; one without
them is parsed untrusted, in the sandbox first.

Its sample inputs are a pickle too (``torch.load``, falling back to a full unpickle). Nothing here reads them
(the portal looks at an upload with this module, in the web process, and must unpickle nothing);
an untrusted archive is loaded ``without_sample_inputs``, since the engine never uses them.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import BinaryIO

_OPAQUE_DIRS = ("/data/aotinductor/", "/data/executorch/", "/data/mtia/")
"""Compiled code or other formats the portal never needs: refused as opaque."""


def pickled_payloads(path: Path) -> list[str]:
    """The members of the ``.pt2`` at ``path`` that loading would unpickle or run (empty: none)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return []  # not an archive at all: torch.export.load says so in its own words
    found: list[str] = []
    with archive:
        names = archive.namelist()
        for name in names:
            if any(d in f"/{name}" for d in _OPAQUE_DIRS):
                found.append(f"{name} (compiled or opaque code)")
            elif name.endswith(("_weights_config.json", "_constants_config.json")):
                found.extend(_pickled_in_config(archive, name))
            elif _is_legacy_payload(name):
                found.append(f"{name} (a legacy pickled payload)")
    return found


def without_sample_inputs(stream: BinaryIO) -> io.BytesIO:
    """The archive in ``stream`` rewritten in memory with its sample inputs emptied (``torch.export.load``
    then leaves ``example_inputs`` None instead of unpickling them); every other member as it was."""
    out = io.BytesIO()
    with zipfile.ZipFile(stream) as archive, zipfile.ZipFile(out, "w") as copy:
        for info in archive.infolist():
            sample = "/data/sample_inputs/" in f"/{info.filename}"
            copy.writestr(info, b"" if sample else archive.read(info))
    out.seek(0)
    return out


def _pickled_in_config(archive: zipfile.ZipFile, name: str) -> list[str]:
    try:
        config = json.loads(archive.read(name)).get("config", {})
    except (ValueError, AttributeError):
        return [f"{name} (unreadable payload config)"]
    found = []
    for fqn, meta in config.items():
        path_name = str(meta.get("path_name", "")) if isinstance(meta, dict) else ""
        if (
            not isinstance(meta, dict)
            or meta.get("use_pickle")
            or path_name.startswith(("custom_obj", "opaque_obj"))
        ):
            found.append(f"{fqn} in {name} (a pickled payload)")
    return found


def _is_legacy_payload(name: str) -> bool:
    parts = name.split("/")
    return (
        len(parts) >= 3
        and parts[-3:-1] in (["data", "weights"], ["data", "constants"])
        and name.endswith(".pt")
    )

