"""Workshop widgets, driven without a browser: set the controls' values, click, check the results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from salesproc.errors import InputError
from salesproc.history import History
from salesproc.template import (
    Activity,
    Milestone,
    ProcessTemplate,
    load_template,
    save_template,
)
from salesproc.widgets import ColumnMapper, GoalForm, TemplateEditor, guess_mapping, preview_table

EXPORT = (
    "Opportunity ID,Stage,Stage Date,Result,Rep,Notes\n"
    "OP-1,Qualify,2024-01-02,won,ann,first call\n"
    "OP-1,Proposal,2024-01-20,won,ann,\n"
    "OP-2,Qualify,2024-01-05,lost,bob,\n"
    "OP-3,Qualify,2024-02-01,open,ann,\n"
    "OP-3,Proposal,2024-02-11,open,cy,sent\n"
)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    p = tmp_path / "crm export.csv"
    p.write_text(EXPORT)
    return p


# --- column mapper ----------------------------------------------------------------------------


def test_guess_mapping_uses_each_column_once() -> None:
    assert guess_mapping(["Deal ID", "Event", "Time", "Status", "Owner", "Role"]) == {
        "case_id": "Deal ID", "name": "Event", "timestamp": "Time", "outcome": "Status",
        "owner": "Owner", "role": "Role"}
    assert guess_mapping(["case:concept:name", "concept:name", "time:timestamp", "org:resource"]) == {
        "case_id": "case:concept:name", "name": "concept:name", "timestamp": "time:timestamp",
        "owner": "org:resource"}
    assert guess_mapping(["a", "b"]) == {}


def test_preview_reads_only_the_first_rows(tmp_path: Path, export: Path) -> None:
    df = preview_table(export, nrows=2)
    assert list(df.columns) == ["Opportunity ID", "Stage", "Stage Date", "Result", "Rep", "Notes"]
    assert df["Stage"].tolist() == ["Qualify", "Proposal"]
    semi = tmp_path / "semi.csv"
    semi.write_text("Deal;Stage;Amount\nA;Qualify;1,5\n")
    assert preview_table(semi).to_dict("records") == [{"Deal": "A", "Stage": "Qualify", "Amount": "1,5"}]
    full = pd.read_csv(export)
    full.to_parquet(tmp_path / "x.parquet")
    full.to_excel(tmp_path / "x.xlsx", index=False)
    assert len(preview_table(tmp_path / "x.parquet", nrows=3)) == 3
    assert preview_table(tmp_path / "x.xlsx", nrows=4)["Rep"].tolist() == ["ann", "ann", "bob", "ann"]
    with pytest.raises(InputError, match=r"nope\.csv: no such file"):
        preview_table(tmp_path / "nope.csv")


def test_mapper_previews_guesses_and_loads(export: Path) -> None:
    loaded: list[History] = []
    m = ColumnMapper(export, on_load=loaded.append)
    assert "OP-1" in m.preview.value and "First 5 rows" in m.preview.value
    assert m.mapping == {"case_id": "Opportunity ID", "name": "Stage", "outcome": "Result", "owner": "Rep"}
    # 'Stage Date' is not a known name: the person picks it
    m.dropdowns["timestamp"].value = "Stage Date"
    m.load_button.click()
    assert m.error is None and m.history is not None
    assert loaded == [m.history]
    cases = m.history.cases.set_index("case_id")
    assert cases["outcome"].to_dict() == {"OP-1": "won", "OP-2": "lost", "OP-3": "open"}
    assert len(m.history.events) == 5
    assert "cases:  3   events: 5" in m.result.value
    assert "mapping={&#x27;case_id&#x27;: &#x27;Opportunity ID&#x27;" in m.result.value


def test_mapper_shows_the_loaders_error(export: Path) -> None:
    m = ColumnMapper(export)
    m.load_button.click()  # no timestamp column chosen
    assert m.history is None
    assert m.error is not None and "no column 'timestamp'" in m.error
    assert "salesproc-error" in m.result.value
    m.dropdowns["timestamp"].value = "Notes"  # a column that holds no dates
    m.load_button.click()
    assert m.history is None and m.error is not None
    assert "row 2" in m.error and "'Notes'" in m.error and "first call" in m.error
    m.dropdowns["timestamp"].value = "Stage Date"
    m.load_button.click()
    assert m.error is None and m.history is not None and len(m.history) == 3


def test_mapper_typed_path_and_missing_file(tmp_path: Path, export: Path) -> None:
    m = ColumnMapper()
    assert m.mapping == {}
    m.path_text.value = str(tmp_path / "missing.csv")
    m.preview_button.click()
    assert m.error is not None and "missing.csv: no such file" in m.error
    m.path_text.value = str(export)
    m.preview_button.click()
    assert m.error is None and m.columns[0] == "Opportunity ID"
    assert m.dropdowns["case_id"].value == "Opportunity ID"


def test_mapper_starting_mapping_and_display(export: Path) -> None:
    m = ColumnMapper(export, mapping={"case_id": "Opportunity ID", "name": "Stage", "timestamp": "Stage Date",
                                      "outcome": "Result", "owner": "not a column"})
    assert m.mapping == {"case_id": "Opportunity ID", "name": "Stage", "timestamp": "Stage Date",
                         "outcome": "Result"}
    bundle = m._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


# --- template editor --------------------------------------------------------------------------


@pytest.fixture
def tpl() -> ProcessTemplate:
    return ProcessTemplate(
        name="team",
        milestones=[
            Milestone(name="Qualify", order=1, p50_days=2.0, p80_days=4.0, owner_role="SDR"),
            Milestone(name="Demo", order=2, p50_days=5.0, p80_days=10.0, owner_role="AE"),
            Milestone(name="Proposal", order=3, p50_days=7.0, p80_days=12.0, owner_role="AE"),
        ],
        activities=[
            Activity(name="Champion identified", milestone="Demo", critical=True, requirement="required"),
            Activity(name="Discount offered", milestone="Proposal", requirement="warning"),
            Activity(name="Newsletter"),
        ],
    )


@pytest.fixture
def saved(tmp_path: Path, tpl: ProcessTemplate) -> Path:
    return save_template(tpl, tmp_path / "process.yaml")


def _labels(sel: object) -> list[str]:
    return [label for label, _ in sel.options]  # type: ignore[attr-defined]


def test_editor_lists_milestones_and_critical_activities_first(tpl: ProcessTemplate, saved: Path) -> None:
    ed = TemplateEditor(tpl, path=saved)
    assert _labels(ed.milestones) == ["1. Qualify  (2–4 d)", "2. Demo  (5–10 d)", "3. Proposal  (7–12 d)"]
    assert [v for _, v in ed.activities.options] == ["Champion identified", "Discount offered", "Newsletter"]
    assert ed.milestones.value == "Qualify"
    assert (ed.owner_text.value, ed.p50_text.value, ed.p80_text.value) == ("SDR", "2", "4")
    assert ed.requirement.value == "required" and ed.activity_milestone.value == "Demo"
    assert "Qualify" in ed.preview.value


def test_editor_reorders_renames_and_saves_a_new_version(tpl: ProcessTemplate, saved: Path) -> None:
    original = saved.read_bytes()
    ed = TemplateEditor(tpl, path=saved)
    ed.milestones.value = "Proposal"
    ed.up_button.click()
    assert ed.template.milestone_names == ["Qualify", "Proposal", "Demo"]
    assert ed.milestones.value == "Proposal"  # the selection follows the milestone
    assert _labels(ed.milestones)[1] == "2. Proposal  (7–12 d)  ✎"
    ed.milestones.value = "Demo"
    ed.rename_text.value = "Discovery"
    ed.rename_button.click()
    assert ed.milestones.value == "Discovery" and ed.rename_text.value == ""
    assert ed.template.activity("Champion identified").milestone == "Discovery"
    path = ed.save()
    assert path is not None and path.name == "process.v2.yaml" and ed.saved_path == path
    assert saved.read_bytes() == original  # never overwritten
    v2 = load_template(path)
    assert v2.version == 2
    assert v2.milestone_names == ["Qualify", "Proposal", "Discovery"]
    assert v2.milestone("Proposal").edited == ["order"] and v2.milestone("Discovery").edited == ["name"]
    assert ed.diff is not None
    # a rename reads as a rename (the milestone keeps its old name as an alias for the data)
    assert [c.kind for c in ed.diff] == ["milestone_renamed", "milestone_reordered", "activity_moved"]
    assert v2.milestone("Discovery").aliases == ["Demo"]
    assert "process.v2.yaml" in ed.diff_view.value and "Discovery" in ed.diff_view.value
    # a second round saves v3 against v2
    ed.milestones.value = "Discovery"
    ed.down_button.click()
    assert ed.message.startswith("Error: move_milestone: cannot move 'Discovery' 1 place(s) down")
    ed.milestones.value = "Qualify"
    ed.down_button.click()
    ed.save_button.click()
    assert ed.saved_path is not None and ed.saved_path.name == "process.v3.yaml"
    assert load_template(ed.saved_path).version == 3
    assert str(ed.diff) == "v2 -> v3:\n  milestone order: Qualify > Proposal > Discovery  ->  " \
                           "Proposal > Qualify > Discovery"
    assert ed.save() is None and ed.message == "No changes since the last save."
    assert tpl.milestone_names == ["Qualify", "Demo", "Proposal"]  # the input was never changed


def test_editor_merges_and_moves_activities(tpl: ProcessTemplate, saved: Path) -> None:
    ed = TemplateEditor(tpl, path=saved)
    ed.milestones.value = "Proposal"
    assert [v for _, v in ed.merge_into.options] == ["Qualify", "Demo"]
    ed.merge_into.value = "Demo"
    ed.merge_button.click()
    t = ed.template
    assert t.milestone_names == ["Qualify", "Demo"]
    assert (t.milestone("Demo").p50_days, t.milestone("Demo").p80_days) == (12.0, 22.0)
    assert t.activity("Discount offered").milestone == "Demo"
    assert ed.milestones.value == "Demo"
    written = ed.save()
    assert written is not None
    assert load_template(written) == ed.template
    assert str(ed.diff) == "v1 -> v2:\n  milestones merged: Demo + Proposal -> Demo"
    assert "milestone removed" not in str(ed.diff)


def test_editor_sets_fields_and_marks_them(tpl: ProcessTemplate, saved: Path) -> None:
    ed = TemplateEditor(tpl, path=saved)
    ed.milestones.value = "Demo"
    ed.owner_text.value = "SE"
    ed.exit_text.value = "Demo given\nChampion identified done"
    ed.p80_text.value = "14,5"
    ed.apply_milestone_button.click()
    m = ed.template.milestone("Demo")
    assert (m.owner_role, m.exit_criteria, m.p50_days, m.p80_days) == (
        "SE", ["Demo given", "Champion identified done"], 5.0, 14.5)
    assert m.edited == ["owner_role", "exit_criteria", "p80_days"]
    ed.p50_text.value = "soon"
    ed.apply_milestone_button.click()
    assert ed.message.startswith("Error: p50 days: 'soon' is not a number of days")
    ed.p50_text.value = "20"
    ed.apply_milestone_button.click()
    assert "p80 must be at least p50" in ed.message
    assert ed.template.milestone("Demo").p50_days == 5.0
    # activities: reject the critical one, accept the newsletter as recommended, due 3 days before Qualify
    ed.activities.value = "Champion identified"
    ed.reject_button.click()
    assert not ed.template.activity("Champion identified").critical
    ed.activities.value = "Newsletter"
    assert ed.requirement.value == "none"
    ed.accept_button.click()  # accepting a 'none' activity makes it required
    assert ed.template.activity("Newsletter").requirement == "required"
    ed.requirement.value = "recommended"
    ed.activity_milestone.value = "Qualify"
    ed.activity_owner.value = "SDR"
    ed.due_text.value = "3"
    ed.apply_activity_button.click()
    a = ed.template.activity("Newsletter")
    assert (a.requirement, a.critical, a.milestone, a.owner_role, a.due_days_before) == (
        "recommended", True, "Qualify", "SDR", 3.0)
    assert a.edited == ["requirement", "critical", "milestone", "owner_role", "due_days_before"]
    written = ed.save()
    assert written is not None
    back = load_template(written)
    assert back.activity("Newsletter") == a
    assert back.milestone("Demo").edited == ["owner_role", "exit_criteria", "p80_days"]


def test_editor_undo_and_errors(tpl: ProcessTemplate, saved: Path) -> None:
    ed = TemplateEditor(tpl, path=saved)
    ed.undo_button.click()
    assert ed.message == "Nothing to undo."
    ed.milestones.value = "Demo"
    ed.rename_text.value = "Proposal"
    ed.rename_button.click()
    assert ed.message.startswith("Error: rename_milestone: a milestone named 'Proposal' already exists")
    assert "salesproc-error" in ed.status.value
    assert ed.template is tpl
    ed.rename_text.value = "Evaluate"
    ed.rename_button.click()
    ed.milestones.value = "Evaluate"
    ed.up_button.click()
    assert ed.template.milestone_names == ["Evaluate", "Qualify", "Proposal"]
    ed.undo_button.click()
    assert ed.template.milestone_names == ["Qualify", "Evaluate", "Proposal"]
    ed.undo_button.click()
    assert ed.template == tpl


def test_editor_saves_a_fresh_template_as_the_first_version(tmp_path: Path, tpl: ProcessTemplate) -> None:
    ed = TemplateEditor(tpl, path=tmp_path / "sub" / "process.yaml")
    ed.milestones.value = "Qualify"
    ed.down_button.click()
    written = ed.save()
    assert written == tmp_path / "sub" / "process.yaml"
    assert load_template(written).milestone_names == ["Demo", "Qualify", "Proposal"]
    assert load_template(written).version == 1


# --- goal ---------------------------------------------------------------------------------------


def test_goal_form_makes_a_goal_and_passes_it_on(tmp_path: Path) -> None:
    import datetime

    from salesproc.workshop import open_workshop

    ws = open_workshop(tmp_path)
    f = GoalForm(target_date="2024-04-30", on_set=ws.save_goal)
    assert f.target_date.value == datetime.date(2024, 4, 30)
    f.success_text.value = "  Contract   signed "
    f.measure_text.value = "Signed order form in the CRM"
    f.seller_owner_text.value = "Dana (AE)"
    f.buyer_owner_text.value = "Sam (CFO)"
    f.set_button.click()
    g = f.goal
    assert (g.target_date, g.success, g.measure, g.seller_owner, g.buyer_owner) == (
        pd.Timestamp("2024-04-30", tz="UTC"), "Contract signed", "Signed order form in the CRM", "Dana (AE)",
        "Sam (CFO)")
    assert "Goal: Contract signed by 2024-04-30, measured by Signed order form" in f.result.value
    assert ws.goal() == g
    # a form started from the saved goal shows it
    again = GoalForm(ws.goal())
    assert again.success_text.value == "Contract signed" and again.goal == g


def test_goal_form_says_what_is_missing() -> None:
    f = GoalForm(kind="project")
    assert f.seller_owner_text.description == "Delivery"
    f.success_text.value = "Go-live"
    f.set_button.click()
    assert f.goal is None and f.error is not None and "Pick a target date" in f.error
    f.target_date.value = __import__("datetime").date(2024, 9, 1)
    f.success_text.value = "  "
    f.set_button.click()
    assert f.goal is None and "Say what success looks like" in (f.error or "")
    assert "salesproc-error" in f.result.value


def test_mapper_recognises_a_known_crm_export() -> None:
    from salesproc.load import load_history

    path = Path(__file__).parent / "data" / "salesforce_opportunity_history.csv"
    m = ColumnMapper(path)
    assert m.preset_choice.value == "salesforce"
    assert m.mapping_argument == "salesforce"
    m.load_button.click()
    assert m.error is None and m.history is not None
    direct = load_history(path, mapping="salesforce")
    assert m.history.cases["case_id"].tolist() == direct.cases["case_id"].tolist()
    assert len(m.history.events) == len(direct.events)
    assert "mapping=&#x27;salesforce&#x27;" in m.result.value
    # choosing "the columns below" instead loads with the dropdowns' mapping
    m.preset_choice.value = ""
    assert m.mapping_argument == m.mapping


def test_guess_preset() -> None:
    from salesproc.widgets import guess_preset

    assert guess_preset(["Record ID", "Deal Stage", "Date entered stage", "Amount"]) == "hubspot"
    assert guess_preset(["case:concept:name", "concept:name", "time:timestamp"]) == "xes-csv"
    assert guess_preset(["project_id", "milestone", "planned_date", "actual_date"]) == "project-milestones"
    assert guess_preset(["Opportunity ID", "Stage", "Date"]) is None


def test_mapper_starts_from_a_named_preset() -> None:
    path = Path(__file__).parent / "data" / "hubspot_deal_stage_history.csv"
    m = ColumnMapper(path, mapping="hubspot")
    assert m.mapping_argument == "hubspot"
    m.load_button.click()
    assert m.error is None and m.history is not None and len(m.history) == 4
    assert ColumnMapper(path, mapping="no-such-preset").preset_choice.value == ""


def test_editor_saves_nothing_without_changes(tpl: ProcessTemplate, saved: Path) -> None:
    ed = TemplateEditor(tpl, path=saved)
    ed.save_button.click()
    assert ed.message == "No changes since the last save." and ed.saved_path is None
    assert sorted(p.name for p in saved.parent.iterdir()) == ["process.yaml"]
    ed.milestones.value = "Demo"
    ed.up_button.click()
    ed.undo_button.click()  # back to what was saved: still nothing to save
    ed.save_button.click()
    assert sorted(p.name for p in saved.parent.iterdir()) == ["process.yaml"]


# --- outcome rules, milestones and the settings file --------------------------------------------

STAGES = (
    "Deal,Step,When\n"
    "D1,Qualify,2024-01-02\nD1,Call,2024-01-03\nD1,Proposal,2024-01-10\nD1,Signed,2024-01-20\n"
    "D2,Qualify,2024-01-05\nD2,Gone quiet,2024-01-15\n"
    "D3,Qualify,2024-02-01\nD3,Proposal,2024-02-11\n"
)


def test_mapper_outcome_rules_and_milestones_shape_the_load(tmp_path: Path) -> None:
    p = tmp_path / "stages.csv"
    p.write_text(STAGES)
    m = ColumnMapper(p, settings_path=tmp_path / "salesproc.toml")
    m.won_text.value, m.lost_text.value = "Signed", "Gone quiet"
    m.milestones_text.value = "Qualify, Proposal"
    m.load_button.click()
    assert m.error is None and m.history is not None
    assert m.history.cases.set_index("case_id")["outcome"].to_dict() == {"D1": "won", "D2": "lost", "D3": "open"}
    assert set(m.history.summary().milestones) == {"Qualify", "Proposal"}
    assert m.options.outcome_events == {"won": ["Signed"], "lost": ["Gone quiet"]}


def test_mapper_saves_settings_that_the_command_line_then_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from salesproc.cli import main

    monkeypatch.chdir(tmp_path)
    Path("stages.csv").write_text(STAGES)
    m = ColumnMapper("stages.csv")
    m.won_text.value, m.lost_text.value, m.milestones_text.value = "Signed", "Gone quiet", "Qualify, Proposal"
    m.save_settings_button.click()
    assert "saved salesproc.toml" in m.settings_result.value
    r = CliRunner().invoke(main, ["info", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["outcomes"]["deal"] == {"won": 1, "lost": 1, "open": 1}
    assert set(summary["milestones"]) == {"Qualify", "Proposal"}

    m.won_text.value = "Signed, Won"
    m.save_settings_button.click()  # never over the saved file unless asked
    assert "settings are kept" in m.settings_result.value
    m.overwrite_settings.value = True
    m.save_settings_button.click()
    again = ColumnMapper()  # a new mapper starts from the saved settings
    assert again.path_text.value == "stages.csv" and again.won_text.value == "Signed, Won"
    assert again.mapping == {"case_id": "Deal", "name": "Step", "timestamp": "When"}


def test_an_outcome_value_without_its_outcome_is_named_not_dropped() -> None:
    from salesproc.errors import InputError
    from salesproc.workshop.widgets import _pairs

    assert _pairs("Closed Won=won, Signed = won") == {"Closed Won": "won", "Signed": "won"}
    with pytest.raises(InputError, match="'Closed Lost' is not a pair"):
        _pairs("Closed Won=won, Closed Lost")
