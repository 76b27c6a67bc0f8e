"""What a person asks of a portal run (the new-run form, the API), parsed once into ``RunSettings``.

``RunSettings.config_for(checkpoint, dataset)`` turns it into the engine's ``ExportConfig``; a re-run reads it
back from the stored config with ``RunSettings.from_config``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conversions.engine.config import (
    DEFAULT_CALIBRATION,
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_EVALUATION_SAMPLES,
    DataSpec,
    ExportConfig,
)
from conversions.engine.variants import ordered, parse_variants

if TYPE_CHECKING:
    from conversions.models import Checkpoint, Dataset


@dataclass(frozen=True)
class RunSettings:
    variants: tuple[str, ...] = ("int8",)
    num_calib_samples: int = DEFAULT_CALIBRATION_SAMPLES
    num_eval_samples: int = DEFAULT_EVALUATION_SAMPLES
    preprocess: str = "imagenet"
    seed: int = 0
    calibration_method: str = DEFAULT_CALIBRATION
    max_drop: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(ordered(parse_variants(self.variants))))

    @classmethod
    def from_config(cls, config: ExportConfig) -> "RunSettings":
        return cls(
            variants=config.variants,
            num_calib_samples=config.data.num_calib_samples,
            num_eval_samples=config.data.num_eval_samples,
            preprocess=config.data.preprocess,
            seed=config.data.seed,
            calibration_method=config.calibration_method,
            max_drop=config.max_drop,
        )

    def config_for(self, checkpoint: "Checkpoint", dataset: "Dataset | None") -> ExportConfig:
        data = DataSpec(
            dataset_dir=str(dataset.folder) if dataset else None,
            dataset_type=dataset.dataset_type if dataset else "auto",
            num_calib_samples=self.num_calib_samples,
            num_eval_samples=self.num_eval_samples,
            seed=self.seed,
            preprocess=self.preprocess,
            preprocess_overrides=dict(checkpoint.preprocess_overrides or {}),
            labels_file=checkpoint.labels.path if checkpoint.labels else None,
        )
        return ExportConfig(
            model=checkpoint.model_spec(),
            data=data,
            variants=self.variants,
            # A benchmark run (several variants) is timed at 1 and 2 threads, as on the command line.
            latency_threads=(1, 2) if len(self.variants) > 1 else (1,),
            calibration_method=self.calibration_method,
            max_drop=self.max_drop,
        )
