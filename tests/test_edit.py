"""Template edits: each edit returns a new, valid template, marks what it set, and leaves its input alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salesproc
from salesproc.edit import (
    accept_activity,
    merge_milestones,
    move_milestone,
    next_template_version,
    reject_activity,
    rename_milestone,
    set_activity,
    set_milestone,
)
from salesproc.errors import SalesprocError, TemplateError
from salesproc.template._template import (
    Activity,
    Dependency,
    Duration,
    Milestone,
    MilestoneEvidence,
    ProcessTemplate,
    Proposal,
    diff_templates,
    load_template,
    save_template,
    template_from_yaml,
)


def _ms(name: str, order: int, p50: float | None, p80: float | None, owner: str | None,
        exit_criteria: list[str]) -> Milestone:
    return Milestone(name=name, order=order, p50_days=p50, p80_days=p80, owner_role=owner,
                     exit_criteria=exit_criteria,
                     evidence=MilestoneEvidence(reached=100 - 10 * order,
                                                duration=Duration(p50=p50, p80=p80)))


@pytest.fixture
def tpl() -> ProcessTemplate:
    return ProcessTemplate(
        name="team",
        milestones=[
            _ms("Qualify", 1, 2.0, 4.0, "SDR", ["Budget known"]),
            _ms("Demo", 2, 5.0, 10.0, "AE", ["Champion identified done"]),
            _ms("Trial", 3, 3.0, 6.0, None, ["Security review done", "Budget known"]),
            _ms("Proposal", 4, None, None, "AE", []),
        ],
        activities=[
            Activity(name="Champion identified", milestone="Demo", critical=True, requirement="required"),
            Activity(name="Security review", milestone="Trial", critical=True, requirement="recommended"),
            Activity(name="Discount offered", milestone="Trial", requirement="warning"),
            Activity(name="Newsletter"),
        ],
        dependencies=[
            Dependency(before="Newsletter", after="Demo"),
            Dependency(before="Demo", after="Trial"),
        ],
        proposals=[Proposal(item="Trial", field="p50_days", current=3.0, proposed=4.0)],
    )


def _valid(t: ProcessTemplate, *, yaml: bool = True) -> None:
    """Invariants every edited template keeps."""
    assert sorted(m.order for m in t.milestones) == list(range(1, len(t.milestones) + 1))
    names = set(t.milestone_names)
    assert all(a.milestone is None or a.milestone in names for a in t.activities)
    ProcessTemplate.model_validate(t.model_dump())  # the model's own checks (unique names, references)
    if yaml:
        assert template_from_yaml(t.to_yaml()) == t  # YAML round trip, including edit marks


# --- move -------------------------------------------------------------------------------------


def test_move_up_and_down_renumbers_and_marks_order(tpl: ProcessTemplate) -> None:
    before = tpl.model_dump()
    up = move_milestone(tpl, "Trial", -1)
    assert up.milestone_names == ["Qualify", "Trial", "Demo", "Proposal"]
    assert [up.milestone(n).order for n in up.milestone_names] == [1, 2, 3, 4]
    assert up.milestone("Trial").edited == ["order"]
    assert up.milestone("Demo").edited == []
    down = move_milestone(up, "Qualify", 3)
    assert down.milestone_names == ["Trial", "Demo", "Proposal", "Qualify"]
    assert tpl.model_dump() == before  # input untouched
    _valid(down)
    assert str(diff_templates(tpl, up)).endswith(
        "milestone order: Qualify > Demo > Trial > Proposal  ->  Qualify > Trial > Demo > Proposal")


def test_move_out_of_range_and_unknown(tpl: ProcessTemplate) -> None:
    with pytest.raises(TemplateError, match=r"cannot move 'Qualify' 1 place\(s\) up: it is number 1 of 4"):
        move_milestone(tpl, "Qualify", -1)
    with pytest.raises(TemplateError, match=r"cannot move 'Proposal' 2 place\(s\) down"):
        move_milestone(tpl, "Proposal", 2)
    with pytest.raises(TemplateError, match=r"no milestone 'Nope'.*\['Qualify', 'Demo', 'Trial', 'Proposal'\]"):
        move_milestone(tpl, "Nope", 1)
    with pytest.raises(TemplateError, match="'steps' parameter of move_milestone must be an integer"):
        move_milestone(tpl, "Demo", 1.5)  # type: ignore[arg-type]
    assert move_milestone(tpl, "Demo", 0) is tpl


# --- rename -----------------------------------------------------------------------------------


def test_rename_carries_references(tpl: ProcessTemplate) -> None:
    r = rename_milestone(tpl, "Trial", "Pilot")
    assert r.milestone_names == ["Qualify", "Demo", "Pilot", "Proposal"]
    assert r.milestone("Pilot").edited == ["name"]
    assert r.milestone("Pilot").evidence == tpl.milestone("Trial").evidence
    assert r.activity("Security review").milestone == "Pilot"
    assert r.activity("Security review").edited == ["milestone"]
    assert r.activity("Discount offered").milestone == "Pilot"
    assert r.activity("Champion identified").milestone == "Demo"
    assert [(d.before, d.after) for d in r.dependencies] == [("Newsletter", "Demo"), ("Demo", "Pilot")]
    assert r.proposals[0].item == "Pilot"
    _valid(r)
    assert r.milestone("Pilot").aliases == ["Trial"]
    assert "milestone renamed: Trial -> Pilot" in str(diff_templates(tpl, r))


def test_rename_rejects_clashes_and_blank_names(tpl: ProcessTemplate) -> None:
    with pytest.raises(TemplateError, match=r"a milestone named 'Demo' already exists.*merge_milestones"):
        rename_milestone(tpl, "Trial", "Demo")
    with pytest.raises(TemplateError, match="'Newsletter' is already the name of an activity"):
        rename_milestone(tpl, "Trial", "Newsletter")
    with pytest.raises(TemplateError, match="'new_name' parameter of rename_milestone must be a non-empty"):
        rename_milestone(tpl, "Trial", "   ")
    assert rename_milestone(tpl, "Trial", " Trial ") is tpl


# --- merge ------------------------------------------------------------------------------------


def test_merge_pools_times_criteria_and_moves_activities(tpl: ProcessTemplate) -> None:
    m = merge_milestones(tpl, ["Demo", "Trial"], name="Evaluation")
    assert m.milestone_names == ["Qualify", "Evaluation", "Proposal"]
    ev = m.milestone("Evaluation")
    assert (ev.order, ev.p50_days, ev.p80_days, ev.owner_role) == (2, 8.0, 16.0, "AE")
    assert ev.exit_criteria == ["Champion identified done", "Security review done", "Budget known"]
    assert ev.evidence == tpl.milestone("Demo").evidence  # the evidence of the one merged into
    assert set(ev.edited) == {"name", "p50_days", "p80_days", "exit_criteria"}
    # every activity due by a merged milestone is now due by the merged one
    assert {a.name: a.milestone for a in m.activities} == {
        "Champion identified": "Evaluation", "Security review": "Evaluation",
        "Discount offered": "Evaluation", "Newsletter": None}
    # Demo -> Trial would now link the milestone to itself: dropped
    assert [(d.before, d.after) for d in m.dependencies] == [("Newsletter", "Evaluation")]
    _valid(m)


def test_merge_into_a_later_milestone_keeps_its_place_and_name(tpl: ProcessTemplate) -> None:
    m = merge_milestones(tpl, ["Qualify", "Trial"], into="Trial")
    assert m.milestone_names == ["Demo", "Trial", "Proposal"]
    t = m.milestone("Trial")
    assert (t.p50_days, t.p80_days, t.owner_role) == (5.0, 10.0, "SDR")  # owner: first one set
    assert "name" not in t.edited and "owner_role" in t.edited
    _valid(m)


def test_merge_three_with_unknown_durations(tpl: ProcessTemplate) -> None:
    m = merge_milestones(tpl, ["Proposal", "Trial", "Demo"], name="Close")
    assert m.milestone_names == ["Qualify", "Close"]
    assert m.milestone("Close").p50_days == 8.0  # Proposal has no duration: the known ones add up
    _valid(m)


def test_merge_errors(tpl: ProcessTemplate) -> None:
    with pytest.raises(TemplateError, match="must list two or more milestones"):
        merge_milestones(tpl, ["Demo"])
    with pytest.raises(TemplateError, match="must list two or more milestones"):
        merge_milestones(tpl, "Demo")
    with pytest.raises(TemplateError, match="names the same milestone twice"):
        merge_milestones(tpl, ["Demo", "Demo"])
    with pytest.raises(TemplateError, match="no milestone 'Pilot'"):
        merge_milestones(tpl, ["Demo", "Pilot"])
    with pytest.raises(TemplateError, match=r"'into' parameter of merge_milestones must be one of the merged milestones \['Demo', 'Trial'\]"):
        merge_milestones(tpl, ["Demo", "Trial"], into="Qualify")
    with pytest.raises(TemplateError, match=r"a milestone named 'Proposal' already exists"):
        merge_milestones(tpl, ["Demo", "Trial"], name="Proposal")


# --- fields -----------------------------------------------------------------------------------


def test_set_milestone_marks_only_what_changed(tpl: ProcessTemplate) -> None:
    s = set_milestone(tpl, "Demo", owner_role="AE", exit_criteria="Champion identified done\n Demo given \n",
                      p50_days=6, p80_days=10.0)
    m = s.milestone("Demo")
    assert (m.owner_role, m.exit_criteria, m.p50_days, m.p80_days) == (
        "AE", ["Champion identified done", "Demo given"], 6.0, 10.0)
    assert m.edited == ["exit_criteria", "p50_days"]
    assert set_milestone(tpl, "Demo", owner_role="AE") is tpl
    cleared = set_milestone(tpl, "Qualify", owner_role="  ", p50_days=None)
    assert cleared.milestone("Qualify").owner_role is None and cleared.milestone("Qualify").p50_days is None
    _valid(s)
    # the hand-set p50 survives a save and load (and the mark does too)
    assert template_from_yaml(s.to_yaml()).milestone("Demo").edited == ["exit_criteria", "p50_days"]


def test_set_milestone_validates(tpl: ProcessTemplate) -> None:
    with pytest.raises(TemplateError, match="p80 must be at least p50"):
        set_milestone(tpl, "Demo", p80_days=3)
    with pytest.raises(TemplateError, match="'p50_days' parameter of set_milestone must be a finite number"):
        set_milestone(tpl, "Demo", p50_days=-1)
    with pytest.raises(TemplateError, match=r"must be a number of days or None. Got 'soon'"):
        set_milestone(tpl, "Demo", p50_days="soon")  # type: ignore[arg-type]
    with pytest.raises(TemplateError, match="'exit_criteria' parameter of set_milestone must hold text"):
        set_milestone(tpl, "Demo", exit_criteria=[1])  # type: ignore[list-item]
    with pytest.raises(SalesprocError, match="'owner_role' parameter of set_milestone must be text"):
        set_milestone(tpl, "Demo", owner_role=3)  # type: ignore[arg-type]


def test_set_activity_and_critical_follows_requirement(tpl: ProcessTemplate) -> None:
    s = set_activity(tpl, "Newsletter", requirement="recommended", milestone="Qualify", owner_role="SDR",
                     due_days_before=3)
    a = s.activity("Newsletter")
    assert (a.critical, a.requirement, a.milestone, a.owner_role, a.due_days_before) == (
        True, "recommended", "Qualify", "SDR", 3.0)
    assert a.edited == ["requirement", "critical", "milestone", "owner_role", "due_days_before"]
    assert "Newsletter became critical (none -> recommended)" in str(diff_templates(tpl, s))
    with pytest.raises(TemplateError, match=r"must be one of \['required', 'recommended', 'warning', 'none'\]"):
        set_activity(tpl, "Newsletter", requirement="must")  # type: ignore[arg-type]
    with pytest.raises(TemplateError, match="no milestone 'Close'"):
        set_activity(tpl, "Newsletter", milestone="Close")
    with pytest.raises(TemplateError, match="no activity 'Webinar'"):
        set_activity(tpl, "Webinar", requirement="none")


def test_accept_and_reject(tpl: ProcessTemplate) -> None:
    acc = accept_activity(tpl, "Security review")
    a = acc.activity("Security review")
    assert (a.requirement, a.critical, a.edited) == ("recommended", True, ["requirement", "critical"])
    assert accept_activity(tpl, "Newsletter").activity("Newsletter").requirement == "required"
    assert accept_activity(tpl, "Security review", "required").activity("Security review").requirement == "required"
    rej = reject_activity(tpl, "Champion identified")
    r = rej.activity("Champion identified")
    assert (r.requirement, r.critical, r.edited) == ("none", False, ["requirement", "critical"])
    assert "Champion identified lost critical status (required -> none)" in str(diff_templates(tpl, rej))
    assert tpl.activity("Champion identified").critical  # input untouched


def test_edits_survive_rederivation() -> None:
    """The point of the marks: derive_template(previous=edited) keeps the team's decisions."""
    h = salesproc.load_sample_deals()
    t = salesproc.derive_template(h)
    crit = t.critical_activities[0].name
    first, last = t.milestone_names[0], t.milestone_names[-1]
    edited = set_milestone(reject_activity(t, crit), first, p50_days=1.0, p80_days=2.0, owner_role="SDR")
    edited = move_milestone(edited, last, -1)
    again = salesproc.derive_template(h, previous=edited)
    assert not again.activity(crit).critical
    m = again.milestone(first)
    assert (m.p50_days, m.p80_days, m.owner_role) == (1.0, 2.0, "SDR")
    assert again.milestone_names == edited.milestone_names
    assert again.version == t.version + 1
    assert {(p.item, p.field) for p in again.proposals} >= {(crit, "requirement"), (first, "p50_days")}


# --- versions ---------------------------------------------------------------------------------


def test_next_template_version_follows_the_file_names(tmp_path: Path, tpl: ProcessTemplate) -> None:
    path = tmp_path / "process.yaml"
    assert next_template_version(tpl, path).version == 1
    save_template(tpl, path)
    v2 = next_template_version(tpl, path, previous=tpl)
    assert save_template(v2, path).name == "process.v2.yaml"
    v3 = next_template_version(tpl, tmp_path / "process.v2.yaml", previous=v2)
    assert v3.version == 3 and save_template(v3, path).name == "process.v3.yaml"
    assert load_template(tmp_path / "process.v3.yaml").version == 3
    assert next_template_version(tpl, path, previous=tpl.model_copy(update={"version": 7})).version == 8


# --- any sequence of edits keeps a valid template ----------------------------------------------

_EDITS = st.lists(
    st.tuples(
        st.sampled_from(["move", "rename", "merge", "set_ms", "set_act", "accept", "reject"]),
        st.integers(0, 10), st.integers(-3, 3), st.integers(0, 10),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(_EDITS)
def test_any_sequence_of_edits_keeps_a_valid_template(edits: list[tuple[str, int, int, int]]) -> None:
    t = ProcessTemplate(
        milestones=[_ms(n, i + 1, float(i + 1), float(2 * i + 2), None, []) for i, n in enumerate("ABCDE")],
        activities=[Activity(name=f"act{i}", milestone="ABCDE"[i % 5]) for i in range(4)],
        dependencies=[Dependency(before="act0", after="C"), Dependency(before="B", after="D")],
    )
    total = sum(m.p50_days or 0 for m in t.milestones)
    for k, (op, i, step, j) in enumerate(edits):
        names = t.milestone_names
        name = names[i % len(names)]
        act = t.activities[i % len(t.activities)].name
        try:
            if op == "move":
                t = move_milestone(t, name, step)
            elif op == "rename":
                t = rename_milestone(t, name, f"M{k}")
            elif op == "merge":
                t = merge_milestones(t, [name, names[j % len(names)]])
            elif op == "set_ms":
                t = set_milestone(t, name, owner_role=f"r{j}", exit_criteria=[f"c{j}"])
            elif op == "set_act":
                t = set_activity(t, act, milestone=names[j % len(names)])
            elif op == "accept":
                t = accept_activity(t, act)
            else:
                t = reject_activity(t, act)
        except TemplateError:
            continue  # an edit that makes no sense is refused; the template stays as it was
        _valid(t, yaml=False)
    _valid(t)
    # merging adds times up and nothing else changes them: the total time is conserved
    assert sum(m.p50_days or 0 for m in t.milestones) == pytest.approx(total)
    assert len(t.activities) == 4
