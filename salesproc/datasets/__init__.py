"""Sample data shipped with salesproc, and a synthetic history generator with known planted truth."""

from __future__ import annotations

from salesproc.datasets._samples import example_path, load_sample_deals, load_sample_projects, sample_path
from salesproc.datasets._synthetic import PlantedActivity, PlantedEffect, PlantedTruth, synthetic_history

__all__ = [
    "PlantedActivity",
    "PlantedEffect",
    "PlantedTruth",
    "example_path",
    "load_sample_deals",
    "load_sample_projects",
    "sample_path",
    "synthetic_history",
]
