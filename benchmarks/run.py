"""Run every benchmark in turn (``make bench``); each prints its numbers and writes results/*.json.

    .venv/bin/python benchmarks/run.py            # all of them (several minutes)
    .venv/bin/python benchmarks/run.py derive     # only those whose name contains 'derive'

The benchmarks are run one after another, never in parallel, so that they do not slow each other.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["bench_load.py", "bench_xes.py", "bench_derive.py", "bench_plan.py", "bench_review.py", "bench_render.py"]


def main() -> int:
    wanted = sys.argv[1:]
    failed = []
    for name in ORDER:
        if wanted and not any(w in name for w in wanted):
            continue
        print(f"== {name}", flush=True)
        rc = subprocess.run([sys.executable, str(HERE / name)], check=False).returncode
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
