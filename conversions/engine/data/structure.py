"""What a dataset folder holds (DatasetStructure) and the one-pass folder listing every layout detector uses."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conversions.engine.errors import DatasetError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)


DATASET_TYPES = ("auto", "classification", "detection", "images")


SPLIT_RANK = {"val": 0, "valid": 0, "validation": 0, "test": 1, "train": 2}
"""Calibration prefers a validation split, then test, then train."""


ACCEPTED_LAYOUTS = """accepted layouts:
  ImageFolder with splits  <root>/{train,val,valid,validation,test}/<class>/<image>
  ImageFolder              <root>/<class>/<image>   (two or more class folders)
  YOLO                     <root>/images/{train,val,test}/ with <root>/labels/...,
                           <root>/{train,val,test}/images/, or <root>/data.yaml
  flat folder              <root>/<image>
  image list               a text file with one image path per line"""


LAYOUT_TITLES = {"imagefolder": "ImageFolder", "yolo": "YOLO", "images": "Image folder", "filelist": "Image list"}


@dataclass(frozen=True)
class ImageItem:
    """One image of the dataset: its path, class index (``None`` when unlabelled) and split folder."""

    path: str
    label: int | None = None
    split: str | None = None


def broken_names(broken: list[dict[str, str]], limit: int = 5) -> str:
    """``a.jpg: empty file (0 bytes); b.jpg: ...`` for the first ``limit`` files, then how many more."""
    shown = "; ".join(f"{os.path.basename(b['path'])}: {b['reason']}" for b in broken[:limit])
    return shown + (f"; and {len(broken) - limit:,} more" if len(broken) > limit else "")


@dataclass
class DatasetStructure:
    """What ``detect_dataset`` found. ``to_dict()`` is what the report and the portal store.

    ``splits`` counts images per split folder; ``class_counts`` counts images per class over all splits;
    ``split`` is the split calibration uses first; ``reason`` says why this layout and split were chosen.
    """

    layout: str
    root: str
    split: str | None
    splits: dict[str, int]
    classes: list[str]
    class_counts: dict[str, int]
    num_images: int
    reason: str
    labelled: int | None = None
    """YOLO only: how many images have a label file."""
    ignored_files: int = 0
    """Files without an image extension (README, labels, ...) that were not considered."""
    unreadable_dirs: list[str] = field(default_factory=list)
    broken_files: list[dict[str, str]] = field(default_factory=list)
    """Files that failed the header check (data/headers.py): ``{"path", "reason"}``, sampling leaves them out."""
    header_checked: int = 0
    items: list[ImageItem] = field(default_factory=list, repr=False, compare=False)

    @property
    def title(self) -> str:
        return LAYOUT_TITLES.get(self.layout, self.layout)

    def describe(self) -> str:
        """One line: ``ImageFolder, split 'val' (403 images), 7 classes, 1,403 images``."""
        parts = [self.title]
        if self.split is not None:
            parts.append(f"split {self.split!r} ({self.splits.get(self.split, 0):,} images)")
        if self.classes:
            parts.append(f"{len(self.classes)} classes")
        parts.append(f"{self.num_images:,} images")
        if self.broken_files:
            parts.append(f"{len(self.broken_files):,} broken ({broken_names(self.broken_files)})")
        return ", ".join(parts)

    def split_order(self) -> list[str | None]:
        """Splits in calibration preference order: the chosen split first, then val, test, train, others."""
        if not self.splits:
            return [None]
        rest = sorted(self.splits, key=lambda s: (SPLIT_RANK.get(s.lower(), 3), s))
        return [self.split] + [s for s in rest if s != self.split] if self.split in self.splits else rest

    def items_in(self, split: str | None) -> list[ImageItem]:
        return [it for it in self.items if it.split == split]

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "items"}
        out["description"] = self.describe()
        return out


class Scan:
    """Lists a folder once: image files, sub-folders and other files, sorted, hidden entries skipped."""

    def __init__(self, path: Path, unreadable: list[str]) -> None:
        self.path = path
        self.images: list[str] = []
        self.dirs: dict[str, Path] = {}
        self.others = 0
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as err:
            unreadable.append(f"{path}: {err.strerror or err}")
            entries = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                self.dirs[entry.name] = Path(entry.path)
            elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                self.images.append(entry.path)  # broken symlinks included: reading them reports the reason
            else:
                self.others += 1


class Lister:
    """Recursive image listing that follows symlinked folders once and remembers what it could not read."""

    def __init__(self) -> None:
        self.unreadable: list[str] = []
        self.ignored = 0
        self._cache: dict[Path, Scan] = {}

    def scan(self, path: Path) -> Scan:
        if path not in self._cache:
            self._cache[path] = Scan(path, self.unreadable)
        return self._cache[path]

    def images(self, path: Path, recursive: bool = True) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        stack = [path]
        while stack:
            current = stack.pop()
            real = os.path.realpath(current)
            if real in seen:
                continue
            seen.add(real)
            scan = self.scan(current)
            out.extend(scan.images)
            self.ignored += scan.others
            if recursive:
                stack.extend(reversed(list(scan.dirs.values())))
        return sorted(out)

    def has_images(self, path: Path, _seen: set[str] | None = None) -> bool:
        seen = set() if _seen is None else _seen
        real = os.path.realpath(path)
        if real in seen:  # a symlink loop
            return False
        seen.add(real)
        scan = self.scan(path)
        return bool(scan.images) or any(self.has_images(d, seen) for d in scan.dirs.values())


def render_tree(root: Path, depth: int = 3, per_dir: int = 6) -> str:
    """A short ``tree``-like view of what was found, for error messages."""
    lines = [str(root)]

    def walk(path: Path, prefix: str, level: int) -> None:
        try:
            entries = sorted(os.scandir(path), key=lambda e: (not e.is_dir(), e.name))
        except OSError as err:
            lines.append(f"{prefix}(cannot list: {err.strerror or err})")
            return
        for i, entry in enumerate(entries):
            if i == per_dir:
                lines.append(f"{prefix}... ({len(entries) - per_dir} more)")
                break
            is_dir = entry.is_dir()
            lines.append(f"{prefix}{entry.name}{'/' if is_dir else ''}")
            if is_dir and level < depth:
                walk(Path(entry.path), prefix + "    ", level + 1)

    if root.is_dir():
        walk(root, "    ", 1)
    if len(lines) == 1:
        lines.append("    (empty)")
    return "\n".join(lines)


def fail(root: Path, what: str) -> DatasetError:
    return DatasetError(f"{what}\nfound:\n{render_tree(root)}\n{ACCEPTED_LAYOUTS}")


def split_dirs(scan: Scan) -> dict[str, Path]:
    return {name: path for name, path in scan.dirs.items() if name.lower() in SPLIT_RANK}


def choose_split(splits: dict[str, int], requested: str | None, root: Path) -> tuple[str | None, str]:
    if requested is not None:
        if requested not in splits:
            avail = ", ".join(f"{k!r}" for k in splits) or "none: this layout has no split folders"
            raise DatasetError(f"{{split}} {requested!r} does not exist in {root} (splits found: {avail}); pick one of them.")
        return requested, f"split {requested!r} as requested"
    usable = [s for s, n in splits.items() if n > 0]
    if not usable:
        return None, ""
    best = sorted(usable, key=lambda s: (SPLIT_RANK.get(s.lower(), 3), s))[0]
    return best, f"split {best!r} chosen (calibration prefers val, then test, then train)"


def make_structure(
    layout: str,
    root: Path,
    items: list[ImageItem],
    classes: list[str],
    reason: str,
    lister: Lister,
    split: str | None,
    **extra: Any,
) -> DatasetStructure:
    splits: dict[str, int] = {}
    for it in items:
        if it.split is not None:
            splits[it.split] = splits.get(it.split, 0) + 1
    chosen, why = choose_split(splits, split, root) if (splits or split) else (None, "")
    counts = {name: 0 for name in classes} if layout == "imagefolder" else {}
    if counts:
        for it in items:
            counts[classes[it.label]] += 1
    return DatasetStructure(
        layout=layout,
        root=str(root),
        split=chosen,
        splits=splits,
        classes=list(classes),
        class_counts=counts,
        num_images=len(items),
        reason="; ".join(p for p in (reason, why) if p),
        ignored_files=lister.ignored,
        unreadable_dirs=list(lister.unreadable),
        items=items,
        **extra,
    )
