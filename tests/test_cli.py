"""The command line: `salesproc info`, `salesproc demo`, the shared loading options and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import salesproc
from salesproc.cli import LoadOptions, history_options, main
from salesproc.load import load_history

LOG = (
    "case_id,name,timestamp,outcome\n"
    "A,Qualify,2024-01-02T09:00:00,won\n"
    "A,Call,2024-01-04T10:00:00,won\n"
    "A,Proposal,2024-01-10T09:00:00,won\n"
    "B,Qualify,2024-01-03T09:00:00,lost\n"
    "B,Call,someday,lost\n"
    "C,Qualify,2024-02-01T09:00:00,open\n"
)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "log.csv"
    p.write_text(LOG, encoding="utf-8")
    return p


def test_info_prints_a_readable_summary(log: Path) -> None:
    r = run("info", str(log), "--errors", "skip", "--milestones", "Qualify|Proposal")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert f"History from {log}" in out
    assert "cases:  3   events: 5" in out
    assert "deals: 3 (won 1, lost 1, open 1)" in out
    assert "dates:  2024-01-02T09:00:00+00:00 .. 2024-02-01T09:00:00+00:00 (UTC)" in out
    assert "milestones (2):" in out and "        3  Qualify" in out and "        1  Proposal" in out
    assert "activities (1):" in out and "        1  Call" in out
    assert "rows read 6 = loaded 5 + skipped 1" in out
    assert "skipped 1: unparseable or missing timestamp" in out


def test_info_json_is_parseable_and_complete(log: Path) -> None:
    r = run("info", str(log), "--errors", "skip", "--milestones", "Qualify|Proposal", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert {"cases", "events", "outcomes", "skipped", "date_range", "milestones", "activities"} <= set(data)
    assert data["cases"] == 3 and data["events"] == 5
    assert data["outcomes"] == {"deal": {"won": 1, "lost": 1, "open": 1}}
    assert data["skipped"] == {"unparseable or missing timestamp": 1}
    assert data["date_range"] == {
        "first_event": "2024-01-02T09:00:00+00:00",
        "last_event": "2024-02-01T09:00:00+00:00",
    }
    assert data["milestones"] == {"Qualify": 3, "Proposal": 1}
    assert data["activities"] == {"Call": 1}
    assert data["rows_read"] == 6 and data["rows_loaded"] == 5


def test_info_strict_error_is_one_clean_line_with_exit_code_2(log: Path) -> None:
    r = run("info", str(log))
    assert r.exit_code == 2
    assert r.stdout == ""
    err = r.stderr
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in r.output
    for piece in ("log.csv", "row 6", "column 'timestamp'", "found 'someday'", "--errors skip", "--dayfirst"):
        assert piece in err


def test_missing_file_exits_2(tmp_path: Path) -> None:
    r = run("info", str(tmp_path / "nope.csv"))
    assert r.exit_code == 2
    assert "nope.csv: no such file" in r.stderr


def test_missing_column_error_suggests_mapping_options(tmp_path: Path) -> None:
    p = tmp_path / "crm.csv"
    p.write_text("Deal ID,Stage,Date\nD1,Qualify,2024-01-02\n", encoding="utf-8")
    r = run("info", str(p))
    assert r.exit_code == 2
    assert "Columns present: 'Deal ID', 'Stage', 'Date'" in r.stderr
    assert "--mapping case_id='Deal ID' --mapping name=Stage --mapping timestamp=Date" in r.stderr
    # ...and that suggestion works as given
    ok = run("info", str(p), "--mapping", "case_id=Deal ID", "--mapping", "name=Stage", "--mapping", "timestamp=Date")
    assert ok.exit_code == 0, ok.output
    assert "cases:  1   events: 1" in ok.stdout


@pytest.mark.parametrize(
    "mapping",
    [
        ['{"case_id": "Deal ID", "name": "Stage", "timestamp": "Date"}'],
        ["case_id=Deal ID", "name=Stage", "timestamp=Date"],
    ],
)
def test_mapping_as_json_or_pairs(tmp_path: Path, mapping: list[str]) -> None:
    p = tmp_path / "crm.csv"
    p.write_text("Deal ID,Stage,Date\nD1,Qualify,2024-01-02\nD1,Offer,2024-01-05\n", encoding="utf-8")
    args = ["info", str(p), "--json"]
    for m in mapping:
        args += ["--mapping", m]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["milestones"] == {"Qualify": 1, "Offer": 1}


def test_mapping_as_a_preset_name(tmp_path: Path) -> None:
    p = tmp_path / "xes.csv"
    p.write_text(
        "case:concept:name,concept:name,time:timestamp,org:resource\n"
        "c1,Register,2024-01-02T09:00:00+01:00,ann\nc1,Decide,2024-01-03T09:00:00+01:00,bob\n",
        encoding="utf-8",
    )
    r = run("info", str(p), "--mapping", "xes-csv", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert (data["cases"], data["events"]) == (1, 2)
    assert data["date_range"]["first_event"] == "2024-01-02T08:00:00+00:00"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (["no-such-preset"], "'no-such-preset' is not a preset. Presets:"),
        (['{"case_id": '], "not valid JSON"),
        (['{"case_id": 3}'], "must be an object of column names"),
        (["case_id=Deal", "name"], "'name' is not canonical=column"),
    ],
)
def test_bad_mapping_option_is_a_usage_error(log: Path, mapping: list[str], message: str) -> None:
    args = ["info", str(log)]
    for m in mapping:
        args += ["--mapping", m]
    r = run(*args)
    assert r.exit_code == 2
    assert "Invalid value for '--mapping'" in r.stderr and message in r.stderr
    assert "Traceback" not in r.output


def test_outcome_events_kind_and_tz(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text(
        "case_id,name,timestamp\n"
        "P1,Kickoff,2024-01-15 14:00:00\nP1,Accepted,2024-03-01 10:00:00\n"
        "P2,Kickoff,2024-07-15 14:00:00\nP2,Cancelled,2024-08-01 10:00:00\n"
        "P3,Kickoff,2024-09-01 10:00:00\n",
        encoding="utf-8",
    )
    r = run(
        "info", str(p), "--kind", "project", "--tz", "Europe/Amsterdam", "--json",
        "--outcome-events", '{"on_time": ["Accepted"], "failed": "Cancelled"}',
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["outcomes"] == {"project": {"on_time": 1, "late": 0, "failed": 1, "open": 1}}
    assert data["events"] == 3  # the terminal events became outcomes
    assert data["date_range"]["first_event"] == "2024-01-15T13:00:00+00:00"  # 14:00 CET


def test_outcome_values_and_dayfirst_and_decimal(tmp_path: Path) -> None:
    p = tmp_path / "de.csv"
    p.write_text(
        "case_id;name;timestamp;outcome;amount\nA;Start;31.12.2023;Gewonnen;1.234,50\nB;Start;02.01.2024;Verloren;2\n",
        encoding="utf-8",
    )
    failed = run("info", str(p))
    assert failed.exit_code == 2 and "--dayfirst" in failed.stderr
    r = run(
        "info", str(p), "--dayfirst", "--json",
        "--outcome-values", '{"Gewonnen": "won", "Verloren": "lost"}',
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["outcomes"] == {"deal": {"won": 1, "lost": 1, "open": 0}}
    assert data["date_range"]["first_event"] == "2023-12-31T00:00:00+00:00"


def test_encoding_option(tmp_path: Path) -> None:
    p = tmp_path / "win.csv"
    p.write_bytes("case_id,name,timestamp\nA,Café,2024-01-02\n".encode("cp1252"))
    bad = run("info", str(p))
    assert bad.exit_code == 2 and "--encoding cp1252" in bad.stderr
    r = run("info", str(p), "--encoding", "cp1252", "--json")
    assert json.loads(r.stdout)["milestones"] == {"Café": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tz", "Mars/Olympus"], "'Mars/Olympus' is not a time zone"),
        (["--milestones", "(unclosed"], "is not a regular expression"),
        (["--outcome-events", "[1]"], "must be a JSON object"),
        (["--kind", "lead"], "'lead' is not one of 'deal', 'project'"),
        (["--errors", "ignore"], "'ignore' is not one of 'raise', 'skip'"),
    ],
)
def test_bad_options_are_usage_errors(log: Path, args: list[str], message: str) -> None:
    r = run("info", str(log), *args)
    assert r.exit_code == 2
    assert message in r.stderr


def test_history_options_serve_other_commands(log: Path) -> None:
    # how derive/plan/review plug in: the same options arrive as one LoadOptions
    @click.group()
    def app() -> None:
        pass

    seen: dict[str, LoadOptions] = {}

    @app.command()
    @click.argument("path")
    @history_options
    def count(path: str, load: LoadOptions) -> None:
        seen["load"] = load
        click.echo(len(load_history(path, options=load).events))

    r = CliRunner().invoke(app, ["count", str(log), "--errors", "skip", "-m", "case_id=case_id", "--tz", "UTC"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "5"
    opts = seen["load"]
    assert (opts.errors, opts.kind, opts.tz, opts.mapping) == ("skip", "deal", "UTC", {"case_id": "case_id"})


def test_help_lists_the_commands() -> None:
    r = run("--help")
    assert r.exit_code == 0
    assert "info" in r.stdout and "demo" in r.stdout


def test_version() -> None:
    r = run("--version")
    assert r.exit_code == 0 and salesproc.__version__ in r.stdout


def test_info_on_a_saved_history_folder(log: Path, tmp_path: Path) -> None:
    h = salesproc.load_history(log, errors="skip")
    folder = h.to_parquet(tmp_path / "saved")
    r = run("info", str(folder), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(json.dumps(h.summary().to_dict()))


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.shared
def test_info_on_the_maven_crm_snapshot(shared_data: Path) -> None:
    r = run("info", str(shared_data / "maven-crm" / "sales_pipeline.csv"), "--mapping", "crm-snapshot", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["cases"] == 8800
    assert data["outcomes"] == {"deal": {"won": 4238, "lost": 2473, "open": 2089}}


@pytest.mark.shared
def test_info_on_the_receipt_log(shared_data: Path) -> None:
    r = run("info", str(shared_data / "receipt" / "receipt.csv"))
    assert r.exit_code == 0, r.output
    assert "cases:  1,434   events: 8,577" in r.stdout
    data = json.loads(run("info", str(shared_data / "receipt" / "receipt.csv"), "--json").stdout)
    assert (data["cases"], data["events"]) == (1434, 8577)
    assert data["rows_read"] == data["rows_loaded"] == 8577


@pytest.mark.shared
def test_info_on_the_running_example_xes(shared_data: Path) -> None:
    r = run("info", str(shared_data / "running-example" / "running-example.xes"), "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert (data["cases"], data["events"]) == (6, 42)


# --- demo (last: it needs the shipped sample data) ------------------------------------------------


def test_demo_prints_the_sample_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the demo renders its reports into ./reports (tests/test_cli_render.py)
    expected = salesproc.load_sample_deals().summary()
    r = run("demo", "--no-progress", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(str(expected) + "\n")
    data = json.loads(run("demo", "--json", "--workers", "1").stdout)
    assert data["cases"] == expected.cases > 0
    assert data["outcomes"] == {k: dict(v) for k, v in expected.outcomes.items()}
