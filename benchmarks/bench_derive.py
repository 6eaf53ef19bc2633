"""Benchmark: derive_template on synthetic deals, against pm4py on the same log.

    .venv/bin/python benchmarks/bench_derive.py            # 100k deals (~1.2M events) + pm4py, 500k (~6M)
    .venv/bin/python benchmarks/bench_derive.py --quick    # 100k deals only, no pm4py

Targets (issue 3): ~1.2M events in <= 1 s in-process; >= 8x faster than pm4py's format_dataframe +
discover_dfg + discover_performance_dfg + get_variants (pandas backend) on the same log in the same
run; ~6M events in <= 6 s with peak memory <= 1.5 GB. Each size runs in a fresh subprocess so that
peak memory (ru_maxrss) belongs to that measurement alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _generate(n: int, folder: Path) -> None:
    import salesproc

    h, truth = salesproc.synthetic_history(n, seed=11)
    h.to_parquet(folder, overwrite=True)
    (folder / "as_of.txt").write_text(truth.as_of.isoformat())


def _child(n: int, with_pm4py: bool, folder: Path) -> dict[str, float]:
    import resource
    import tracemalloc

    import pandas as pd

    import salesproc

    # a fresh process that reads the saved history: its peak memory is the history plus the derivation
    h = salesproc.load_history(folder)
    as_of = pd.Timestamp((folder / "as_of.txt").read_text())
    events = len(h.events)
    salesproc.derive_template(h.select(h.cases.index < len(h.cases) // 50), as_of=as_of)  # warm-up
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        tpl = salesproc.derive_template(h, as_of=as_of)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    salesproc.derive_template(h, as_of=as_of)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "cases": n,
        "events": events,
        "derive_best_s": min(times),
        "derive_median_s": sorted(times)[1],
        "derive_traced_peak_mb": traced_peak / 2**20,
        "process_peak_rss_mb": rss_after,
        "rss_before_derive_mb": rss_before,
        "milestones": len(tpl.milestones),
        "critical": len(tpl.critical_activities),
    }
    if with_pm4py:
        import pandas as pd
        import pm4py

        ev = h.events
        df = pd.DataFrame(
            {
                "case": ev["case_id"].astype(str).to_numpy(),
                "activity": ev["name"].astype(str).to_numpy(),
                "ts": ev["timestamp"].dt.tz_localize(None).to_numpy(),
            }
        )
        t0 = time.perf_counter()
        log = pm4py.format_dataframe(df, case_id="case", activity_key="activity", timestamp_key="ts")
        pm4py.discover_dfg(log)
        pm4py.discover_performance_dfg(log)
        pm4py.get_variants(log)
        out["pm4py_s"] = time.perf_counter() - t0
        out["speedup_vs_pm4py"] = out["pm4py_s"] / out["derive_best_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", type=int)
    ap.add_argument("--pm4py", action="store_true")
    ap.add_argument("--generate", type=int)
    ap.add_argument("--folder", type=Path)
    args = ap.parse_args()
    if args.generate:
        _generate(args.generate, args.folder)
        return
    if args.child:
        print(json.dumps(_child(args.child, args.pm4py, args.folder)))
        return
    runs = [(100_000, not args.quick)] + ([] if args.quick else [(500_000, False)])
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="salesproc-bench-"))
    for n, pm in runs:
        folder = tmp / f"h{n}"
        subprocess.run([sys.executable, __file__, "--generate", str(n), "--folder", str(folder)], check=True)
        cmd = [sys.executable, __file__, "--child", str(n), "--folder", str(folder)] + (["--pm4py"] if pm else [])
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        results.append(res)
        line = (
            f"{res['cases']:>7,} deals {res['events']:>10,} events: derive best {res['derive_best_s']:.3f} s "
            f"(median {res['derive_median_s']:.3f}), traced peak {res['derive_traced_peak_mb']:.0f} MB, "
            f"process peak RSS {res['process_peak_rss_mb']:.0f} MB (history alone {res['rss_before_derive_mb']:.0f} MB)"
        )
        if "pm4py_s" in res:
            line += f"; pm4py {res['pm4py_s']:.2f} s -> {res['speedup_vs_pm4py']:.1f}x faster"
        print(line, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "derive.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
