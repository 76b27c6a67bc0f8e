"""Class names: a labels file, and which model output each class folder stands for."""

from __future__ import annotations

from pathlib import Path

from conversions.engine.errors import DatasetError


def read_labels(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"labels file {path} does not exist; pass one class name per line, in output order.")
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DatasetError(f"labels file {path} is empty; it needs one class name per line, in output order.")
    return names


def class_to_output(classes: list[str], labels: list[str] | None, num_outputs: int) -> list[int]:
    """Index of each dataset class (in ``classes`` order) among the model's outputs."""
    if labels is None:
        ordered = sorted(classes)
        if len(ordered) > num_outputs:
            raise DatasetError(
                f"the dataset has {len(ordered)} class folders but the model has {num_outputs} outputs; pass "
                "{labels_file} with the model's class names (one per line, in output order)."
            )
        return [ordered.index(c) for c in classes]
    if len(labels) != num_outputs:
        raise DatasetError(
            f"the labels file names {len(labels)} classes but the model has {num_outputs} outputs; it needs one "
            "line per output, in output order."
        )
    lookup = {name.lower(): i for i, name in enumerate(labels)}
    missing = [c for c in classes if c.lower() not in lookup]
    if missing:
        raise DatasetError(
            f"class folder(s) {', '.join(missing[:10])} map to no model output; the labels file has "
            f"{', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''}. Rename the folders or fix the labels file."
        )
    return [lookup[c.lower()] for c in classes]
