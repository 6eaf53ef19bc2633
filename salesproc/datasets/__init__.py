"""Sample data shipped with salesproc, and a synthetic history generator with known planted truth."""

from __future__ import annotations

from salesproc.datasets._synthetic import PlantedTruth, synthetic_history
from salesproc.datasets._samples import load_sample_deals, load_sample_projects

__all__ = ["PlantedTruth", "load_sample_deals", "load_sample_projects", "synthetic_history"]
