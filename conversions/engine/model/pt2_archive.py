"""A ``.pt2`` archive read without loading it: which of its payloads would be unpickled by ``torch.export.load``.

``torch.export.load`` unpickles (``weights_only=False``) every weight or constant the archive's own config
marks ``use_pickle``, every custom or opaque object constant, legacy ``<model>.pt`` weight files, and a
sample-inputs file that the safe unpickler refuses. A plain ``torch.export.save`` of a vision model has
none of these: its weights are raw bytes described by JSON. So an archive with any of them runs code from
the file and needs trust, like a pickled module; one without them loads untrusted.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

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
            elif "/data/sample_inputs/" in f"/{name}" and not _loads_safely(
                archive.read(name)
            ):
                found.append(f"{name} (sample inputs that only a full unpickle reads)")
    return found


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


def _loads_safely(data: bytes) -> bool:
    import torch

    if not data:
        return True
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # anything the safe unpickler refuses is what torch.export.load would fully unpickle
        return False
    return True
