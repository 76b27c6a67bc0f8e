"""Dataset layout detection: which images a folder holds, in which splits, with which class labels.

Accepted layouts (``dataset_type``):

- ``classification``: ImageFolder with splits ``<root>/{train,val,valid,validation,test}/<class>/<image>``,
  or a bare ImageFolder ``<root>/<class>/<image>``;
- ``detection``: YOLO ``<root>/images/{train,val,test}/`` (+ ``<root>/labels/``), ``<root>/{train,val,test}/images/``,
  or a ``data.yaml`` whose ``train/val/test`` entries are image folders or list files;
- ``images``: a flat folder of images (split folders of bare images too), or a text file listing image paths.

``auto`` tries detection, then classification, then images, and says why it chose what it chose. Only the
file listing happens here; nothing is decoded.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DatasetError

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


# ------------------------------------------------------------------------------------------- listing


class _Scan:
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


class _Lister:
    """Recursive image listing that follows symlinked folders once and remembers what it could not read."""

    def __init__(self) -> None:
        self.unreadable: list[str] = []
        self.ignored = 0
        self._cache: dict[Path, _Scan] = {}

    def scan(self, path: Path) -> _Scan:
        if path not in self._cache:
            self._cache[path] = _Scan(path, self.unreadable)
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


def _fail(root: Path, what: str) -> DatasetError:
    return DatasetError(f"{what}\nfound:\n{render_tree(root)}\n{ACCEPTED_LAYOUTS}")


def _split_dirs(scan: _Scan) -> dict[str, Path]:
    return {name: path for name, path in scan.dirs.items() if name.lower() in SPLIT_RANK}


def _choose_split(splits: dict[str, int], requested: str | None, root: Path) -> tuple[str | None, str]:
    if requested is not None:
        if requested not in splits:
            avail = ", ".join(f"{k!r}" for k in splits) or "none: this layout has no split folders"
            raise DatasetError(f"--split {requested!r} does not exist in {root} (splits found: {avail}); pick one of them.")
        return requested, f"split {requested!r} as requested"
    usable = [s for s, n in splits.items() if n > 0]
    if not usable:
        return None, ""
    best = sorted(usable, key=lambda s: (SPLIT_RANK.get(s.lower(), 3), s))[0]
    return best, f"split {best!r} chosen (calibration prefers val, then test, then train)"


def _structure(
    layout: str,
    root: Path,
    items: list[ImageItem],
    classes: list[str],
    reason: str,
    lister: _Lister,
    split: str | None,
    **extra: Any,
) -> DatasetStructure:
    splits: dict[str, int] = {}
    for it in items:
        if it.split is not None:
            splits[it.split] = splits.get(it.split, 0) + 1
    chosen, why = _choose_split(splits, split, root) if (splits or split) else (None, "")
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


# ------------------------------------------------------------------------------------ classification


def _class_dirs(lister: _Lister, path: Path) -> dict[str, Path]:
    return {name: d for name, d in lister.scan(path).dirs.items() if lister.has_images(d)}


def _imagefolder(
    lister: _Lister, root: Path, split_dirs: dict[str, Path] | None, reason: str, split: str | None
) -> DatasetStructure:
    per_split = {name: _class_dirs(lister, d) for name, d in (split_dirs or {None: root}).items()}
    classes = sorted({c for dirs in per_split.values() for c in dirs})
    index = {c: i for i, c in enumerate(classes)}
    items = [
        ImageItem(path, index[cls], name)
        for name, dirs in per_split.items()
        for cls, d in dirs.items()
        for path in lister.images(d)
    ]
    return _structure("imagefolder", root, items, classes, reason, lister, split)


# ----------------------------------------------------------------------------------------- detection


def _label_path(image_path: str) -> str:
    """Ultralytics' rule: the last ``/images/`` becomes ``/labels/`` and the extension ``.txt``."""
    head, sep, tail = image_path.rpartition(f"{os.sep}images{os.sep}")
    base = f"{head}{os.sep}labels{os.sep}{tail}" if sep else image_path
    return os.path.splitext(base)[0] + ".txt"


def _yolo(lister: _Lister, root: Path, sources: dict[str | None, list[str]], reason: str, split: str | None,
          names: list[str] | None = None) -> DatasetStructure:
    items = [ImageItem(path, None, name) for name, paths in sources.items() for path in paths]
    labelled = sum(1 for it in items if os.path.isfile(_label_path(it.path)))
    reason = f"{reason}; labels for {labelled:,} of {len(items):,} images"
    return _structure("yolo", root, items, list(names or []), reason, lister, split, labelled=labelled)


def _read_list_file(path: Path) -> list[str]:
    """Image paths from a text file, one a line; relative ones are relative to the file's folder."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise DatasetError(f"cannot read the image list {path}: {err.strerror or err}; check the path and permissions.") from None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        out.append(str(p if p.is_absolute() else (path.parent / p)))
    return out


def _yaml_entry(lister: _Lister, base: Path, value: Any) -> tuple[list[str], list[str]]:
    """Images of one ``train:``/``val:``/``test:`` entry and the entries that do not exist."""
    images: list[str] = []
    missing: list[str] = []
    for raw in value if isinstance(value, list) else [value]:
        target = Path(str(raw))
        if not target.is_absolute():
            target = base / target
            if not target.exists() and str(raw).startswith("../"):
                target = base / str(raw)[3:]  # Roboflow exports write ../train/images; Ultralytics accepts it too
        if target.is_dir():
            images.extend(lister.images(target))
        elif target.is_file() and target.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(str(target))
        elif target.is_file():
            images.extend(_read_list_file(target))
        else:
            missing.append(f"{raw} -> {target}")
    return images, missing


def _from_yaml(lister: _Lister, yaml_path: Path, split: str | None) -> DatasetStructure:
    import yaml  # PyYAML: only needed for this layout

    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise DatasetError(f"cannot read {yaml_path}: {err}; fix the YAML or point --data-dir at the image folder.") from None
    if not isinstance(data, dict) or not any(k in data for k in ("train", "val", "test")):
        raise DatasetError(f"{yaml_path} has no train:/val:/test: entries; it does not describe a YOLO dataset.")
    base = yaml_path.parent
    if data.get("path"):
        base = Path(str(data["path"]))
        base = base if base.is_absolute() else (yaml_path.parent / base)
    sources: dict[str | None, list[str]] = {}
    missing: list[str] = []
    for key in ("train", "val", "test"):
        if data.get(key):
            imgs, miss = _yaml_entry(lister, base, data[key])
            missing.extend(f"{key}: {m}" for m in miss)
            if imgs:
                sources[key] = imgs
    names = data.get("names") or []
    if isinstance(names, dict):
        names = [str(names[k]) for k in sorted(names)]
    if not sources:
        raise _fail(base, f"{yaml_path} lists no existing images (missing: {'; '.join(missing) or 'nothing listed'}); "
                          "fix its path:/train:/val:/test: entries (relative to the YAML or its path:).")
    reason = f"YOLO data file {yaml_path.name} ({', '.join(sources)})"
    if missing:
        reason += f"; entries not found: {'; '.join(missing)}"
    return _yolo(lister, yaml_path.parent, sources, reason, split, [str(n) for n in names])


def _find_yaml(scan: _Scan) -> Path | None:
    candidates = [p for p in (scan.path / "data.yaml", scan.path / "dataset.yaml", scan.path / "data.yml") if p.is_file()]
    return candidates[0] if candidates else None


def _detect_yolo(lister: _Lister, root: Path, scan: _Scan, split: str | None) -> DatasetStructure | None:
    yaml_path = _find_yaml(scan)
    if yaml_path is not None:
        return _from_yaml(lister, yaml_path, split)
    lower = {name.lower(): path for name, path in scan.dirs.items()}
    images_dir = lower.get("images")
    splits = _split_dirs(lister.scan(images_dir)) if images_dir else {}
    if images_dir and lister.has_images(images_dir) and (splits or "labels" in lower):
        # images/<class>/ without labels/ is more likely a nested ImageFolder than a YOLO tree
        if splits:
            sources = {name: lister.images(d) for name, d in splits.items()}
            return _yolo(lister, root, sources, f"YOLO images/{{{','.join(splits)}}} folders", split)
        return _yolo(lister, root, {None: lister.images(images_dir)}, "YOLO images/ folder without splits", split)
    nested = {name: d / "images" for name, d in _split_dirs(scan).items() if (d / "images").is_dir()}
    if nested:
        sources = {name: lister.images(d) for name, d in nested.items()}
        return _yolo(lister, root, sources, f"YOLO {{{','.join(nested)}}}/images folders", split)
    return None


# ------------------------------------------------------------------------------------------ dispatch


def detect_dataset(data_dir: str | os.PathLike[str], dataset_type: str = "auto", split: str | None = None) -> DatasetStructure:
    """Finds the layout of ``data_dir`` (a folder, a ``data.yaml`` or an image list) and lists its images."""
    if dataset_type not in DATASET_TYPES:
        raise DatasetError(f"unknown --dataset-type {dataset_type!r}; choose from {', '.join(DATASET_TYPES)}.")
    root = Path(data_dir).expanduser()
    lister = _Lister()
    if not root.exists():
        raise DatasetError(f"--data-dir {root} does not exist; pass a folder of images, a data.yaml or an image list.")
    if root.is_file():
        return _detect_file(lister, root, dataset_type, split)
    root = root.resolve()
    scan = lister.scan(root)
    if dataset_type in ("auto", "detection"):
        found = _detect_yolo(lister, root, scan, split)
        if found is not None:
            return _check(found, root)
        if dataset_type == "detection":
            raise _fail(root, f"{root} is not a YOLO dataset (no data.yaml, images/ or <split>/images/ folder).")
    if dataset_type in ("auto", "classification"):
        found = _detect_classification(lister, root, scan, dataset_type, split)
        if found is not None:
            return _check(found, root)
    return _check(_detect_images(lister, root, scan, dataset_type, split), root)


def _detect_file(lister: _Lister, path: Path, dataset_type: str, split: str | None) -> DatasetStructure:
    path = path.resolve()
    if path.suffix.lower() in (".yaml", ".yml"):
        return _check(_from_yaml(lister, path, split), path.parent)
    if dataset_type not in ("auto", "images"):
        raise DatasetError(f"{path} is a file; --dataset-type {dataset_type} needs a folder (or a data.yaml for detection).")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        items = [ImageItem(str(path))]
        reason = "a single image file"
    else:
        items = [ImageItem(p) for p in _read_list_file(path)]
        reason = f"image list {path.name}, one path a line"
    return _check(_structure("filelist", path.parent, items, [], reason, lister, split), path.parent)


def _detect_classification(
    lister: _Lister, root: Path, scan: _Scan, dataset_type: str, split: str | None
) -> DatasetStructure | None:
    splits = {n: d for n, d in _split_dirs(scan).items() if lister.has_images(d)}
    others = {n: d for n, d in scan.dirs.items() if n not in splits and lister.has_images(d)}
    if splits:
        with_classes = {n for n, d in splits.items() if _class_dirs(lister, d)}
        loose = {n for n, d in splits.items() if lister.scan(d).images}
        if with_classes == set(splits) and not loose and not others:
            reason = f"ImageFolder with split folders {', '.join(splits)} holding class folders"
            return _imagefolder(lister, root, splits, reason, split)
        if with_classes and (loose or others):
            raise _fail(root, f"{root} mixes split folders with class folders ({', '.join(sorted(with_classes))}) and "
                              f"other images ({', '.join(sorted(loose | set(others)))}); ambiguous. Point --data-dir at one "
                              "dataset, or use --dataset-type images to take every image without labels.")
        if dataset_type == "classification":
            raise _fail(root, f"{root} has split folders but no class folders inside them; --dataset-type classification "
                              "needs <split>/<class>/<image>.")
        return None
    if len(others) >= 2 and not scan.images:
        reason = f"ImageFolder: {len(others)} class folders, no split folders"
        return _imagefolder(lister, root, None, reason, split)
    if dataset_type == "classification":
        if len(others) == 1 and not scan.images:
            return _imagefolder(lister, root, None, "ImageFolder with a single class folder", split)
        raise _fail(root, f"{root} has no class folders; --dataset-type classification needs <root>/<class>/<image> "
                          "or <root>/<split>/<class>/<image>.")
    if others and scan.images:
        raise _fail(root, f"{root} holds both images and folders of images ({', '.join(sorted(others))}); ambiguous. "
                          "Use --dataset-type images to take every image without labels, or move the loose images into "
                          "class folders.")
    return None


def _detect_images(lister: _Lister, root: Path, scan: _Scan, dataset_type: str, split: str | None) -> DatasetStructure:
    splits = {n: d for n, d in _split_dirs(scan).items() if lister.has_images(d)}
    if splits and not scan.images:
        items = [ImageItem(p, None, name) for name, d in splits.items() for p in lister.images(d)]
        reason = f"split folders {', '.join(splits)} of unlabelled images"
    else:
        with_images = [name for name, d in scan.dirs.items() if lister.has_images(d)]
        recursive = dataset_type == "images" or (not scan.images and len(with_images) == 1)
        items = [ImageItem(p) for p in lister.images(root, recursive=recursive)]
        if recursive and dataset_type != "images":
            reason = f"one sub-folder with images ({with_images[0]}) only, so no classes: every image below it, unlabelled"
        elif recursive:
            reason = "every image below the folder, unlabelled (--dataset-type images)"
        else:
            reason = "a flat folder of images"
    return _structure("images", root, items, [], reason, lister, split)


def _check(structure: DatasetStructure, root: Path) -> DatasetStructure:
    if structure.num_images == 0:
        unread = f" (could not list: {'; '.join(structure.unreadable_dirs)})" if structure.unreadable_dirs else ""
        raise _fail(root, f"no images found in {root}{unread}; point --data-dir at a folder of .jpg/.png images.")
    return structure
