"""Placeholder replaced by the synthetic generator."""
from __future__ import annotations
from dataclasses import dataclass


@dataclass(frozen=True)
class PlantedTruth:
    pass


def synthetic_history(n_cases, *, seed, kind="deal"):
    raise RuntimeError("synthetic generator not written yet")
