"""XES benchmark: ``salesproc.load_history`` on a 262,200-event log against rustxes, r4pm and pm4py.

    .venv/bin/python benchmarks/bench_xes.py [--repeat 3] [--only bpi]

The log: the shape of the BPI Challenge 2012 log (13,087 traces, 262,200 events: resources,
lifecycle transitions SCHEDULE/START/COMPLETE, timestamps with offsets, a date and an amount per
trace), drawn with a fixed seed and written as OpenXES writes (the real log cannot be fetched
here). Also the receipt log from ``../shared/data`` if it is there (8,577 events, gzip).

Each reader runs in a fresh interpreter, the readers alternating, best of ``--repeat``:

* ``salesproc``: ``load_history(path)`` as installed (r4pm's fast path when the ``xes`` extra is);
* ``salesproc_expat``: the same with r4pm hidden (the expat reader);
* ``rustxes``, ``r4pm``: the Rust importers alone (a polars frame, no validation);
* ``pm4py``: ``pm4py.read_xes(path)`` (which itself uses r4pm when it is installed).

Wall and CPU time of the read alone (the imports are not timed). Target: salesproc at most 1.5x
rustxes's time. The machine may be shared: compare the ratios of one run. Prints a table and
writes ``benchmarks/results/xes.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGET_RATIO = 1.5
READERS = ("salesproc", "salesproc_expat", "rustxes", "r4pm", "pm4py")

_MEASURE = r"""
import json, sys, time
method, path = sys.argv[1], sys.argv[2]
if method == "salesproc_expat":
    sys.modules["r4pm"] = None  # as if the xes extra were not installed
import salesproc
if method == "rustxes":
    import rustxes
    op = lambda: rustxes.import_xes(path)[0]
elif method == "r4pm":
    import r4pm.df
    op = lambda: r4pm.df.import_xes(path)[0]
elif method == "pm4py":
    import pm4py
    op = lambda: pm4py.read_xes(path)
else:
    op = lambda: salesproc.load_history(path).events
w, c = time.perf_counter(), time.process_time()
out = op()
print(json.dumps({"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "rows": len(out)}))
"""

ACTIVITIES = [
    "A_SUBMITTED", "A_PARTLYSUBMITTED", "A_PREACCEPTED", "A_ACCEPTED", "O_SELECTED", "A_FINALIZED", "O_CREATED",
    "O_SENT", "W_Completeren aanvraag", "W_Nabellen offertes", "O_SENT_BACK", "W_Valideren aanvraag",
    "A_REGISTERED", "A_APPROVED", "O_ACCEPTED", "A_ACTIVATED", "O_CANCELLED", "A_DECLINED", "A_CANCELLED",
    "W_Afhandelen leads", "O_DECLINED", "W_Nabellen incomplete dossiers", "W_Beoordelen fraude",
    "W_Wijzigen contractgegevens",
]


def write_bpi_like(path: Path, *, traces: int = 13_087, events: int = 262_200, seed: int = 0) -> Path:
    """A log of the BPI Challenge 2012's shape, written as OpenXES writes logs."""
    rng = np.random.default_rng(seed)
    per_trace = rng.multinomial(events - traces, np.full(traces, 1 / traces)) + 1
    start = np.datetime64("2011-10-01T00:00:00", "ms") + rng.integers(0, 166 * 86_400_000, traces).astype("m8[ms]")
    lines = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        "<!-- This file has been generated with the OpenXES library. -->",
        '<log xes.version="1.0" xes.features="nested-attributes" openxes.version="1.0RC7" '
        'xmlns="http://www.xes-standard.org/">',
        '\t<extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>',
        '\t<global scope="trace">\n\t\t<string key="concept:name" value="__INVALID__"/>\n\t</global>',
        '\t<global scope="event">\n\t\t<string key="org:resource" value="UNKNOWN"/>\n\t</global>',
    ]
    transitions = np.array(["SCHEDULE", "START", "COMPLETE"])
    for t in range(traces):
        n = int(per_trace[t])
        stamps = start[t] + np.cumsum(rng.integers(1000, 4 * 3_600_000, n)).astype("m8[ms]")
        acts = rng.integers(0, len(ACTIVITIES), n)
        life = transitions[rng.choice(3, n, p=[0.1, 0.27, 0.63])]
        res = rng.integers(10_000, 11_200, n)
        lines += [
            "\t<trace>",
            f'\t\t<date key="REG_DATE" value="{start[t]}+02:00"/>',
            f'\t\t<string key="concept:name" value="{173_688 + t}"/>',
            f'\t\t<string key="AMOUNT_REQ" value="{int(rng.integers(1, 100)) * 500}"/>',
        ]
        for i in range(n):
            owner = f'\t\t\t<string key="org:resource" value="{res[i]}"/>\n' if res[i] % 7 else ""
            lines.append(
                f'\t\t<event>\n{owner}\t\t\t<string key="lifecycle:transition" value="{life[i]}"/>\n'
                f'\t\t\t<string key="concept:name" value="{ACTIVITIES[acts[i]]}"/>\n'
                f'\t\t\t<date key="time:timestamp" value="{stamps[i]}+02:00"/>\n\t\t</event>'
            )
        lines.append("\t</trace>")
    lines.append("</log>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_once(method: str, path: Path) -> dict[str, float] | None:
    """One read in a fresh interpreter (outside the source tree); None if the reader is not installed."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, method, str(path)], check=False, capture_output=True, text=True,
        cwd=tempfile.gettempdir(),
    )
    if out.returncode:
        if "ModuleNotFoundError" in out.stderr:
            return None
        raise SystemExit(f"{method} failed on {path.name}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(path: Path, repeat: int) -> dict[str, dict[str, object]]:
    """The readers alternating ``repeat`` times; the best wall and CPU time of each."""
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in READERS}
    for _ in range(repeat):
        for m in READERS:
            r = run_once(m, path)
            if r is not None:
                runs[m].append(r)
    return {
        m: {"wall": [r["wall"] for r in rs], "cpu": [r["cpu"] for r in rs], "rows": rs[0]["rows"],
            "best_wall_s": min(r["wall"] for r in rs), "best_cpu_s": min(r["cpu"] for r in rs)}
        for m, rs in runs.items() if rs
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="only logs whose name contains this (bpi, receipt)")
    args = ap.parse_args(argv)
    results: dict[str, object] = {"repeat": args.repeat, "target_ratio": TARGET_RATIO,
                                  "python": platform.python_version(), "machine": platform.machine(), "logs": {}}
    logs: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="salesproc-xes-") as tmp:
        todo = [("bpi2012-shaped, 262,200 events", write_bpi_like(Path(tmp) / "bpi2012-shaped.xes"))]
        receipt = SHARED / "receipt" / "08_receipt.xes.gz"
        if receipt.exists():
            todo.append(("receipt (.xes.gz), 8,577 events", receipt))
        for name, path in todo:
            if args.only and args.only not in name:
                continue
            print(f"timing {name} ...", flush=True)
            m = measure(path, args.repeat)
            ratio = {k: float(m["salesproc"][k]) / float(m["rustxes"][k])  # type: ignore[arg-type]
                     for k in ("best_wall_s", "best_cpu_s")} if "rustxes" in m else {}
            logs[name] = {"file_mb": path.stat().st_size / 1e6, "readers": m, "ratio_to_rustxes": ratio,
                          "meets_target": bool(ratio) and min(ratio.values()) <= TARGET_RATIO}
    results["logs"] = logs

    print(f"\n{'log':34} {'reader':16} {'rows':>8} {'wall s':>7} {'CPU s':>7} {'x rustxes (wall, CPU)':>22}")
    for name, r in logs.items():
        assert isinstance(r, dict)
        rust = r["readers"].get("rustxes")
        for who, v in r["readers"].items():
            rel = (f"{v['best_wall_s'] / rust['best_wall_s']:.2f}, {v['best_cpu_s'] / rust['best_cpu_s']:.2f}"
                   if rust else "")
            print(f"{name:34} {who:16} {v['rows']:8,} {v['best_wall_s']:7.2f} {v['best_cpu_s']:7.2f} {rel:>22}")
    ok = all(r["meets_target"] for r in logs.values())  # type: ignore[index]
    print(f"\ntarget: salesproc <= {TARGET_RATIO}x rustxes: {'met' if ok else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "xes.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
