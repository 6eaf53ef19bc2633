"""Benchmark: render_batch writes one HTML deal review (with its chart) per open deal plus the index.

    .venv/bin/python benchmarks/bench_render.py             # >= 1,000 open deals, workers 2 and 1, 3 runs each
    .venv/bin/python benchmarks/bench_render.py --quick     # one run with 2 workers
    .venv/bin/python benchmarks/bench_render.py --formats html md

Target (issue 6): 1,000 deal reviews with one chart each in <= 30 s on the project's 2-core machine.
The time covers everything render_batch does: building each DealReview from the Review, its
context, its SVG chart, the Jinja render, the atomic write, and the pipeline index with its two
charts. Deriving the template and reviewing the pipeline happen before the clock starts. The load
average is printed with each run: the machine is shared, so it says how busy it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one run with 2 workers")
    ap.add_argument("--deals", type=int, default=10_300, help="cases in the synthetic history (~10%% open)")
    ap.add_argument("--formats", nargs="+", default=["html"])
    args = ap.parse_args()

    import salesproc

    history, truth = salesproc.synthetic_history(args.deals, seed=5, open_share=0.1)
    template = salesproc.derive_template(history, as_of=truth.as_of)
    review = salesproc.review_deals(history, template, as_of=truth.as_of)
    n_open = len(review)
    print(f"{n_open:,} open deals to render ({', '.join(args.formats)}); {os.cpu_count()} cores", flush=True)

    plan = [(2, 1)] if args.quick else [(2, 3), (1, 3)]
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="salesproc-bench-render-"))
    try:
        for workers, repeats in plan:
            times = []
            for _ in range(repeats):
                fresh = salesproc.review_deals(history, template, as_of=truth.as_of)  # no cached deal reviews
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                run = salesproc.render_batch(fresh, tmp, formats=args.formats, progress=False, workers=workers)
                dt = time.perf_counter() - t0
                times.append(dt)
                files = len(list(run.run_dir.rglob("*.*")))
                print(f"workers={workers}: {dt:6.2f} s for {len(run):,} deal reports ({files:,} files), "
                      f"{dt / len(run) * 1000:.1f} ms per deal, load average {load:.1f}", flush=True)
                shutil.rmtree(run.run_dir)
            results.append({
                "workers": workers,
                "deals": n_open,
                "formats": args.formats,
                "best_s": min(times),
                "median_s": statistics.median(times),
                "per_deal_ms": min(times) / n_open * 1000,
                "target_s_per_1000": 30.0,
                "best_s_per_1000": min(times) / n_open * 1000,
            })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for r in results:
        print(f"workers={r['workers']}: best {r['best_s']:.2f} s, median {r['median_s']:.2f} s for {r['deals']:,} deals "
              f"= {r['best_s_per_1000']:.1f} s per 1,000 (target <= 30 s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "render.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
