"""Projects say what success means: finished (a finishing event, or a close date) by a due date (a
target_date, or created + sla_days), and the load summary says which rule was used or why every
project is open (issue 14)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import salesproc
from salesproc.cli import main
from salesproc.errors import InvalidValueError, ParameterError
from salesproc.load import LoadOptions, read_settings, write_settings

# four tickets opened on 1 March: T1 resolved after 3 days, T2 after 12, T3 after 20, T4 never
TICKETS = (
    "case_id,name,timestamp\n"
    "T1,Opened,2024-03-01\nT1,Assigned,2024-03-02\nT1,Resolved,2024-03-04\nT1,Reopened,2024-03-05\n"
    "T1,Resolved,2024-03-30\n"
    "T2,Opened,2024-03-01\nT2,Resolved,2024-03-13\n"
    "T3,Opened,2024-03-01\nT3,Assigned,2024-03-10\nT3,Resolved,2024-03-21\n"
    "T4,Opened,2024-03-01\nT4,Assigned,2024-03-25\n"
)


def _load(text: str = TICKETS, **kwargs: object) -> salesproc.History:
    return salesproc.load_history(io.StringIO(text), kind="project", **kwargs)  # type: ignore[arg-type]


def _outcomes(h: salesproc.History) -> dict[str, str]:
    return dict(zip(h.cases["case_id"].astype(str), h.cases["outcome"].astype(str), strict=True))


def test_a_service_level_target_tells_on_time_from_late_by_the_first_finishing_event() -> None:
    h = _load(sla_days=10, finish_events=["Resolved"])
    assert _outcomes(h) == {"T1": "on_time", "T2": "late", "T3": "late", "T4": "open"}
    closed = h.cases.set_index(h.cases["case_id"].astype(str))["closed"]
    assert closed["T1"] == pd.Timestamp("2024-03-04", tz="UTC")  # the first Resolved, not the one after reopening
    assert pd.isna(closed["T4"])
    due = h.cases.set_index(h.cases["case_id"].astype(str))["target_date"]
    assert (due == pd.Timestamp("2024-03-11", tz="UTC")).all()  # created + 10 days
    assert "Resolved" in set(h.events["name"].astype(str))  # finishing events stay events
    assert ("projects: success = finished by created + 10 days (sla_days); finished = the first 'Resolved' "
            "event (finish_events): 1 on_time, 2 late, 1 open") in h.report.notes


def test_an_unfinished_ticket_past_its_due_date_stays_open() -> None:
    h = _load(sla_days=1, finish_events="Resolved")
    assert _outcomes(h)["T4"] == "open"  # due 2 March, its data ends 25 March unresolved


def test_a_due_date_column_wins_over_the_service_level_target() -> None:
    text = "case_id,name,timestamp,target_date\n" + "\n".join(
        row + ("," + ("2024-03-31" if row.startswith("T3") else "") if row else "")
        for row in TICKETS.splitlines()[1:]
    )
    h = _load(text, sla_days=10, finish_events=["Resolved"])
    assert _outcomes(h) == {"T1": "on_time", "T2": "late", "T3": "on_time", "T4": "open"}
    assert any(n.startswith("projects: success = finished by target_date, else by created + 10 days (sla_days)")
               for n in h.report.notes)


def test_finishing_events_with_a_due_date_column_alone() -> None:
    text = "case_id,name,timestamp,target_date\n" + "\n".join(
        f"{row},2024-03-15" for row in TICKETS.splitlines()[1:]
    )
    h = _load(text, finish_events=["Resolved"])
    assert _outcomes(h) == {"T1": "on_time", "T2": "on_time", "T3": "late", "T4": "open"}
    assert any(n.startswith("projects: success = finished by target_date; finished") for n in h.report.notes)


def test_without_a_due_date_or_finishing_events_the_summary_says_why_every_project_is_open() -> None:
    h = _load()
    assert set(_outcomes(h).values()) == {"open"}
    assert (
        "projects: no due date, service-level target, finish events or outcome: every project is open. "
        "Fix: map a due date (-m target_date=<column>) or pass sla_days=, and name the finishing events "
        "with finish_events="
    ) in h.report.notes


def test_finishing_events_that_match_nothing_are_named_in_the_summary() -> None:
    h = _load(sla_days=10, finish_events=["Done"])
    assert set(_outcomes(h).values()) == {"open"}
    assert any("no project has a 'Done' event (finish_events)" in n for n in h.report.notes)


def test_a_due_date_without_finishing_events_says_so() -> None:
    h = _load(sla_days=10)
    assert set(_outcomes(h).values()) == {"open"}
    assert any("no close date and no finish events: every project is open" in n for n in h.report.notes)


def test_finished_tickets_without_any_due_date_are_errors_naming_the_service_level_target() -> None:
    with pytest.raises(InvalidValueError, match=r"sla_days=10"):
        _load(finish_events=["Resolved"])


def test_an_outcome_column_is_the_rule_said() -> None:
    h = _load("case_id,name,timestamp,outcome\nP1,Kick-off,2024-01-02,late\nP2,Kick-off,2024-01-03,on_time\n")
    assert "projects: success = outcome column" in h.report.notes


def test_deals_are_left_alone() -> None:
    h = salesproc.load_history(io.StringIO(TICKETS), sla_days=10, finish_events=["Resolved"])
    assert set(_outcomes(h).values()) == {"open"}
    assert not any(n.startswith("projects:") for n in h.report.notes)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sla_days": 0}, r"The 'sla_days' parameter must be a positive number of days.*Got 0 instead"),
    ({"sla_days": "10"}, r"The 'sla_days' parameter must be a positive number"),
    ({"finish_events": [""]}, r"The 'finish_events' parameter must be event names"),
])
def test_bad_success_options_are_parameter_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        _load(**kwargs)


def test_options_keep_finish_events_as_a_tuple_and_round_trip_through_settings(tmp_path: Path) -> None:
    opts = LoadOptions(kind="project", sla_days=10, finish_events=["Resolved", "Closed"])  # type: ignore[arg-type]
    assert opts.finish_events == ("Resolved", "Closed") and LoadOptions(finish_events="Done").finish_events == ("Done",)  # type: ignore[arg-type]
    assert opts.build_kwargs()["sla_days"] == 10
    assert read_settings(write_settings(tmp_path, opts)).options == opts
    h = salesproc.load_history(io.StringIO(TICKETS), options=opts)
    assert _outcomes(h) == {"T1": "on_time", "T2": "late", "T3": "late", "T4": "open"}


def test_the_command_line_flags(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(TICKETS)
    for flags in (["--finish-events", "Resolved"], ["--finish-events", "Resolved,Closed"],
                  ["--finish-events", "Closed", "--finish-events", "Resolved"]):
        r = CliRunner().invoke(main, ["info", str(path), "--no-settings", "--kind", "project", "--sla-days", "10",
                                      *flags, "--json"])
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert "1 on_time, 2 late, 1 open" in json.dumps(out)
    r = CliRunner().invoke(main, ["info", str(path), "--no-settings", "--kind", "project", "--sla-days", "0"])
    assert r.exit_code != 0 and "--sla-days" in r.output
