"""The workshop folder: history, goal and template versions shared by the notebooks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import salesproc
from salesproc.datasets import load_sample_deals
from salesproc.edit import rename_milestone
from salesproc.errors import InputError
from salesproc.plan import Goal
from salesproc.template import Duration, Milestone, ProcessTemplate, load_template, save_template
from salesproc.workshop import open_workshop, suggest_target_date


def test_sample_history_until_the_team_loads_its_own(tmp_path: Path) -> None:
    ws = open_workshop(tmp_path / "ws")
    assert ws.history().report.source == "salesproc sample deals"
    assert not ws.history_dir.exists()  # reading the default writes nothing
    own = tmp_path / "export.csv"
    own.write_text("Deal,Step,When,Result\nA,Qualify,2024-01-02,won\nA,Proposal,2024-01-20,won\n"
                   "B,Qualify,2024-02-05,open\n")
    h = ws.use_history(own, mapping={"case_id": "Deal", "name": "Step", "timestamp": "When", "outcome": "Result"})
    back = ws.history()
    assert back.cases["case_id"].tolist() == ["A", "B"] == h.cases["case_id"].tolist()
    assert back.report.source == str(own)
    assert ws.as_of() == pd.Timestamp("2024-02-05", tz="UTC")
    assert ws.as_of("2024-03-01") == pd.Timestamp("2024-03-01", tz="UTC")
    sample = ws.use_history()
    assert ws.history().report.source == sample.report.source == "salesproc sample deals"
    assert len(ws.history()) == len(sample)


def test_template_is_derived_once_then_the_latest_version_is_used(tmp_path: Path) -> None:
    ws = open_workshop(tmp_path)
    t1 = ws.template()
    assert [p.name for p in ws.template_versions()] == ["process.yaml"]
    assert t1.version == 1 and t1.provenance.source == "salesproc sample deals"
    assert ws.template() == load_template(ws.template_path)  # no second derivation, no new file
    edited = rename_milestone(t1, t1.milestone_names[0], "First contact").model_copy(update={"version": 2})
    save_template(edited, ws.template_path)
    for n in (3, 10):
        save_template(edited.model_copy(update={"version": n}), ws.template_path)
    assert [p.name for p in ws.template_versions()] == [
        "process.yaml", "process.v2.yaml", "process.v3.yaml", "process.v4.yaml"]
    latest = ws.template()
    assert latest.version == 10 and latest.milestone_names[0] == "First contact"
    assert ws.latest_template_path() == tmp_path / "process.v4.yaml"


def test_other_data_gets_its_own_template(tmp_path: Path) -> None:
    ws = open_workshop(tmp_path)
    ws.template()
    h = load_sample_deals()
    h2 = h.select((h.cases["status"] != "open").to_numpy())
    from salesproc.history import History, LoadReport

    other = History(h2.cases, h2.events, LoadReport(source="team export.csv", rows_read=1, rows_loaded=1))
    ws.save_history(other)
    t = ws.template()
    assert t.provenance.source == "team export.csv" and t.version == 2
    assert [p.name for p in ws.template_versions()] == ["process.yaml", "process.v2.yaml"]


def test_goal_round_trip(tmp_path: Path) -> None:
    ws = open_workshop(tmp_path)
    assert ws.goal() is None
    g = Goal("2024-05-31", success="Contract signed", measure="PO received", seller_owner="Dana")
    ws.save_goal(g)
    assert ws.goal() == g
    assert "target_date: '2024-05-31'" in ws.goal_path.read_text()
    ws.save_goal(Goal("2024-06-30"))
    assert ws.goal() == Goal("2024-06-30")


def test_suggest_target_date() -> None:
    t = ProcessTemplate(cycle_time=Duration(p50=30.0, p80=45.2))
    assert suggest_target_date(t, "2024-01-01") == pd.Timestamp("2024-02-16", tz="UTC")
    assert suggest_target_date(t, "2024-01-01", level="p50") == pd.Timestamp("2024-01-31", tz="UTC")
    no_cycle = ProcessTemplate(milestones=[Milestone(name="A", order=1, p80_days=3.0),
                                           Milestone(name="B", order=2, p80_days=4.5)])
    assert suggest_target_date(no_cycle, "2024-01-01") == pd.Timestamp("2024-01-09", tz="UTC")  # 7.5 days, up


def test_backtest_versions_refits_at_the_cutoff_and_keeps_edits() -> None:
    from salesproc.backtest import backtest
    from salesproc.derive import derive_template
    from salesproc.edit import reject_activity
    from salesproc.workshop import backtest_versions

    h = load_sample_deals()
    at_cut = derive_template(h, as_of="2023-10-01")
    assert at_cut.critical_activities  # the data flag something at the cutoff
    gone = at_cut.critical_activities[0].name
    full = derive_template(h)
    edited = reject_activity(full, gone)
    table = backtest_versions(h, {"data": full, "team": edited}, cutoff="2023-10-01")
    assert table["version"].tolist() == ["data", "team"]
    assert table["critical_activities"].tolist() == [len(at_cut.critical_activities),
                                                     len(at_cut.critical_activities) - 1]
    # the 'data' row is exactly the backtest of the template derived at the cutoff
    bt = backtest(h, cutoff="2023-10-01", template=at_cut, baseline=False)
    row = table.iloc[0]
    assert (row["deals"], row["auc"], row["brier"]) == (bt.metrics.n, bt.auc, bt.brier)
    # without refitting, the templates are scored as given
    from salesproc.review.backtest import LeakageWarning

    with pytest.warns(LeakageWarning, match="after the cutoff"):  # not refitted: it saw the future, and says so
        raw = backtest_versions(h, {"data": full}, cutoff="2023-10-01", refit=False)
    assert raw["critical_activities"].tolist() == [len(full.critical_activities)]


def test_current_goal_prefers_the_parameter_then_the_saved_goal(tmp_path: Path) -> None:
    ws = open_workshop(tmp_path)
    t = ProcessTemplate(cycle_time=Duration(p50=30.0, p80=45.0))
    assert ws.current_goal(t, "2024-01-01") == Goal("2024-02-15")
    assert ws.current_goal(t, "2024-01-01", "2024-03-01") == Goal("2024-03-01")
    ws.save_goal(Goal("2024-05-31", success="Contract signed", buyer_owner="Sam"))
    assert ws.current_goal(t, "2024-01-01") == ws.goal()
    moved = ws.current_goal(t, "2024-01-01", "2024-06-30")
    assert (moved.target_date, moved.success, moved.buyer_owner) == (
        pd.Timestamp("2024-06-30", tz="UTC"), "Contract signed", "Sam")


def test_report_inputs_from_parameters(tmp_path: Path) -> None:
    from salesproc.datasets import sample_path
    from salesproc.workshop import report_inputs

    h, t, as_of = report_inputs(str(sample_path("deals")), as_of="2023-11-30")
    assert h.report.source == str(sample_path("deals")) and len(h) == 600
    assert as_of == pd.Timestamp("2023-11-30", tz="UTC")
    assert t.provenance.as_of == "2023-11-30T00:00:00+00:00"
    saved = save_template(t.model_copy(update={"name": "team"}), tmp_path / "team.yaml")
    _, t2, end = report_inputs(template=saved)
    assert t2.name == "team"
    assert end == max(load_sample_deals().events["timestamp"].max(), load_sample_deals().cases["closed"].max())


def test_a_history_save_killed_mid_swap_is_restored_not_replaced_by_the_sample(tmp_path: Path) -> None:
    ws = open_workshop(tmp_path / "ws")
    own = tmp_path / "export.csv"
    own.write_text("Deal,Step,When,Result\nA,Qualify,2024-01-02,won\nB,Qualify,2024-02-05,open\n")
    ws.use_history(own, mapping={"case_id": "Deal", "name": "Step", "timestamp": "When", "outcome": "Result"})
    # History.to_parquet swaps folders in two renames; a kill between them leaves this on disk
    ws.history_dir.rename(ws.folder / ".history.old")
    with pytest.warns(RuntimeWarning, match=r"ws/history was missing and .*\.history\.old held its previous "
                      r"copy.*Restored the previous copy to .*ws/history"):
        h = ws.history()
    assert h.report.source == str(own) and h.cases["case_id"].tolist() == ["A", "B"]
    assert ws.history_dir.is_dir() and not (ws.folder / ".history.old").exists()


def test_an_incomplete_history_folder_is_an_error_not_the_sample(tmp_path: Path) -> None:
    ws = open_workshop(tmp_path)
    ws.history_dir.mkdir()
    (ws.history_dir / "cases.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=r"history: no events\.parquet\. .*Fix: load the team's data again "
                       r"\(Workshop\.use_history\(\.\.\.\)\), or remove .*history to work on the sample deals"):
        ws.history()


def test_report_inputs_read_the_settings_and_name_the_fix_for_all_open_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salesproc.load import LoadOptions, write_settings
    from salesproc.workshop import report_inputs

    monkeypatch.chdir(tmp_path)
    h, _ = salesproc.synthetic_history(400, seed=5)
    h.events[["case_id", "name", "timestamp"]].rename(columns={"name": "Step"}).to_csv("open.csv", index=False)
    with pytest.raises(InputError, match=r"every one of its 400 cases is open.*Fix: name the events.*-p settings"):
        report_inputs("open.csv", mapping={"name": "Step"}, settings=False)
    ev = h.events[["case_id", "name", "timestamp"]]
    ends = h.cases.dropna(subset=["closed"])[["case_id", "closed", "outcome"]]
    ends = ends[ends["outcome"].isin(["won", "lost"])]
    rows = [ev, ends.rename(columns={"closed": "timestamp"}).assign(name=ends["outcome"].map({"won": "Signed", "lost": "Lost it"}))]
    pd.concat(rows)[["case_id", "name", "timestamp"]].rename(columns={"name": "Step"}).to_csv("deals.csv", index=False)
    write_settings(".", LoadOptions(mapping={"name": "Step"}, outcome_events={"won": ["Signed"], "lost": ["Lost it"]},
                                    milestones=["Qualify", "Discovery", "Solution", "Proposal", "Negotiation"]),
                   source="deals.csv")
    inputs = report_inputs()
    assert inputs.history.report.source.endswith("deals.csv")
    assert (inputs.history.cases["outcome"] == "won").any()
    assert inputs.template.provenance.settings["outcome_events"] == {"won": ["Signed"], "lost": ["Lost it"]}


def test_the_workshop_loads_the_file_its_settings_name(tmp_path: Path) -> None:
    from salesproc.load import LoadOptions

    ws = open_workshop(tmp_path / "ws")
    (tmp_path / "crm.csv").write_text("Deal,Stage,Date\nA,Qualify,2024-01-02\nA,Signed,2024-01-09\nB,Qualify,2024-01-03\n")
    ws.save_settings(LoadOptions(mapping={"case_id": "Deal", "name": "Stage", "timestamp": "Date"},
                                 outcome_events={"won": ["Signed"]}), source=tmp_path / "crm.csv")
    h = ws.use_history()
    assert h.cases.set_index("case_id")["outcome"].to_dict() == {"A": "won", "B": "open"}
    assert ws.history().report.source == h.report.source
    assert ws.settings() is not None and ws.settings().source == tmp_path / "crm.csv"  # type: ignore[union-attr]
