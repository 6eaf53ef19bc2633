"""The team's settings file (salesproc.toml): written once, then every command reads the export the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

import salesproc
from salesproc.cli import main
from salesproc.errors import OverwriteError, SettingsError
from salesproc.load import LoadOptions, find_settings, read_settings, write_settings

MILESTONES = "Qualify|Discovery|Solution|Proposal|Negotiation"
OPTIONS = ["-m", "case_id=Deal ID", "-m", "name=Step", "-m", "timestamp=When", "--milestones", MILESTONES,
           "--outcome-events", '{"won": ["Signed"], "lost": ["Walked away"]}', "--tz", "Asia/Tokyo"]


def _team_export(folder: Path, n: int = 900) -> Path:
    """Deals in a team's own words: its column names, no event types, its own outcome events."""
    h, _ = salesproc.synthetic_history(n, seed=21)
    ev = h.events[["case_id", "name", "timestamp"]]
    closed = h.cases.dropna(subset=["closed"])
    closed = closed[closed["outcome"].isin(["won", "lost"])]
    ends = pd.DataFrame({"case_id": closed["case_id"], "timestamp": closed["closed"],
                         "name": closed["outcome"].map({"won": "Signed", "lost": "Walked away"})})
    out = pd.concat([ev, ends]).sort_values(["case_id", "timestamp"])
    out["timestamp"] = pd.to_datetime(out["timestamp"]).dt.tz_convert("Asia/Tokyo").dt.strftime("%Y-%m-%d %H:%M:%S")
    path = folder / "export.csv"
    out.rename(columns={"case_id": "Deal ID", "name": "Step", "timestamp": "When"}).to_csv(path, index=False)
    return path


def _run(*args: str) -> Result:
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 0, r.output
    return r


# --- the module ---------------------------------------------------------------------------------------


def test_settings_round_trip_every_option(tmp_path: Path) -> None:
    opts = LoadOptions(mapping={"case_id": "Deal ID"}, kind="project", errors="skip", tz="Europe/Berlin",
                       outcome_values={"Gewonnen": "won"}, outcome_events={"lost": ["Verloren"]},
                       milestones=["Kick-off", "Go-live"], dayfirst=True, date_format="%d.%m.%Y",
                       encoding="cp1252", delimiter=";", decimal=",", sheet="Deals", na_values=("n/a", "-"))
    path = write_settings(tmp_path, opts, source=tmp_path / "data" / "export.csv")
    assert 'source = "data/export.csv"' in path.read_text()
    s = read_settings(path)
    assert s.options == opts and s.source == tmp_path / "data" / "export.csv" and s.path == path


def test_writing_never_replaces_the_teams_settings_unless_asked(tmp_path: Path) -> None:
    write_settings(tmp_path, LoadOptions(tz="Europe/Berlin"))
    with pytest.raises(OverwriteError, match=r"settings are kept\. Fix: pass overwrite=True"):
        write_settings(tmp_path, LoadOptions())
    write_settings(tmp_path, LoadOptions(tz="Asia/Tokyo"), overwrite=True)
    assert read_settings(tmp_path).options.tz == "Asia/Tokyo"


def test_find_settings_looks_here_then_beside_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here, data = tmp_path / "here", tmp_path / "data"
    here.mkdir()
    data.mkdir()
    monkeypatch.chdir(here)
    assert find_settings() is None
    write_settings(data, LoadOptions())
    assert find_settings(data_file=data / "x.csv") == data / "salesproc.toml"
    write_settings(here, LoadOptions())
    assert find_settings(data_file=data / "x.csv") == Path("salesproc.toml")


@pytest.mark.parametrize(("text", "message"), [
    ('timezone = "UTC"\n', r"unknown key 'timezone'.*Fix: did you mean 'tz'\?"),
    ('mapping = "no-such-preset"\n', r"'mapping' holds 'no-such-preset'. Expected: a preset"),
    ('[mapping]\ncase_idd = "Deal"\n', r"'mapping'.*case_idd"),
    ('tz = "Mars/Olympus"\n', r"'tz' holds 'Mars/Olympus'. Expected: an IANA time zone"),
    ("dayfirst = \"yes\"\n", r"'dayfirst' holds 'yes'. Expected: true or false"),
    ('[outcome_values]\n"Closed Won" = "win"\n', r"'outcome_values.Closed Won' holds 'win'. Expected: won, lost or open"),
    ("[outcome_events]\nwon = 3\n", r"'outcome_events.won' holds 3. Expected: an event name or a list"),
    ('milestones = "Qualify("\n', r"'milestones' holds 'Qualify\('. Expected: a regular expression"),
    ('decimal = ";"\n', r"'decimal' holds ';'. Expected: '.' or ','"),
    ("tz = UTC\n", r"not valid TOML .*Fix: correct that line \(texts need quotes\)"),
])
def test_bad_settings_files_name_file_key_value_and_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "salesproc.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message) as info:
        read_settings(path)
    assert str(path) in str(info.value)


def test_a_bad_settings_file_is_one_clean_line_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "salesproc.toml").write_text('sorce = "deals.csv"\n')
    r = CliRunner().invoke(main, ["info"])
    assert r.exit_code == 2 and "unknown key 'sorce'" in r.output and "did you mean 'source'" in r.output
    assert "Traceback" not in r.output


# --- the command line ---------------------------------------------------------------------------------


def test_a_folder_with_settings_runs_every_command_with_no_repeated_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _team_export(tmp_path)
    bare = CliRunner().invoke(main, ["info", "export.csv"])
    assert bare.exit_code == 2  # the columns need the mapping
    saved = _run("info", "export.csv", *OPTIONS, "--save-settings")
    assert "saved settings salesproc.toml" in saved.output
    assert read_settings("salesproc.toml").source == Path("export.csv")

    info = _run("info")
    assert "settings: salesproc.toml" in info.output and "won" in info.output
    derived = _run("derive")
    assert "saved process.yaml" in derived.output and not (tmp_path / "templates").exists()
    tpl = salesproc.load_template("process.yaml")
    assert tpl.milestone_names[0] == "Qualify"
    rec = tpl.provenance.settings
    assert rec["source"] == "export.csv" and rec["mapping"]["case_id"] == "Deal ID"
    assert rec["milestones"] == MILESTONES and rec["outcome_events"] == {"won": ["Signed"], "lost": ["Walked away"]}
    assert rec["tz"] == "Asia/Tokyo"

    review = _run("review", "--top", "3")
    assert "flags:" in review.output
    plan = _run("plan", "--target-date", "2024-06-30")
    assert "saved reports/plan-" in plan.output


def test_options_on_the_command_line_win_over_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _team_export(tmp_path, n=60)
    _run("info", "export.csv", *OPTIONS, "--save-settings")
    r = _run("info", "--json", "--milestones", "Qualify")
    summary = json.loads(r.stdout)
    assert list(summary["milestones"]) == ["Qualify"] and summary["outcomes"]["deal"]["won"] > 0
    again = CliRunner().invoke(main, ["info", "export.csv", "--save-settings"])
    assert again.exit_code == 2 and "--overwrite-settings" in again.output
    ignored = CliRunner().invoke(main, ["info", "export.csv", "--no-settings"])
    assert ignored.exit_code == 2 and "settings:" not in ignored.output


def test_settings_beside_the_data_or_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _team_export(data, n=60)
    monkeypatch.chdir(data)
    _run("info", "export.csv", *OPTIONS, "--save-settings")
    monkeypatch.chdir(tmp_path)
    assert "settings: data/salesproc.toml" in _run("info", "data/export.csv").output
    assert "settings: data/salesproc.toml" in _run("info", "--settings", "data/salesproc.toml").output
