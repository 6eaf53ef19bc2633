"""derive_template recovers the truth planted in synthetic histories."""

from __future__ import annotations

import numpy as np
import pytest

import salesproc
from salesproc.template import Milestone


def test_planted_order_and_effects_are_recovered_at_5000_deals_over_seeds() -> None:
    found = planted_total = flagged_total = false_total = 0
    for seed in range(1, 9):
        h, truth = salesproc.synthetic_history(5000, seed=seed)
        t = salesproc.derive_template(h, as_of=truth.as_of)
        assert t.milestone_names == truth.stages
        flagged = {a.name: a for a in t.activities if a.requirement != "none"}
        planted = truth.effect_names()
        assert len(planted) == 6
        planted_total += len(planted)
        flagged_total += len(flagged)
        false_total += sum(n not in truth.effects for n in flagged)
        for name in planted:
            if name not in flagged:
                continue
            found += 1
            a = flagged[name]
            assert (a.requirement == "warning") == (truth.effects[name].direction == "-")
            assert a.milestone == truth.expected_flag_milestone(name)
            assert a.evidence is not None and a.evidence.q is not None and a.evidence.q < 0.05
            assert a.owner_role == truth.effects[name].role
    assert found >= 0.9 * planted_total
    assert false_total <= 0.1 * flagged_total, (false_total, flagged_total)


def test_decoys_would_fool_a_naive_comparison_but_not_the_landmark_one() -> None:
    h, truth = salesproc.synthetic_history(5000, seed=4)
    c, e = h.cases, h.events
    closed = c[c["status"] != "open"]
    for decoy in truth.decoys:
        did = set(e.loc[e["name"] == decoy, "case_id"].astype(str))
        mask = closed["case_id"].isin(did)
        naive = (closed.loc[mask, "status"] == "success").mean() - (closed.loc[~mask, "status"] == "success").mean()
        assert naive > 0.05  # "ever did it" favours the decoy, because winners live longer
    t = salesproc.derive_template(h, as_of=truth.as_of)
    assert not [a.name for a in t.activities if a.name in truth.decoys and a.requirement != "none"]


@pytest.mark.slow
def test_median_time_intervals_cover_the_planted_truth_about_95_percent() -> None:
    hits, total = 0, 0
    for seed in range(100, 140):
        h, truth = salesproc.synthetic_history(1500, seed=seed)
        t = salesproc.derive_template(h, as_of=truth.as_of)
        for m in t.milestones:
            lo, hi = m.evidence.duration.p50_ci
            assert lo is not None and hi is not None
            total += 1
            hits += lo <= truth.median_days[m.name] <= hi
    coverage = hits / total
    assert total == 200
    assert 0.90 <= coverage <= 0.99, coverage


def test_point_estimates_of_time_in_milestone_are_close_to_the_truth() -> None:
    h, truth = salesproc.synthetic_history(20000, seed=8)
    t = salesproc.derive_template(h, as_of=truth.as_of)
    for m in t.milestones:
        assert m.p50_days == pytest.approx(truth.median_days[m.name], rel=0.05)
        d = m.evidence.duration
        assert d.censored > 0 and d.naive_p50 is not None


def test_projects_use_the_same_engine_with_on_time_as_success() -> None:
    h, truth = salesproc.synthetic_history(3000, seed=5, kind="project")
    t = salesproc.derive_template(h, as_of=truth.as_of)
    assert t.kind == "project" and t.success == "on_time"
    assert t.milestone_names == truth.stages
    flagged = {a.name for a in t.activities if a.requirement != "none"}
    assert flagged & set(truth.effect_names())
    assert not flagged & set(truth.decoys)


def test_rederiving_keeps_a_persons_edits_and_proposes_the_data_s_changes() -> None:
    h, truth = salesproc.synthetic_history(3000, seed=6)
    v1 = salesproc.derive_template(h, as_of=truth.as_of - np.timedelta64(120, "D"), name="team")
    prop = v1.milestone("Proposal")
    edited = prop.model_copy(update={"owner_role": "Deal desk", "p50_days": 3.0,
                                     "edited": ["owner_role", "p50_days"]})
    ms = [edited if m.name == "Proposal" else m for m in v1.milestones]
    ms.append(Milestone(name="Security review", order=99, edited=["name"]))
    v1e = v1.model_copy(update={"milestones": ms})
    v2 = salesproc.derive_template(h, as_of=truth.as_of, previous=v1e)
    assert v2.version == v1.version + 1 and v2.name == "team"
    p2 = v2.milestone("Proposal")
    assert p2.owner_role == "Deal desk" and p2.p50_days == 3.0
    assert "p50_days" in p2.edited
    props = {(p.item, p.field) for p in v2.proposals}
    assert ("Proposal", "p50_days") in props and ("Proposal", "owner_role") in props
    assert v2.milestone("Qualify").p50_days == pytest.approx(truth.median_days["Qualify"], rel=0.1)
