"""The command line under adversarial input (issue 17): clean errors, not tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result

from salesproc.cli import main

ACTIVITIES = (
    "case_id,name,timestamp,type,outcome\n"
    "A,Call,2024-01-02,activity,won\n"
    "A,Email,2024-01-04,activity,won\n"
    "B,Call,2024-01-03,activity,lost\n"
    "B,Demo,2024-01-05,activity,lost\n"
    "C,Call,2024-02-01,activity,open\n"
)
UNTYPED = (
    "case_id,name,timestamp,outcome\n"
    "A,Qualify,2024-01-02,won\n"
    "A,Proposal,2024-01-10,won\n"
    "B,Qualify,2024-01-03,lost\n"
    "C,Qualify,2024-02-01,open\n"
)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def clean_error(r: Result, code: int = 2) -> str:
    """The one line on stderr of a command that failed cleanly (no exception escaped click)."""
    assert r.exit_code == code, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    assert r.stdout == ""
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


@pytest.fixture
def activities(tmp_path: Path) -> Path:
    p = tmp_path / "acts.csv"
    p.write_text(ACTIVITIES, encoding="utf-8")
    return p


@pytest.fixture
def untyped(tmp_path: Path) -> Path:
    p = tmp_path / "plain.csv"
    p.write_text(UNTYPED, encoding="utf-8")
    return p


# --- 1. tracebacks instead of errors ---------------------------------------------------------------


def test_derive_on_a_log_of_activities_names_the_events_and_the_fix(activities: Path, tmp_path: Path) -> None:
    err = clean_error(run("derive", str(activities), "-o", str(tmp_path / "t.yaml")))
    assert "acts.csv: no milestone events to derive a process template from" in err
    assert "found 5 events, none of them a milestone: 'Call' (3), 'Demo' (1), 'Email' (1)" in err
    assert "Expected: events marked as milestones" in err
    assert "the file's 'type' column marks every event an activity" in err
    assert "--milestones 'Call|Demo'" in err
    assert "derive_template(" not in err and "load_history(" not in err
    assert not (tmp_path / "t.yaml").exists()


def test_derive_with_a_milestones_rule_that_matches_nothing(untyped: Path, tmp_path: Path) -> None:
    err = clean_error(run("derive", str(untyped), "--milestones", "Nope", "-o", str(tmp_path / "t.yaml")))
    assert "found 4 events, none of them a milestone: 'Qualify' (3), 'Proposal' (1)" in err
    assert "The --milestones rule 'Nope' matches none of the names." in err
    assert "Fix: give a --milestones rule that matches the milestone names, e.g. --milestones 'Qualify|Proposal'" in err


def test_derive_says_when_the_milestones_rule_is_not_used(activities: Path, tmp_path: Path) -> None:
    err = clean_error(run("derive", str(activities), "--milestones", "Call", "-o", str(tmp_path / "t.yaml")))
    assert "(--milestones is not used when the file has one)" in err


def test_derive_on_outcome_events_only(tmp_path: Path) -> None:
    p = tmp_path / "won.csv"
    p.write_text("case_id,name,timestamp\nA,Closed Won,2024-01-02\nB,Closed Lost,2024-01-03\n")
    err = clean_error(run("derive", str(p), "-o", str(tmp_path / "t.yaml")))
    assert "'Closed Lost' (1), 'Closed Won' (1) decide outcomes and are never milestones" in err
    assert "it holds outcome events only" in err


def test_derive_on_deals_and_projects_together_is_a_clean_error(tmp_path: Path) -> None:
    p = tmp_path / "mixed.csv"
    p.write_text("case_id,name,timestamp,kind,outcome\nA,Qualify,2024-01-02,deal,won\nB,Kickoff,2024-01-03,project,on_time\n")
    err = clean_error(run("derive", str(p), "-o", str(tmp_path / "t.yaml")))
    assert "mixed.csv: the 'history' parameter of derive_template must hold one kind of case" in err
    assert "(deal 1, project 1)" in err and "split the file by its 'kind' column" in err


def test_the_probe_shows_no_traceback_in_a_real_process(activities: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SALESPROC_TRACEBACK"}
    done = subprocess.run(
        [sys.executable, "-m", "salesproc", "derive", str(activities), "-o", str(tmp_path / "t.yaml")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ") and done.stdout == ""


@pytest.mark.parametrize(
    "command",
    [
        ["info", "{log}"],
        ["derive", "{log}", "-o", "{tmp}/t.yaml"],
        ["review", "-t", "{tmp}/none.yaml", "--history", "{log}"],
        ["plan", "-t", "{tmp}/none.yaml", "--target-date", "2024-06-30", "--as-of", "2024-01-01"],
        ["diff", "{tmp}/none.yaml", "{tmp}/none.yaml"],
    ],
)
def test_every_command_shows_a_salesproc_error_as_one_line(command: list[str], untyped: Path, tmp_path: Path) -> None:
    from salesproc.errors import InputError

    args = [a.format(log=untyped, tmp=tmp_path) for a in command]
    with mock.patch("salesproc.cli._load", side_effect=InputError("x.csv, row 2: found 'a', expected 'b'. Fix: c.")), \
            mock.patch("salesproc.template._template.load_template", side_effect=InputError("t.yaml: bad. Fix: c.")):
        err = clean_error(run(*args))
    assert ("x.csv, row 2" in err) or ("t.yaml: bad" in err)


def test_an_unexpected_library_error_is_one_line_with_exit_code_1(untyped: Path) -> None:
    with mock.patch("salesproc.cli._load", side_effect=KeyError("Stage")):
        err = clean_error(run("info", str(untyped)), code=1)
    assert "salesproc info stopped on an unexpected KeyError: 'Stage'" in err
    assert "SALESPROC_TRACEBACK=1" in err


def test_salesproc_traceback_shows_the_exception(untyped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPROC_TRACEBACK", "1")
    with mock.patch("salesproc.cli._load", side_effect=KeyError("Stage")):
        r = run("info", str(untyped))
    assert isinstance(r.exception, KeyError)


# --- 2. a mapping typo loaded every deal as open ---------------------------------------------------

RESULT = UNTYPED.replace("outcome", "Result")


@pytest.fixture
def result_column(tmp_path: Path) -> Path:
    p = tmp_path / "result.csv"
    p.write_text(RESULT, encoding="utf-8")
    return p


@pytest.mark.parametrize("mapping", [["outcom=Result"], ['{"outcom": "Result"}'], ["case_id=case_id", "outcom=Result"]])
def test_a_misspelt_canonical_name_is_refused_on_the_command_line(mapping: list[str], result_column: Path) -> None:
    args = [a for m in mapping for a in ("-m", m)]
    err = clean_error(run("info", str(result_column), *args))
    assert "--mapping has an unknown canonical name: 'outcom' (for the column 'Result'; did you mean 'outcome'?)" in err
    assert "Expected one of the names: case_id, name, type, timestamp, owner, role, kind, outcome, created," in err
    assert "Fix: use the valid names, e.g. --mapping" in err and "outcome=Result" in err


def test_the_api_refuses_the_same_typo_with_the_same_words(result_column: Path) -> None:
    from salesproc import load_history
    from salesproc.errors import ParameterError

    with pytest.raises(ParameterError, match=r"has an unknown canonical name: 'outcom' \(for the column 'Result'; "
                                             r"did you mean 'outcome'\?\)") as info:
        load_history(result_column, mapping={"outcom": "Result"})
    assert "Fix: use the valid names, e.g. load_history(..., mapping={'outcome': 'Result'})." in str(info.value)
    cli = clean_error(run("info", str(result_column), "-m", "outcom=Result"))
    assert str(info.value).split("has an unknown", 1)[1] in cli.replace("--mapping outcome=Result", "load_history(..., "
                                                                         "mapping={'outcome': 'Result'})")


def test_the_corrected_mapping_loads_the_outcomes(result_column: Path) -> None:
    r = run("info", str(result_column), "-m", "outcome=Result")
    assert r.exit_code == 0, r.output
    assert "deals: 3 (won 1, lost 1, open 1)" in r.stdout


def test_a_preset_with_extra_keys_is_checked_against_its_own_names(tmp_path: Path) -> None:
    from salesproc import load_history
    from salesproc.errors import ParameterError

    src = tmp_path / "crm.csv"
    src.write_text("Opp,Stage,Engaged,Closed\nO1,Won,2024-01-02,2024-02-01\nO2,Engaging,2024-01-05,\n")
    ok = run("info", str(src), "-m", "preset=crm-snapshot", "-m", "case_id=Opp", "-m", "stage=Stage",
             "-m", "created=Engaged", "-m", "closed=Closed")
    assert ok.exit_code == 0, ok.output
    assert "deals: 2 (won 1, lost 0, open 1)" in ok.stdout
    err = clean_error(run("info", str(src), "-m", '{"preset": "crm-snapshot", "case_id": "Opp", "stag": "Stage"}'))
    assert "'stag' (for the column 'Stage'; did you mean 'stage'?)" in err
    assert "Expected one of the names of the preset 'crm-snapshot': case_id, stage, created, closed, amount," in err
    assert "--mapping preset=crm-snapshot --mapping case_id=Opp --mapping stage=Stage" in err
    with pytest.raises(ParameterError, match="'name' \\(for the column 'Stage'\\)"):
        load_history(src, mapping={"preset": "crm-snapshot", "case_id": "Opp", "name": "Stage"})


def test_a_preset_key_without_its_preset_says_which_presets_read_it(result_column: Path) -> None:
    err = clean_error(run("info", str(result_column), "-m", "stage=name"))
    assert "'stage' (for the column 'name'; in an event log the step is 'name'; 'stage' is read by the presets " \
           "crm-snapshot, salesforce, hubspot: add 'preset' to the mapping to use one)" in err
    assert "Fix: use one of the valid names as the key, or leave the column out" in err


def test_status_is_pointed_to_outcome(result_column: Path) -> None:
    err = clean_error(run("info", str(result_column), "-m", "status=Result"))
    assert "the status is worked out from the outcome: map your column to 'outcome'" in err
