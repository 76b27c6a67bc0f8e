"""The record: datasets, checkpoints, conversion runs and the artifacts they produce."""

from conversions.models.artifact import VARIANT_CHOICES, Artifact, ImmutableError
from conversions.models.checkpoint import (
    Checkpoint,
    checkpoint_upload_to,
    name_validator,
)
from conversions.models.dataset import Dataset
from conversions.models.run import ConversionRun, RunQuerySet
from conversions.models.token import ApiToken

__all__ = [
    "ApiToken",
    "VARIANT_CHOICES",
    "Artifact",
    "Checkpoint",
    "checkpoint_upload_to",
    "ConversionRun",
    "Dataset",
    "ImmutableError",
    "RunQuerySet",
    "name_validator",
]
