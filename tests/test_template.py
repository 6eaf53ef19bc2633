"""The process template: YAML round trip, safe saving, readable errors, diffs and kept edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesproc.errors import SalesprocError, TemplateError
from salesproc.template._template import (
    Activity,
    ActivityEvidence,
    Dependency,
    Duration,
    Milestone,
    MilestoneEvidence,
    ProcessTemplate,
    Rate,
    diff_templates,
    load_template,
    save_template,
    template_from_yaml,
)


def _template(**kw: object) -> ProcessTemplate:
    ms = [
        Milestone(name="Qualify", order=1, p50_days=5.0, p80_days=9.0,
                  evidence=MilestoneEvidence(duration=Duration(p50=5.0, p80=9.0))),
        Milestone(name="Proposal", order=2, p50_days=10.0, p80_days=20.0,
                  evidence=MilestoneEvidence(duration=Duration(p50=10.0, p80=20.0))),
        Milestone(name="Negotiation", order=3, p50_days=7.0, p80_days=12.0,
                  evidence=MilestoneEvidence(duration=Duration(p50=7.0, p80=12.0))),
    ]
    acts = [
        Activity(name="Reference call", milestone="Negotiation", critical=True, requirement="required",
                 evidence=ActivityEvidence(milestone="Negotiation", n=400, n_with=150, n_without=250,
                                           success_with=0.7, success_without=0.45, risk_difference=0.25,
                                           ci=(0.15, 0.34), p=1e-6, q=1e-5)),
        Activity(name="Newsletter", requirement="none"),
    ]
    data = {"name": "team", "milestones": ms, "activities": acts}
    data.update(kw)
    return ProcessTemplate(**data)  # type: ignore[arg-type]


def test_yaml_round_trip_is_exact(tmp_path: Path) -> None:
    t = _template()
    p = save_template(t, tmp_path / "process.yaml")
    assert load_template(p) == t
    text = p.read_text()
    assert text.startswith("# salesproc process template 'team'")
    assert text.index("Qualify") < text.index("Proposal") < text.index("Negotiation")


def test_save_never_overwrites_silently(tmp_path: Path) -> None:
    t = _template()
    first = save_template(t, tmp_path / "process.yaml")
    second = save_template(t.model_copy(update={"version": 2}), tmp_path / "process.yaml")
    third = save_template(t.model_copy(update={"version": 3}), tmp_path / "process.yaml")
    assert [first.name, second.name, third.name] == ["process.yaml", "process.v2.yaml", "process.v3.yaml"]
    assert load_template(first).version == 1
    forced = save_template(t.model_copy(update={"version": 9}), first, overwrite=True)
    assert forced == first and load_template(first).version == 9
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_invalid_yaml_names_key_path_and_line(tmp_path: Path) -> None:
    bad = _template().to_yaml().replace("p50_days: 10.0", "p50_days: ten days")
    line = next(i for i, x in enumerate(bad.splitlines(), 1) if "ten days" in x)
    with pytest.raises(TemplateError, match=rf"line {line}, milestones\[1\]\.p50_days: .*'ten days'"):
        template_from_yaml(bad, source="x.yaml")
    with pytest.raises(TemplateError, match=r"x.yaml, line 2: not valid YAML"):
        template_from_yaml("name: a\n  - broken: [", source="x.yaml")
    with pytest.raises(SalesprocError, match="not one of"):
        template_from_yaml(_template().to_yaml().replace("milestone: Negotiation", "milestone: Nope"))


def test_yaml_is_loaded_safely() -> None:
    evil = "name: !!python/object/apply:os.system ['echo hacked']\n"
    with pytest.raises(TemplateError, match="not valid YAML"):
        template_from_yaml(evil)


def test_hand_typed_durations_are_marked_edited(tmp_path: Path) -> None:
    text = _template().to_yaml().replace("p50_days: 10.0", "p50_days: 14.0")
    t = template_from_yaml(text)
    assert t.milestone("Proposal").edited == ["p50_days"]
    assert t.milestone("Qualify").edited == []


def test_diff_reports_what_a_person_would_look_for() -> None:
    a = _template()
    ms = [m.model_copy() for m in a.milestones]
    ms[1] = ms[1].model_copy(update={"p50_days": 15.0})
    ms = [ms[0], ms[2].model_copy(update={"order": 2}), ms[1].model_copy(update={"order": 3})]
    ms.append(Milestone(name="Legal review", order=4))
    acts = [a.activities[0].model_copy(update={"critical": False, "requirement": "none"}),
            a.activities[1].model_copy(update={"critical": True, "requirement": "recommended",
                                               "milestone": "Proposal"})]
    b = a.model_copy(update={"version": 2, "milestones": ms, "activities": acts,
                             "dependencies": [Dependency(before="Legal review", after="Negotiation")]})
    d = diff_templates(a, b)
    kinds = [c.kind for c in d]
    assert kinds.count("milestone_added") == 1
    assert "milestone_reordered" in kinds
    assert "duration_moved" in kinds
    assert "activity_no_longer_critical" in kinds and "activity_now_critical" in kinds
    assert "dependency_added" in kinds
    text = str(d)
    assert "Proposal: p50_days 10.0 -> 15.0" in text
    assert "Reference call lost critical status" in text
    assert "Qualify > Proposal > Negotiation  ->  Qualify > Negotiation > Proposal" in text
    assert not diff_templates(a, a)


def test_template_rejects_inconsistent_content() -> None:
    with pytest.raises(ValueError, match="unique"):
        ProcessTemplate(milestones=[Milestone(name="A", order=1), Milestone(name="A", order=2)])
    with pytest.raises(ValueError, match="unknown"):
        _template(dependencies=[Dependency(before="Ghost", after="Qualify")])


def test_html_escapes_names() -> None:
    t = _template(milestones=[Milestone(name="<script>alert(1)</script>", order=1)], activities=[])
    html = t._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_implied_dependencies_follow_order_and_activities() -> None:
    deps = {(d.before, d.after) for d in _template().all_dependencies()}
    assert ("Qualify", "Proposal") in deps and ("Proposal", "Negotiation") in deps
    assert ("Reference call", "Negotiation") in deps
    assert not any(d[0] == "Newsletter" for d in deps)


# --- values a hand edit may break (issue 17) --------------------------------------------------------------


def _line(text: str, needle: str) -> int:
    return next(i for i, x in enumerate(text.splitlines(), 1) if needle in x)


@pytest.mark.parametrize("typed", [".inf", "-5", ".nan", "-.inf"])
def test_a_hand_typed_duration_must_be_finite_days(typed: str) -> None:
    bad = _template().to_yaml().replace("p50_days: 10.0", f"p50_days: {typed}")
    found = {".inf": "inf", "-5": "-5", ".nan": "nan", "-.inf": "-inf"}[typed]
    with pytest.raises(TemplateError, match=(
        rf"x\.yaml: invalid template:\n  line {_line(bad, 'p50_days: ' + typed)}, milestones\[1\]\.p50_days: "
        rf"found {found}, expected a finite number of days, 0 or more\. Fix: type how many days"
    )):
        template_from_yaml(bad, source="x.yaml")


def test_p80_must_be_at_least_p50() -> None:
    bad = _template().to_yaml().replace("p80_days: 20.0", "p80_days: 4.0")
    with pytest.raises(TemplateError, match=(
        rf"line {_line(bad, 'p80_days: 4.0')}, milestones\[1\]\.p80_days: found 4\.0, expected at least "
        r"p50_days \(10\).*Fix: raise p80_days or lower p50_days"
    )):
        template_from_yaml(bad, source="x.yaml")


@pytest.mark.parametrize(
    ("edit", "path", "expected"),
    [
        (("reached_share: 0.0", "reached_share: 1.5"), r"milestones\[0\]\.evidence\.reached_share: found 1\.5",
         "a share or probability between 0 and 1"),
        (("reached: 0", "reached: -3"), r"milestones\[0\]\.evidence\.reached: found -3", "a whole number, 0 or more"),
        (("reached: 0", "reached: 2.5"), r"milestones\[0\]\.evidence\.reached: found 2\.5", "valid integer"),
        (("success_with: 0.7", "success_with: .nan"), r"activities\[0\]\.evidence\.success_with: found nan",
         "between 0 and 1"),
        (("risk_difference: 0.25", "risk_difference: 1.25"), r"activities\[0\]\.evidence\.risk_difference",
         "between -1 and 1"),
        (("n_with: 150", "n_with: -150"), r"activities\[0\]\.evidence\.n_with: found -150", "0 or more"),
        (("p50: 5.0", "p50: -1.0"), r"milestones\[0\]\.evidence\.duration\.p50: found -1\.0", "finite number of days"),
        (("p80: 9.0", "p80: 1.0"), r"milestones\[0\]\.evidence\.duration\.p80: found 1\.0", "at least p50"),
    ],
)
def test_evidence_values_are_checked_on_load(edit: tuple[str, str], path: str, expected: str) -> None:
    text = _template().to_yaml()
    assert edit[0] in text
    bad = text.replace(edit[0], edit[1], 1)
    with pytest.raises(TemplateError, match=rf"line {_line(bad, edit[1])}, {path}.*{expected}"):
        template_from_yaml(bad, source="x.yaml")


def test_quantiles_never_decrease_and_unknown_ones_come_last() -> None:
    with pytest.raises(ValueError, match=r"quantiles\n.*15% quantile \(2\) is under the 10% one \(3\)"):
        Duration(quantiles=[1.0, 3.0, 2.0])
    with pytest.raises(ValueError, match="unknown \\(null\\) quantiles only at the end"):
        Duration(quantiles=[1.0, None, 2.0])
    with pytest.raises(ValueError, match="at most 19 quantiles"):
        Duration(quantiles=[1.0] * 20)
    assert Duration(quantiles=[1.0, 1.0, 4.0, None, None]).quantiles == [1.0, 1.0, 4.0, None, None]


def test_the_same_checks_apply_to_templates_built_in_python() -> None:
    with pytest.raises(ValueError, match=r"p50_days\n  Value error, expected a finite number of days"):
        Milestone(name="Qualify", order=1, p50_days=-5)
    with pytest.raises(ValueError, match="p80_days"):
        Milestone(name="Qualify", order=1, p50_days=10, p80_days=float("inf"))
    with pytest.raises(ValueError, match=r"n\n  Value error, expected n at least k \(5\)"):
        Rate(k=5, n=3, rate=0.5, low=0.2, high=0.8)
    with pytest.raises(ValueError, match="not true/false"):
        Duration(n=True)
    with pytest.raises(ValueError, match="0 or more"):
        ProcessTemplate(directly_follows={"Qualify": {"Proposal": -1}})
    with pytest.raises(ValueError, match="0 or more"):
        Activity(name="Demo", due_days_before=-2)


def test_derived_templates_pass_the_checks() -> None:
    import salesproc

    h, truth = salesproc.synthetic_history(400, seed=3)
    t = salesproc.derive_template(h, as_of=truth.as_of)
    assert template_from_yaml(t.to_yaml()) == t


def test_saves_at_the_same_moment_each_get_their_own_version(tmp_path) -> None:
    # a save never replaces, nor fails on, a version written at the same moment by another process
    from concurrent.futures import ThreadPoolExecutor

    from salesproc.template import Milestone, ProcessTemplate, load_template, save_template

    templates = [ProcessTemplate(name=f"t{i}", milestones=[Milestone(name="Qualify", order=1)]) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        paths = list(pool.map(lambda t: save_template(t, tmp_path / "process.yaml"), templates))
    assert sorted(p.name for p in paths) == sorted(["process.yaml"] + [f"process.v{n}.yaml" for n in range(2, 7)])
    assert sorted(load_template(p).name for p in paths) == [f"t{i}" for i in range(6)]
