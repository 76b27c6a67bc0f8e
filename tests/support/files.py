"""Small real files for portal tests: a tiny CNN with its architecture file, image folders, zip archives.

Nothing here is imported by the portal itself.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

TINY_MODEL_SOURCE = '''\
import torch.nn as nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
'''


def write_tiny_model(folder: Path) -> tuple[Path, Path]:
    """A 10-class CNN: its architecture file (``model.py``, factory ``build``) and a state-dict ``.pth``."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "model.py"
    source.write_text(TINY_MODEL_SOURCE)
    namespace: dict = {}
    exec(compile(TINY_MODEL_SOURCE, str(source), "exec"), namespace)
    torch.manual_seed(0)
    checkpoint = folder / "tiny.pth"
    torch.save(namespace["build"]().state_dict(), checkpoint)
    return checkpoint, source


def register_tiny(folder: Path, user=None):
    """Registers the tiny CNN (trusted by a staff member: its architecture is an uploaded .py) and a small
    ImageFolder; returns ``(checkpoint, dataset)``."""
    from conversions.models import Checkpoint, Dataset

    checkpoint_path, source = write_tiny_model(folder / "model")
    ckpt = Checkpoint(name="tiny", version=Checkpoint.next_version("tiny"), architecture="build",
                      input_shape=[1, 3, 32, 32], created_by=user)  # fmt: skip
    ckpt.save()
    with open(checkpoint_path, "rb") as weights, open(source, "rb") as code:
        ckpt.file.save("tiny.pth", weights, save=False)
        ckpt.architecture_file.save("model.py", code, save=False)
    ckpt.record_file_digest()
    ckpt.save()
    ckpt.trust(staff_member())
    ds = Dataset(name=f"pets-{ckpt.version}", source=Dataset.Source.SERVER,
                 path=str(write_image_folder(folder / "pets")), created_by=user)  # fmt: skip
    ds.detect_structure()
    ds.save()
    ds.refresh_thumbnails()
    ds.save(update_fields=["thumbnails"])
    return ckpt, ds


def staff_member():
    """The staff user who trusts test checkpoints."""
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="trusting-staff", defaults={"is_staff": True})
    return user


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 8) -> Path:
    """An ImageFolder of small noisy JPEGs (real decodes, distinct pixels)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{cls}_{i:02d}.jpg", quality=90)
    return root


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, str(path.relative_to(folder.parent)))
    return archive


