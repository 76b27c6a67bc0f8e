"""Representative data: a dataset folder -> detected layout, seeded sample, preprocessed bounded stream.

The one public entry over ``engine/data/`` (``layouts`` detects, ``sampling`` draws, ``preprocess`` reads and
normalises one image, ``streaming`` decodes in parallel, ``standalone`` writes a self-contained module).
The command, the RQ job and the conversion pipeline all use ``RepresentativeDataGenerator``::

    gen = RepresentativeDataGenerator("data/", num_samples=100, input_shape=(1, 3, 224, 224), layout="NHWC")
    gen.print_summary()
    converter.representative_dataset = gen.generate_tflite_batches
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import numpy as np
from PIL import Image

from conversions.engine.config import DEFAULT_CALIBRATION_SAMPLES, DataSpec
from conversions.engine.data.decode import decode_file, resolve_input_shape
from conversions.engine.data.layouts import detect_dataset
from conversions.engine.data.options import preprocess_overrides_from_args
from conversions.engine.data.preprocess import (
    MAX_IMAGE_PIXELS,
    PRESETS,
    ImageReadError,
    PreprocessSpec,
    build_spec,
    conversion_note,
    exif_orientation,
    open_image,
    transform,
)
from conversions.engine.data.sampling import Sampler, budget
from conversions.engine.data.standalone import module_source
from conversions.engine.data.streaming import default_workers, stream
from conversions.engine.data.structure import (
    broken_names,
    ACCEPTED_LAYOUTS,
    DATASET_TYPES,
    DatasetStructure,
    ImageItem,
)
from conversions.engine.errors import ConfigError, DatasetError
from conversions.engine.report.atomic import write_bytes_atomic

__all__ = [
    "ACCEPTED_LAYOUTS",
    "DATASET_TYPES",
    "LAYOUTS",
    "PRESETS",
    "DatasetStructure",
    "ImageItem",
    "PreprocessSpec",
    "RepresentativeDataGenerator",
    "build_spec",
    "detect_dataset",
    "preprocess_overrides_from_args",
    "resolve_input_shape",
]

LAYOUTS = ("NCHW", "NHWC")
EVALUATION_POLICY = (
    "evaluation images are drawn after calibration from the same shuffled pools, in the same split "
    "preference (the chosen split first, then val, test, train), so they never overlap calibration"
)


class RepresentativeDataGenerator:
    """Calibration (and held-out evaluation) samples from a dataset folder, streamed in bounded memory.

    ``preprocess`` is a preset name (``imagenet``, ``yolo``, ``inception``, ``raw``; ``None`` picks
    ``yolo`` for YOLO datasets and ``imagenet`` otherwise), a ``PreprocessSpec``, or a callable
    ``PIL.Image -> CHW array`` that replaces the per-image preprocessing (so does overriding
    ``preprocess_image`` in a subclass). ``dtype=None`` takes the preset's (``uint8`` for ``raw``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        dataset_type: str = "auto",
        num_samples: int = DEFAULT_CALIBRATION_SAMPLES,
        split: str | None = None,
        seed: int = 0,
        preprocess: str | PreprocessSpec | Callable[[Image.Image], np.ndarray] | None = None,
        input_size: int | tuple[int, int] = 224,
        input_shape: tuple[int, ...] | list[int] | str | None = None,
        dtype: str | None = None,
        layout: str = "NCHW",
        num_eval_samples: int = 0,
        num_workers: int | None = None,
        preprocess_overrides: dict[str, Any] | None = None,
        max_image_pixels: int = MAX_IMAGE_PIXELS,
    ) -> None:
        layout = layout.upper()
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not NCHW or NHWC")
        if num_samples < 0 or num_eval_samples < 0:
            raise ValueError("num_samples and num_eval_samples must be >= 0")
        self.layout = layout
        self.seed = int(seed)
        self.num_samples = int(num_samples)
        self.num_eval_samples = int(num_eval_samples)
        self.num_workers = default_workers() if num_workers is None else max(0, int(num_workers))
        self.max_image_pixels = int(max_image_pixels)
        self.skipped: list[dict[str, str]] = []
        self._notes: list[str] = []
        self._decode_failures = 0
        self._skipped_paths: set[str] = set()
        self._conversions: Counter[str] = Counter()
        self._rotated = 0

        self.structure = detect_dataset(data_dir, dataset_type, split)
        channels, size = resolve_input_shape(input_shape, input_size, layout)
        self.custom_preprocess = self._resolve_custom(preprocess)
        if isinstance(preprocess, PreprocessSpec):
            self.preprocess_spec = preprocess
        else:
            preset = preprocess if isinstance(preprocess, str) and preprocess != "auto" else None
            preset = preset or ("yolo" if self.structure.layout == "yolo" else "imagenet")
            try:
                self.preprocess_spec = build_spec(preset, size, channels, dtype, preprocess_overrides)
            except ValueError as err:  # preprocess.py stands alone (copied into modules), so it raises plain ValueError
                raise ConfigError(str(err)) from None
        self._sample(split is not None)

    @classmethod
    def from_spec(cls, spec: DataSpec, *, calibrate: bool = True, **reading: Any) -> "RepresentativeDataGenerator":
        """The samples a checked ``DataSpec`` asks for (``calibrate=False``: held-out ones only); ``reading``
        says how they are read (``preprocess``, which defaults to the spec's, ``input_shape``, ``dtype``,
        ``layout``)."""
        reading.setdefault("preprocess", spec.preprocess)
        return cls(
            spec.dataset_dir,
            dataset_type=spec.dataset_type,
            num_samples=spec.num_calib_samples if calibrate else 0,
            split=spec.split,
            seed=spec.seed,
            num_eval_samples=spec.num_eval_samples,
            num_workers=spec.num_workers,
            preprocess_overrides=spec.preprocess_overrides or None,
            **reading,
        )

    # ------------------------------------------------------------------------------- construction

    def _resolve_custom(self, preprocess: Any) -> Callable[[Image.Image], np.ndarray] | None:
        if type(self).preprocess_image is not RepresentativeDataGenerator.preprocess_image:
            return self.preprocess_image
        if callable(preprocess) and not isinstance(preprocess, (str, PreprocessSpec)):
            return preprocess
        if preprocess is not None and not isinstance(preprocess, (str, PreprocessSpec)):
            raise TypeError(f"preprocess must be a preset name, a PreprocessSpec or a callable, not {type(preprocess).__name__}")
        return None

    def _sample(self, pinned_split: bool) -> None:
        sampler = Sampler(self.structure, self.seed, self.structure.layout == "imagefolder", pinned_split)
        available = sampler.available
        n_calib, n_eval = budget(available, self.num_samples, self.num_eval_samples)
        calib = sampler.draw(n_calib, self._probe, "calibration")
        evaluation = sampler.draw(n_eval, self._probe, "evaluation")
        self.calibration_items: list[ImageItem] = calib.items
        self.evaluation_items: list[ImageItem] = evaluation.items
        self.calibration_from_split = calib.from_split
        self.evaluation_from_split = evaluation.from_split
        if self.num_samples and not self.calibration_items:
            raise DatasetError(
                f"no usable images in {self.structure.root}: all {len(self.skipped)} files tried could not be read "
                f"({self._skip_summary()}); add readable .jpg/.png images or point {{dataset_dir}} elsewhere."
            )
        self._write_notes(available)

    def _probe(self, item: ImageItem) -> bool:
        """Header check of a sampled file; unusable ones are recorded and replaced by the sampler."""
        try:
            image = open_image(item.path, self.max_image_pixels)
        except ImageReadError as err:
            self._skip(item.path, str(err))
            return False
        with image:
            if exif_orientation(image) != 1:
                self._rotated += 1
            note = conversion_note(image.mode, self.preprocess_spec.channels, "transparency" in image.info)
        if note:
            self._conversions[note] += 1
        return True

    def _skip(self, path: str, reason: str) -> None:
        if path not in self._skipped_paths:
            self._skipped_paths.add(path)
            self.skipped.append({"path": path, "reason": reason})

    def _skip_summary(self) -> str:
        reasons = Counter(s["reason"].split(" (")[0] for s in self.skipped)
        return ", ".join(f"{n} {r}" for r, n in reasons.most_common())

    def _write_notes(self, available: int) -> None:
        wanted = self.num_samples + self.num_eval_samples
        got_c, got_e = len(self.calibration_items), len(self.evaluation_items)
        if available < wanted:
            if self.num_eval_samples:
                self._notes.append(
                    f"fewer images than requested ({available:,} for {self.num_samples:,} calibration + "
                    f"{self.num_eval_samples:,} evaluation): using {got_c:,} for calibration and {got_e:,} for evaluation"
                )
            else:
                self._notes.append(f"fewer images than requested: using all {got_c:,}")
        elif got_c < self.num_samples or got_e < self.num_eval_samples:
            self._notes.append(
                f"only {got_c:,} calibration and {got_e:,} evaluation images are readable "
                f"(asked for {self.num_samples:,} and {self.num_eval_samples:,})"
            )
        if len(self.calibration_from_split) > 1:
            parts = ", ".join(f"{n:,} from {s!r}" for s, n in self.calibration_from_split.items())
            self._notes.append(f"split {self.structure.split!r} has too few images; calibration takes {parts}")
        for note, count in sorted(self._conversions.items()):
            self._notes.append(f"{count:,} {note}")
        if self._rotated:
            self._notes.append(f"{self._rotated:,} images rotated upright per their EXIF orientation")
        if self.structure.broken_files:
            self._notes.append(
                f"{len(self.structure.broken_files):,} files failed the header check and were left out: "
                f"{broken_names(self.structure.broken_files)}"
            )
        if self.skipped:
            named = broken_names(self.skipped)
            self._notes.append(f"{len(self.skipped):,} sampled files skipped as unusable ({named}), replaced by other images where any were left")
        if self.structure.ignored_files:
            self._notes.append(f"{self.structure.ignored_files:,} files without an image extension ignored")
        for unreadable in self.structure.unreadable_dirs:
            self._notes.append(f"could not list folder {unreadable}")

    @property
    def notes(self) -> list[str]:
        """What the user should know: scarce images, conversions, rotations, skipped files (so far)."""
        notes = list(self._notes)
        if self._decode_failures:
            notes.append(f"{self._decode_failures:,} sampled files failed to decode and were left out of the stream")
        return notes

    # ---------------------------------------------------------------------------------- streaming

    def preprocess_image(self, image: Image.Image) -> np.ndarray:
        """Upright image in the model's channels -> CHW array. Override in a subclass to replace it."""
        return transform(image, self.preprocess_spec)

    def _decoder(self) -> Callable[[str], np.ndarray]:
        return partial(decode_file, spec=self.preprocess_spec, layout=self.layout, custom=self.custom_preprocess,
                       max_pixels=self.max_image_pixels)

    def _stream(self, items: list[ImageItem]) -> Iterator[tuple[ImageItem, np.ndarray]]:
        produced = 0
        shape = self.sample_shape or None
        paths = [it.path for it in items]
        for index, array, reason in stream(paths, self._decoder(), self.num_workers, shape, self.preprocess_spec.dtype):
            if array is None:
                if items[index].path not in self._skipped_paths:
                    self._decode_failures += 1
                self._skip(items[index].path, reason or "unreadable")
                continue
            produced += 1
            yield items[index], array
        if items and not produced:
            raise DatasetError(
                f"none of the {len(items)} sampled images in {self.structure.root} could be decoded "
                f"({self._skip_summary()}); replace the broken files or point {{dataset_dir}} elsewhere."
            )

    def __iter__(self) -> Iterator[np.ndarray]:
        """Preprocessed calibration samples, one array per image, no batch dimension."""
        for _, array in self._stream(self.calibration_items):
            yield array

    def __len__(self) -> int:
        return len(self.calibration_items)

    def generate_tflite_batches(self) -> Iterator[list[np.ndarray]]:
        """``TFLiteConverter.representative_dataset``: ``[sample[None]]`` per image, a fresh stream per call."""
        for array in self:
            yield [array[None]]

    def iter_evaluation(self) -> Iterator[tuple[np.ndarray, ImageItem]]:
        """Held-out samples (disjoint from calibration) with their items, same preprocessing and layout."""
        for item, array in self._stream(self.evaluation_items):
            yield array, item

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self.custom_preprocess is not None:
            return ()
        h, w = self.preprocess_spec.size
        c = self.preprocess_spec.channels
        return (c, h, w) if self.layout == "NCHW" else (h, w, c)

    # ------------------------------------------------------------------------------------ output

    def _relative(self, items: list[ImageItem]) -> list[str]:
        root = self.structure.root
        return [os.path.relpath(it.path, root) if it.path.startswith(root + os.sep) else it.path for it in items]

    def _class_counts(self, items: list[ImageItem]) -> dict[str, int]:
        if not self.structure.classes or self.structure.layout != "imagefolder":
            return {}
        counts = Counter(self.structure.classes[it.label] for it in items if it.label is not None)
        return {name: counts.get(name, 0) for name in self.structure.classes}

    def _spec_report(self) -> dict[str, Any]:
        spec = self.preprocess_spec.to_dict()
        spec.update(layout=self.layout, sample_shape=list(self.sample_shape), description=self.preprocess_spec.describe())
        if self.custom_preprocess is not None:
            spec["custom"] = getattr(self.custom_preprocess, "__qualname__", repr(self.custom_preprocess))
        return spec

    def report(self) -> dict[str, Any]:
        """JSON-able: what was detected, how images are preprocessed, which files were used and skipped."""
        return {
            "structure": self.structure.to_dict(),
            "preprocess": self._spec_report(),
            "calibration": {
                "samples": len(self.calibration_items),
                "requested": self.num_samples,
                "seed": self.seed,
                "from_split": dict(self.calibration_from_split),
                "class_counts": self._class_counts(self.calibration_items),
                "files": self._relative(self.calibration_items),
            },
            "evaluation": {
                "samples": len(self.evaluation_items),
                "requested": self.num_eval_samples,
                "seed": self.seed,
                "from_split": dict(self.evaluation_from_split),
                "class_counts": self._class_counts(self.evaluation_items),
                "files": self._relative(self.evaluation_items),
                "disjoint_from_calibration": True,
                "policy": EVALUATION_POLICY,
            },
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }

    def summary_lines(self) -> list[str]:
        s = self.structure
        lines = [f"Dataset: {s.describe()}", f"  at {s.root}", f"  why: {s.reason}"]
        if s.splits:
            lines.append("  splits: " + ", ".join(f"{k} {v:,}" for k, v in s.splits.items()))
        if s.classes:
            shown = ", ".join(s.classes[:10]) + (f", ... ({len(s.classes) - 10} more)" if len(s.classes) > 10 else "")
            lines.append(f"  classes: {shown}")
        where = ", ".join(f"{n:,} from {k!r}" for k, n in self.calibration_from_split.items()) or "none"
        lines.append(f"Calibration: {len(self.calibration_items):,} images (seed {self.seed}; {where})")
        if self.num_eval_samples:
            where = ", ".join(f"{n:,} from {k!r}" for k, n in self.evaluation_from_split.items()) or "none"
            lines.append(f"Evaluation: {len(self.evaluation_items):,} held-out images ({where}), disjoint from calibration")
        if self.custom_preprocess is not None:
            lines.append(f"Preprocess: custom {getattr(self.custom_preprocess, '__qualname__', 'callable')}; {self.layout}")
        else:
            lines.append(f"Preprocess: {self.preprocess_spec.describe()}; {self.layout} {self.sample_shape}")
        lines.extend(f"Note: {note}" for note in self.notes)
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped):,} files:")
            lines.extend(f"  {item['path']}: {item['reason']}" for item in self.skipped[:20])
            if len(self.skipped) > 20:
                lines.append(f"  ... and {len(self.skipped) - 20} more (see the report)")
        return lines

    def print_summary(self, file: TextIO | None = None) -> None:
        (file or sys.stdout).write("\n".join(self.summary_lines()) + "\n")

    def save(self, path: str | os.PathLike[str], force: bool = False) -> np.ndarray:
        """Writes the calibration samples to ``path`` (``.npz``: ``samples``, ``files``, ``spec``); returns them."""
        samples: np.ndarray | None = None
        files: list[str] = []
        count = 0
        for item, array in self._stream(self.calibration_items):
            if samples is None:
                samples = np.empty((len(self.calibration_items), *array.shape), dtype=array.dtype)
            samples[count] = array
            files.append(item.path)
            count += 1
        if samples is None:
            raise DatasetError("there are no calibration samples to save; ask for {num_calib_samples} of at least 1.")
        samples = samples[:count]
        buffer = io.BytesIO()
        np.savez(buffer, samples=samples, files=np.array(self._relative([ImageItem(f) for f in files])),
                 spec=np.array(json.dumps(self._spec_report())))
        write_bytes_atomic(Path(path), buffer.getvalue(), force=force)
        return samples

    def create_module(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Writes a module that regenerates these calibration samples with only numpy and Pillow."""
        if self.custom_preprocess is not None:
            raise ValueError(
                "a custom preprocess callable cannot be copied into a standalone module; use a preset with "
                "{mean}/{std}/{scale}/{resize}/{crop} instead, or ship your function with the file list"
            )
        path = Path(path)
        text = module_source(
            root=self.structure.root, files=self._relative(self.calibration_items), spec=self.preprocess_spec,
            spec_json=json.dumps(self._spec_report()), layout=self.layout, max_pixels=self.max_image_pixels,
            filename=path.name,
        )
        write_bytes_atomic(path, text.encode("utf-8"), force=force)
        return path

    @staticmethod
    def load(path: str | os.PathLike[str]) -> np.ndarray:
        """The ``(N, ...)`` samples written by ``save`` (or by a module from ``--create-module``)."""
        with np.load(path, allow_pickle=False) as data:
            return data["samples"]
