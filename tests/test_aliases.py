"""Renamed and merged milestones keep matching the data's event names (aliases)."""

from __future__ import annotations

import pandas as pd

import salesproc
from salesproc.edit import merge_milestones, rename_milestone


def test_rename_and_merge_record_aliases_and_the_diff_says_so() -> None:
    h, truth = salesproc.synthetic_history(1500, seed=12)
    t = salesproc.derive_template(h, as_of=truth.as_of)
    r = rename_milestone(t, "Discovery", "Discovery call")
    assert r.milestone("Discovery call").aliases == ["Discovery"]
    assert "milestone renamed: Discovery -> Discovery call" in str(salesproc.diff_templates(t, r))
    m = merge_milestones(r, ["Solution", "Proposal"], name="Evaluation")
    assert m.milestone("Evaluation").aliases == ["Solution", "Proposal"]
    assert "milestones merged: Solution + Proposal -> Evaluation" in str(salesproc.diff_templates(r, m))
    assert m.event_aliases() == {"Discovery": "Discovery call", "Solution": "Evaluation", "Proposal": "Evaluation"}


def test_history_rename_events_merges_names_without_touching_the_original() -> None:
    h, _ = salesproc.synthetic_history(300, seed=1)
    before = h.events["name"].value_counts()
    r = h.rename_events({"Solution": "Evaluation", "Proposal": "Evaluation"})
    after = r.events["name"].value_counts()
    assert after["Evaluation"] == before["Solution"] + before["Proposal"]
    assert "Solution" not in set(r.events["name"].astype(str))
    assert h.events["name"].value_counts().equals(before)
    assert len(r.events) == len(h.events)


def test_rederiving_and_reviewing_with_renamed_milestones_use_the_data() -> None:
    h, truth = salesproc.synthetic_history(3000, seed=13)
    t = salesproc.derive_template(h, as_of=truth.as_of - pd.Timedelta(days=60))
    edited = merge_milestones(rename_milestone(t, "Discovery", "Discovery call"), ["Solution", "Proposal"],
                              name="Evaluation")
    v2 = salesproc.derive_template(h, as_of=truth.as_of, previous=edited)
    assert v2.milestone_names == ["Qualify", "Discovery call", "Evaluation", "Negotiation"]
    assert v2.milestone("Evaluation").evidence.reached > 0
    assert v2.milestone("Discovery call").aliases == ["Discovery"]
    review = salesproc.review_deals(h, edited, as_of=truth.as_of)
    stages = set(review.to_frame()["milestone"].dropna().astype(str))
    assert "Evaluation" in stages and "Discovery call" in stages
    assert not stages & {"Solution", "Proposal", "Discovery"}


def test_a_plan_for_an_open_deal_uses_the_renamed_milestones() -> None:
    h, truth = salesproc.synthetic_history(2000, seed=14)
    t = salesproc.derive_template(h, as_of=truth.as_of)
    edited = rename_milestone(t, "Proposal", "Written proposal")
    c = h.as_of(truth.as_of).cases
    open_ids = set(c.loc[c["status"] == "open", "case_id"])
    ev = h.events
    in_proposal = ev[(ev["name"] == "Proposal") & ev["case_id"].isin(open_ids)]
    case_id = str(in_proposal["case_id"].iloc[0])
    plan = salesproc.plan_backwards(edited, target_date=truth.as_of + pd.Timedelta(days=60), as_of=truth.as_of,
                                    case=case_id, history=h, n_simulations=2000)
    done = plan.to_frame().set_index("item")["done"]
    assert bool(done["Written proposal"]) and bool(done["Qualify"])
