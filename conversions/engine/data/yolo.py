"""YOLO datasets: image/label folder pairs, data.yaml and list files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conversions.engine.data.structure import (
    IMAGE_EXTENSIONS,
    DatasetStructure,
    ImageItem,
    Lister,
    Scan,
    fail,
    make_structure,
    split_dirs,
)
from conversions.engine.errors import DatasetError


def _label_path(image_path: str) -> str:
    """Ultralytics' rule: the last ``/images/`` becomes ``/labels/`` and the extension ``.txt``."""
    head, sep, tail = image_path.rpartition(f"{os.sep}images{os.sep}")
    base = f"{head}{os.sep}labels{os.sep}{tail}" if sep else image_path
    return os.path.splitext(base)[0] + ".txt"


def _yolo(lister: Lister, root: Path, sources: dict[str | None, list[str]], reason: str, split: str | None,
          names: list[str] | None = None) -> DatasetStructure:
    items = [ImageItem(path, None, name) for name, paths in sources.items() for path in paths]
    labelled = sum(1 for it in items if os.path.isfile(_label_path(it.path)))
    reason = f"{reason}; labels for {labelled:,} of {len(items):,} images"
    return make_structure("yolo", root, items, list(names or []), reason, lister, split, labelled=labelled)


def read_list_file(path: Path) -> list[str]:
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


def _yaml_entry(lister: Lister, base: Path, value: Any) -> tuple[list[str], list[str]]:
    """Images of one ``train:``/``val:``/``test:`` entry and the entries that do not exist."""
    images: list[str] = []
    missing: list[str] = []
    for raw in _as_list(value):
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
            images.extend(read_list_file(target))
        else:
            missing.append(f"{raw} -> {target}")
    return images, missing


def from_yaml(lister: Lister, yaml_path: Path, split: str | None) -> DatasetStructure:
    import yaml  # PyYAML: only needed for this layout

    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise DatasetError(f"cannot read {yaml_path}: {err}; fix the YAML or point {{dataset_dir}} at the image folder.") from None
    if not isinstance(data, dict) or not any(k in data for k in ("train", "val", "test")):
        raise DatasetError(f"{yaml_path} has no train:/val:/test: entries; it does not describe a YOLO dataset.")
    base, resolved = yaml_path.parent, ""
    if data.get("path"):
        base, resolved = resolve_yaml_path(str(data["path"]), yaml_path)
        base, resolved = _own_folder_if_path_missing(data, base, resolved, yaml_path)
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
        found = f"; {resolved}" if resolved else ""
        raise fail(base, f"{yaml_path} lists no existing images (missing: {'; '.join(missing) or 'nothing listed'}{found}); "
                          "fix its path:/train:/val:/test: entries (relative to the YAML or its path:).")
    reason = f"YOLO data file {yaml_path.name} ({', '.join(sources)})"
    if resolved:
        reason += f"; {resolved}"
    if missing:
        reason += f"; entries not found: {'; '.join(missing)}"
    return _yolo(lister, yaml_path.parent, sources, reason, split, [str(n) for n in names])


def ultralytics_datasets_dir() -> Path:
    """Ultralytics' datasets folder: ``datasets_dir`` in its settings file, else ``./datasets`` as it defaults."""
    import json

    settings = Path(os.environ.get("YOLO_CONFIG_DIR") or Path.home() / ".config" / "Ultralytics") / "settings.json"
    try:
        value = json.loads(settings.read_text(encoding="utf-8")).get("datasets_dir")
    except (OSError, ValueError, AttributeError):
        value = None
    return Path(value) if value else Path.cwd() / "datasets"


def resolve_yaml_path(value: str, yaml_path: Path) -> tuple[Path, str]:
    """A data.yaml ``path:`` as Ultralytics resolves it (the working directory, then its datasets folder),
    falling back to the YAML's own folder; returns the folder and a sentence saying which was used."""
    given = Path(value).expanduser()
    if given.is_absolute():
        return given, f"path: {value} (absolute)"
    candidates = (
        (Path.cwd() / given, "the working directory"),
        (ultralytics_datasets_dir() / given, "Ultralytics' datasets folder"),
        (yaml_path.parent / given, "the YAML's folder"),
    )
    for folder, where in candidates:
        if folder.is_dir():
            return folder, f"path: {value} resolved against {where} ({folder})"
    # Nothing exists: the YAML's folder, where the missing-images message then points.
    return yaml_path.parent / given, f"path: {value} found in none of {', '.join(str(c[0]) for c in candidates)}"


def _own_folder_if_path_missing(data: dict, base: Path, resolved: str, yaml_path: Path) -> tuple[Path, str]:
    """The YAML's own folder when ``path:`` exists nowhere but that folder holds a listed split.

    Ultralytics writes ``path: <name>`` relative to its datasets folder; a user who hands over that dataset
    folder itself (``<name>/data.yaml``) has no ``<name>/<name>``, yet the splits sit right beside the YAML."""
    own = yaml_path.parent
    if base.is_dir() or base == own:
        return base, resolved
    entries = [v for key in ("train", "val", "test") for v in _as_list(data.get(key))]
    if not any(not Path(str(v)).is_absolute() and (own / str(v)).exists() for v in entries):
        return base, resolved
    return own, f"{resolved}; used the YAML's own folder {own} instead, which holds the listed splits"


def _as_list(value: Any) -> list[Any]:
    if not value:
        return []
    return value if isinstance(value, list) else [value]


def _find_yaml(scan: Scan) -> Path | None:
    candidates = [p for p in (scan.path / "data.yaml", scan.path / "dataset.yaml", scan.path / "data.yml") if p.is_file()]
    return candidates[0] if candidates else None


def detect_yolo(lister: Lister, root: Path, scan: Scan, split: str | None) -> DatasetStructure | None:
    yaml_path = _find_yaml(scan)
    if yaml_path is not None:
        return from_yaml(lister, yaml_path, split)
    lower = {name.lower(): path for name, path in scan.dirs.items()}
    images_dir = lower.get("images")
    splits = split_dirs(lister.scan(images_dir)) if images_dir else {}
    if images_dir and lister.has_images(images_dir) and (splits or "labels" in lower):
        # images/<class>/ without labels/ is more likely a nested ImageFolder than a YOLO tree
        if splits:
            sources = {name: lister.images(d) for name, d in splits.items()}
            return _yolo(lister, root, sources, f"YOLO images/{{{','.join(splits)}}} folders", split)
        return _yolo(lister, root, {None: lister.images(images_dir)}, "YOLO images/ folder without splits", split)
    nested = {name: d / "images" for name, d in split_dirs(scan).items() if (d / "images").is_dir()}
    if nested:
        sources = {name: lister.images(d) for name, d in nested.items()}
        return _yolo(lister, root, sources, f"YOLO {{{','.join(nested)}}}/images folders", split)
    return None
