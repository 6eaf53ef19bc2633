"""Benchmark: plan_backwards with 10,000 simulated paths (issue 4: "well under a second").

    .venv/bin/python benchmarks/bench_plan.py

Measures, on a synthetic deal history (5 milestones, 3 critical activities):

* the Monte Carlo alone: 10,000 paths from the first milestone (``salesproc.plan._simulate.simulate``);
* a whole plan from the template, cold: a fresh template object each time, so the stage models
  and the per-milestone simulations behind the latest safe dates (another 10,000 paths from each
  milestone) are built anew;
* a whole plan for an open case from the history, cold (the history's stage models are built
  anew: Aalen-Johansen over every case's time in each milestone) and warm (the same template and
  history again: only the case's own 10,000 paths run).

Each figure is the median of several runs; timings are printed, nothing is asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

import salesproc
from salesproc.plan._plan import _model
from salesproc.plan._simulate import simulate

N = 10_000


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    h, truth = salesproc.synthetic_history(5000, seed=11)
    as_of = truth.as_of
    tpl = salesproc.derive_template(h, as_of=as_of)
    target = as_of + pd.Timedelta(days=60)
    view = h.as_of(as_of)
    case = str(view.cases.loc[view.cases["status"] == "open", "case_id"].iloc[0])
    print(f"history: {len(h.cases):,} cases, {len(h.events):,} events; template: {tpl!r}")

    stages = _model(tpl, None, as_of).stages
    t_sim = _median_time(lambda: simulate(stages, start=0, age=0.0, n=N, rng=np.random.default_rng(0)), 20)
    print(f"Monte Carlo alone, {N:,} paths through {len(stages)} milestones: {t_sim * 1000:.1f} ms")

    def cold_template() -> object:
        fresh = tpl.model_copy()
        return salesproc.plan_backwards(fresh, target_date=target, as_of=as_of, n_simulations=N)

    t_tpl = _median_time(cold_template, 7)
    print(f"plan from the template, cold ({N:,} paths + {N:,} per milestone for latest dates): {t_tpl * 1000:.1f} ms")

    def cold_case() -> object:
        fresh = tpl.model_copy()
        return salesproc.plan_backwards(fresh, target_date=target, as_of=as_of, history=h, case=case, n_simulations=N)

    t_case_cold = _median_time(cold_case, 5)
    print(f"plan for open case {case} from the history, cold: {t_case_cold * 1000:.1f} ms")

    def warm_case() -> object:
        return salesproc.plan_backwards(tpl, target_date=target, as_of=as_of, history=h, case=case, n_simulations=N)

    warm_case()
    t_case_warm = _median_time(warm_case, 20)
    print(f"plan for open case {case} from the history, warm: {t_case_warm * 1000:.1f} ms")


if __name__ == "__main__":
    main()
