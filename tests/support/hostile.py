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


def write_file_reading_pt2(path: Path, secret: Path, size: int = 4) -> Path:
    """A real ``torch.export`` program whose graph calls ``aten::from_file`` on ``secret`` and adds the sum of
    its first ``size`` bytes to the input: a non-mutating aten op that reads a file when the program runs.

    ``torch.export`` cannot trace ``from_file`` (it has no meta kernel); one registered for the export only
    lets it, as an attacker writing the graph by hand could."""
    import torch

    class ReadsAFile(torch.nn.Module):
        def forward(self, x):
            data = torch.from_file(str(secret), shared=False, size=size, dtype=torch.uint8)
            return x + data.float().sum()

    def meta(filename, shared=None, size=0, *, dtype=None, layout=None, device=None, pin_memory=None):
        return torch.empty(size, dtype=dtype, device="meta")

    lib = torch.library.Library("aten", "IMPL")
    lib.impl("from_file", meta, "Meta")
    try:
        program = torch.export.export(ReadsAFile().eval(), (torch.zeros(1, 3, 4, 4),))
    finally:
        lib._destroy()
    torch.export.save(program, str(path))
    return path


def write_pt2_with_pickling_sample_inputs(path: Path, marker: Path) -> Path:
    """A plain archive whose sample-inputs member is a pickle that touches ``marker`` when fully unpickled
    (``torch.export.load`` tries ``weights_only=True``, then falls back to a full unpickle)."""
    import torch

    plain = write_plain_pt2(path.with_name(path.stem + "-plain.pt2"))
    payload = io.BytesIO()
    torch.save(_TouchOnUnpickle(marker), payload)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            sample = "/data/sample_inputs/" in f"/{info.filename}"
            out.writestr(info, payload.getvalue() if sample else src.read(info.filename))
    plain.unlink()
    return path
