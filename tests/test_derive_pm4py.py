"""Cross-checks of the derivation against pm4py (a test-only dependency: the package never imports it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pm4py  # test-only (AGPL): installed by the "test" extra, never imported by salesproc
import pytest

import salesproc

RECEIPT_MAPPING = {
    "case_id": "case:concept:name",
    "name": "concept:name",
    "timestamp": "time:timestamp",
    "owner": "org:resource",
    "target_date": "case:enddate_planned",
    "closed": "case:enddate",
}


@pytest.fixture(scope="module")
def receipt(shared_data: Path) -> tuple[salesproc.History, pd.DataFrame]:
    path = shared_data / "receipt" / "receipt.csv"
    h = salesproc.load_history(path, kind="project", mapping=RECEIPT_MAPPING)
    raw = pd.read_csv(path)
    raw["time:timestamp"] = pd.to_datetime(raw["time:timestamp"], utc=True, format="ISO8601")
    log = pm4py.format_dataframe(
        raw, case_id="case:concept:name", activity_key="concept:name", timestamp_key="time:timestamp"
    )
    return h, log


def test_directly_follows_equals_pm4py_discover_dfg(receipt: tuple[salesproc.History, pd.DataFrame]) -> None:
    h, log = receipt
    dfg, _, _ = pm4py.discover_dfg(log)
    ours = salesproc.directly_follows(h)
    mine = {(s, t): int(c) for s, t, c in ours.itertuples(index=False)}
    theirs = {(a, b): int(c) for (a, b), c in dfg.items()}
    assert sum(theirs.values()) == 8577 - 1434  # one pair per consecutive event, per case
    assert mine == theirs


def test_template_directly_follows_equals_pm4py(receipt: tuple[salesproc.History, pd.DataFrame]) -> None:
    h, log = receipt
    dfg, _, _ = pm4py.discover_dfg(log)
    tpl = salesproc.derive_template(h)
    flat = {(a, b): c for a, row in tpl.directly_follows.items() for b, c in row.items()}
    assert flat == {(a, b): int(c) for (a, b), c in dfg.items()}


def test_receipt_template_follows_the_dominant_order(receipt: tuple[salesproc.History, pd.DataFrame]) -> None:
    h, log = receipt
    tpl = salesproc.derive_template(h)
    assert tpl.kind == "project" and tpl.success == "on_time"
    # the most frequent variant, restricted to the template's milestones, is in the template's order
    variants = pm4py.get_variants(log)
    top = max(variants.items(), key=lambda kv: kv[1] if isinstance(kv[1], int) else len(kv[1]))[0]
    names = tpl.milestone_names
    in_top = [a for a in top if a in names]
    assert len(in_top) >= 5
    assert in_top == sorted(in_top, key=names.index)
    assert names[0] == "Confirmation of receipt"
