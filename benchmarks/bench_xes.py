"""Benchmark: reading the receipt XES log (4 MB of XML, 8,577 events), best of 5.

    .venv/bin/python benchmarks/bench_xes.py

Needs ../shared/data beside the checkout. Target: well under 1 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import salesproc

PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "receipt" / "08_receipt.xes.gz"


def main() -> None:
    wall, cpu = [], []
    for _ in range(5):
        w, c = time.perf_counter(), time.process_time()
        h = salesproc.load_history(PATH, kind="project", mapping={"target_date": "enddate_planned", "closed": "enddate"})
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    print(f"receipt XES: {len(h.events):,} events, best {min(wall):.3f} s wall, {min(cpu):.3f} s CPU")


if __name__ == "__main__":
    main()
