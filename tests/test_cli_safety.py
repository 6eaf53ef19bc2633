"""The command line under adversarial input (issue 17): clean errors, not tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
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
    # (read as the deals' outcomes when the file is loaded: no event is left)
    assert "found 0 events, none of them a milestone" in err
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


# --- 3. terminal escape sequences from the data ----------------------------------------------------

EVIL_ID = "D\x1b[31m1\u202e"
EVIL_STAGE = "Qual\x1b[31mify\u202e"
RAW = ("\x1b", "\u202e", "\x9b")


def _evil_log(path: Path) -> Path:
    """30 deals (6 open) whose first id and first stage carry ESC and a right-to-left override."""
    rows = ["case_id,name,timestamp,type,outcome,amount"]
    for i in range(30):
        cid = EVIL_ID if i == 0 else f"D{i:02d}"
        out = "open" if i < 6 else ("won" if i % 2 else "lost")
        rows.append(f"{cid},{EVIL_STAGE},2024-01-{1 + i:02d},milestone,{out},1000")
        rows.append(f"{cid},Call\x9b,2024-02-{i % 28 + 1:02d},activity,{out},1000")
        if out != "open" or i % 2:
            rows.append(f"{cid},Proposal,2024-03-{i % 28 + 1:02d},milestone,{out},1000")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def colour_run(*args: str) -> Result:
    """Like a terminal: click would pass escape sequences through rather than strip them."""
    return CliRunner().invoke(main, list(args), color=True)


def no_raw_controls(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} printed raw"


def test_shown_escapes_c0_c1_and_bidi_and_keeps_the_rest() -> None:
    from salesproc.cli import shown

    assert shown(EVIL_ID) == "D\\x1b[31m1\\u202e"
    assert shown("a\x00b\x7fc\x85d\u2066e\u200ff\udcffg\r\n\t") == "a\\x00b\\x7fc\\x85d\\u2066e\\u200ff\\udcffg\\r\\n\\t"
    assert shown("Müller – 東京 ✓") == "Müller – 東京 ✓"


def test_info_prints_names_escaped(tmp_path: Path) -> None:
    r = colour_run("info", str(_evil_log(tmp_path / "evil.csv")))
    assert r.exit_code == 0, r.output
    no_raw_controls(r.output)
    assert "Qual\\x1b[31mify\\u202e" in r.stdout and "Call\\x9b" in r.stdout


def test_info_json_escapes_them_and_reads_back_the_same(tmp_path: Path) -> None:
    import json

    r = colour_run("info", str(_evil_log(tmp_path / "evil.csv")), "--json")
    assert r.exit_code == 0, r.output
    no_raw_controls(r.output)
    data = json.loads(r.stdout)
    assert data["milestones"][EVIL_STAGE] == 30 and data["activities"]["Call\x9b"] == 30


def test_derive_and_review_print_ids_and_stages_escaped(tmp_path: Path) -> None:
    log = _evil_log(tmp_path / "evil.csv")
    d = colour_run("derive", str(log), "-o", str(tmp_path / "t.yaml"))
    assert d.exit_code == 0, d.output
    no_raw_controls(d.output)
    assert "1. Qual\\x1b[31mify\\u202e  (p50" in d.stdout and "reached Qual\\x1b[31mify\\u202e" in d.stdout
    r = colour_run("review", "-t", str(tmp_path / "t.yaml"), "--history", str(log))
    assert r.exit_code == 0, r.output
    no_raw_controls(r.output)
    row = next(line for line in r.stdout.splitlines() if line.startswith("   1  "))
    assert row.startswith("   1  D\\x1b[31m1   Qual\\x1b[31mif ")  # cut to the column, never inside an escape


def test_errors_print_file_names_and_values_escaped(tmp_path: Path) -> None:
    missing = tmp_path / "deals\x1b[2J\u202e.csv"
    err = clean_error(colour_run("info", str(missing)))
    no_raw_controls(err)
    assert "deals\\x1b[2J\\u202e.csv" in err
    bad = tmp_path / "bad.csv"
    bad.write_text(f"case_id,name,timestamp\n{EVIL_ID},Qualify,not a date\n", encoding="utf-8")
    no_raw_controls(clean_error(colour_run("info", str(bad))))


def test_usage_errors_quote_what_was_typed_escaped(untyped: Path) -> None:
    r = colour_run("info", str(untyped), "extra\x1b[31m")
    assert r.exit_code == 2
    no_raw_controls(r.output)
    assert "extra\\x1b[31m" in r.stderr


def test_demo_passes_its_lines_through_the_same_helper(tmp_path: Path) -> None:
    def demo_that_prints_then_stops(*args: object, echo: Callable[[str], None], **kwargs: object) -> None:
        echo("step \x1b[1m")
        raise KeyError("stop")

    with mock.patch("salesproc._demo.run_demo", side_effect=demo_that_prints_then_stops):
        r = colour_run("demo", "-o", str(tmp_path), "--no-progress")
    no_raw_controls(r.output)
    assert "step \\x1b[1m" in r.stdout
