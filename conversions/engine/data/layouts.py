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

import os
from pathlib import Path

from conversions.engine.data.headers import broken_files
from conversions.engine.data.structure import (
    DATASET_TYPES,
    IMAGE_EXTENSIONS,
    DatasetStructure,
    broken_names,
    ImageItem,
    Lister,
    Scan,
    fail,
    make_structure,
    split_dirs,
)
from conversions.engine.data.yolo import detect_yolo, from_yaml, read_list_file
from conversions.engine.errors import DatasetError

# ------------------------------------------------------------------------------------------- listing


# ------------------------------------------------------------------------------------ classification


def _class_dirs(lister: Lister, path: Path) -> dict[str, Path]:
    return {name: d for name, d in lister.scan(path).dirs.items() if lister.has_images(d)}


def _imagefolder(
    lister: Lister, root: Path, split_dirs: dict[str, Path] | None, reason: str, split: str | None
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
    return make_structure("imagefolder", root, items, classes, reason, lister, split)


# ----------------------------------------------------------------------------------------- detection


# ------------------------------------------------------------------------------------------ dispatch


def detect_dataset(data_dir: str | os.PathLike[str], dataset_type: str = "auto", split: str | None = None) -> DatasetStructure:
    """Finds the layout of ``data_dir`` (a folder, a ``data.yaml`` or an image list) and lists its images."""
    if dataset_type not in DATASET_TYPES:
        raise DatasetError(f"unknown {{dataset_type}} {dataset_type!r}; choose from {', '.join(DATASET_TYPES)}.")
    root = Path(data_dir).expanduser()
    lister = Lister()
    if not root.exists():
        raise DatasetError(f"{{dataset_dir}} {root} does not exist; pass a folder of images, a data.yaml or an image list.")
    if root.is_file():
        return _detect_file(lister, root, dataset_type, split)
    root = root.resolve()
    scan = lister.scan(root)
    if dataset_type in ("auto", "detection"):
        found = detect_yolo(lister, root, scan, split)
        if found is not None:
            return _check(found, root)
        if dataset_type == "detection":
            raise fail(root, f"{root} is not a YOLO dataset (no data.yaml, images/ or <split>/images/ folder).")
    if dataset_type in ("auto", "classification"):
        found = _detect_classification(lister, root, scan, dataset_type, split)
        if found is not None:
            return _check(found, root)
    return _check(_detect_images(lister, root, scan, dataset_type, split), root)


def _detect_file(lister: Lister, path: Path, dataset_type: str, split: str | None) -> DatasetStructure:
    path = path.resolve()
    if path.suffix.lower() in (".yaml", ".yml"):
        return _check(from_yaml(lister, path, split), path.parent)
    if dataset_type not in ("auto", "images"):
        raise DatasetError(f"{path} is a file; {{dataset_type}} {dataset_type} needs a folder (or a data.yaml for detection).")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        items = [ImageItem(str(path))]
        reason = "a single image file"
    else:
        items = [ImageItem(p) for p in read_list_file(path)]
        reason = f"image list {path.name}, one path a line"
    return _check(make_structure("filelist", path.parent, items, [], reason, lister, split), path.parent)


def _detect_classification(
    lister: Lister, root: Path, scan: Scan, dataset_type: str, split: str | None
) -> DatasetStructure | None:
    splits = {n: d for n, d in split_dirs(scan).items() if lister.has_images(d)}
    others = {n: d for n, d in scan.dirs.items() if n not in splits and lister.has_images(d)}
    if splits:
        with_classes = {n for n, d in splits.items() if _class_dirs(lister, d)}
        loose = {n for n, d in splits.items() if lister.scan(d).images}
        if with_classes == set(splits) and not loose and not others:
            reason = f"ImageFolder with split folders {', '.join(splits)} holding class folders"
            return _imagefolder(lister, root, splits, reason, split)
        if with_classes and (loose or others):
            raise fail(root, f"{root} mixes split folders with class folders ({', '.join(sorted(with_classes))}) and "
                              f"other images ({', '.join(sorted(loose | set(others)))}); ambiguous. Point {{dataset_dir}} at one "
                              "dataset, or use {dataset_type} images to take every image without labels.")
        if dataset_type == "classification":
            raise fail(root, f"{root} has split folders but no class folders inside them; {{dataset_type}} classification "
                              "needs <split>/<class>/<image>.")
        return None
    if len(others) >= 2 and not scan.images:
        reason = f"ImageFolder: {len(others)} class folders, no split folders"
        return _imagefolder(lister, root, None, reason, split)
    if dataset_type == "classification":
        if len(others) == 1 and not scan.images:
            return _imagefolder(lister, root, None, "ImageFolder with a single class folder", split)
        raise fail(root, f"{root} has no class folders; {{dataset_type}} classification needs <root>/<class>/<image> "
                          "or <root>/<split>/<class>/<image>.")
    if others and scan.images:
        raise fail(root, f"{root} holds both images and folders of images ({', '.join(sorted(others))}); ambiguous. "
                          "Use {dataset_type} images to take every image without labels, or move the loose images into "
                          "class folders.")
    return None


def _detect_images(lister: Lister, root: Path, scan: Scan, dataset_type: str, split: str | None) -> DatasetStructure:
    splits = {n: d for n, d in split_dirs(scan).items() if lister.has_images(d)}
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
            reason = "every image below the folder, unlabelled (dataset type: images)"
        else:
            reason = "a flat folder of images"
    return make_structure("images", root, items, [], reason, lister, split)


def _check(structure: DatasetStructure, root: Path) -> DatasetStructure:
    _leave_out_broken(structure)
    if structure.num_images == 0 and structure.broken_files:
        raise fail(
            root,
            f"every image in {root} failed the header check ({broken_names(structure.broken_files)}); "
            "replace the broken files or point {dataset_dir} at another folder.",
        )
    if structure.num_images == 0:
        unread = f" (could not list: {'; '.join(structure.unreadable_dirs)})" if structure.unreadable_dirs else ""
        raise fail(root, f"no images found in {root}{unread}; point {{dataset_dir}} at a folder of .jpg/.png images.")
    return structure


def _leave_out_broken(structure: DatasetStructure) -> None:
    """Header-checks every listed file; broken ones are listed by name and never sampled."""
    broken, checked = broken_files(it.path for it in structure.items)
    structure.header_checked = checked
    if not broken:
        return
    structure.broken_files = broken
    bad = {b["path"] for b in broken}
    for item in structure.items:
        if item.path not in bad:
            continue
        structure.num_images -= 1
        if item.split in structure.splits:
            structure.splits[item.split] -= 1
        name = structure.classes[item.label] if item.label is not None and item.label < len(structure.classes) else None
        if name in structure.class_counts:
            structure.class_counts[name] -= 1
    structure.items = [it for it in structure.items if it.path not in bad]
