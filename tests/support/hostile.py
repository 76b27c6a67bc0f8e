"""Hostile inputs for the trust and upload tests: each would create a marker file if its code ran.

Nothing here is imported by the portal itself.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path


def marker_source(marker: Path) -> str:
    """A Python architecture file that touches ``marker`` when imported, then builds a tiny CNN."""
    return (
        "from pathlib import Path\n"
        "import torch.nn as nn\n"
        f"Path({str(marker)!r}).write_text('code ran')\n\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(8, 10))\n"
    )


class _TouchOnUnpickle:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_pickling_pt2(path: Path, marker: Path) -> Path:
    """A real ``torch.export`` archive whose first weight's payload is a pickle that touches ``marker``.

    The weights config marks the payload ``use_pickle``, so ``torch.export.load`` unpickles it with
    ``weights_only=False``: exactly what an attacker would upload."""
    import torch

    plain = path.with_name(path.stem + "-plain.pt2")
    write_plain_pt2(plain)
    payload = io.BytesIO()
    torch.save(_TouchOnUnpickle(marker), payload)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("_weights_config.json"):
                config = json.loads(data)
                first = next(iter(config["config"].values()))
                first["use_pickle"] = True
                victim = first["path_name"]
                data = json.dumps(config).encode()
            out.writestr(info, data)
    with zipfile.ZipFile(path) as src:
        members = {i.filename: src.read(i.filename) for i in src.infolist()}
    with zipfile.ZipFile(path, "w") as out:
        for name, data in members.items():
            out.writestr(
                name,
                payload.getvalue()
                if name.endswith(f"/data/weights/{victim}")
                else data,
            )
    plain.unlink()
    return path


def write_plain_pt2(path: Path, size: int = 16) -> Path:
    """A plain ``torch.export.save`` of a tiny CNN: raw weight bytes, nothing pickled."""
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    torch.export.save(
        torch.export.export(net.eval(), (torch.zeros(1, 3, size, size),)), str(path)
    )
    return path
