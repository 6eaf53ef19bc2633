"""Regenerate the sample files shipped in salesproc/datasets/data/ (deterministic).

    .venv/bin/python benchmarks/make_samples.py

Each sample is drawn by ``synthetic_history`` with the arguments listed in
``salesproc.datasets._samples.SAMPLES`` and written as a plain canonical event-log CSV, which
``salesproc.load_history(path)`` reads with no mapping.
"""

from __future__ import annotations

from pathlib import Path

from salesproc.datasets import synthetic_history
from salesproc.datasets._samples import SAMPLES, write_event_log_csv

DATA = Path(__file__).resolve().parents[1] / "salesproc" / "datasets" / "data"


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    for name, (file_name, kwargs, _source) in SAMPLES.items():
        n_cases, seed, kind = int(kwargs["n_cases"]), int(kwargs["seed"]), str(kwargs["kind"])  # type: ignore[call-overload]
        history, _truth = synthetic_history(n_cases, seed=seed, kind=kind)
        path = write_event_log_csv(history, DATA / file_name)
        print(f"{name}: {len(history):,} cases, {len(history.events):,} events -> {path} "
              f"({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
