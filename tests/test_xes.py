"""XES (IEEE 1849) logs: real logs agree with their CSV exports and with pm4py's reader; lifecycle
filtering, namespaces, typed and nested attributes, and broken files are handled as specified."""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

import pandas as pd
import pm4py  # test-only (AGPL): installed by the "test" extra, never imported by salesproc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import salesproc
from salesproc.errors import (
    EmptyInputError,
    InvalidValueError,
    MalformedFileError,
    MissingColumnError,
    ParameterError,
    SalesprocError,
)
from salesproc.load import LoadOptions, _xes, _xes_fast
from salesproc.load._xes import read_xes

RECEIPT_XES_MAPPING = {"target_date": "enddate_planned", "closed": "enddate"}
RECEIPT_CSV_MAPPING = {
    "case_id": "case:concept:name",
    "name": "concept:name",
    "timestamp": "time:timestamp",
    "owner": "org:resource",
    "target_date": "case:enddate_planned",
    "closed": "case:enddate",
}
RUNNING_OUTCOMES = {"won": ["pay compensation"], "lost": ["reject request"]}


@pytest.fixture(autouse=True)
def _fast_path_for_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """read_xes leaves files under 1 MiB to expat; here every file may take the fast path."""
    monkeypatch.setattr(_xes, "_FAST_FROM_BYTES", 0)


def parts(*pieces: str) -> str:
    """A regex that finds every piece, in order, anywhere in the message."""
    return "(?s)" + ".*".join(re.escape(p) for p in pieces)


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    data = text.encode("utf-8")
    p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return p


def utc(*stamps: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(s, tz="UTC") for s in stamps]


def event_keys(h: salesproc.History, *cols: str) -> pd.DataFrame:
    """Events as plain values, in a fixed order, for comparing two loads."""
    e = h.events
    out = pd.DataFrame({c: e[c].astype(object).where(e[c].notna(), None) for c in ("case_id", "name", *cols)})
    out["timestamp"] = e["timestamp"]
    return out.sort_values(["case_id", "timestamp", "name"], kind="stable").reset_index(drop=True)


# --- real logs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receipt_xes(shared_data: Path) -> salesproc.History:
    return salesproc.load_history(
        shared_data / "receipt" / "08_receipt.xes.gz", kind="project", mapping=RECEIPT_XES_MAPPING
    )


@pytest.mark.shared
def test_receipt_xes_gz_gives_the_published_counts_and_outcomes(receipt_xes: salesproc.History) -> None:
    s = receipt_xes.summary()
    assert (s.cases, s.events) == (1434, 8577)
    assert s.outcomes == {"project": {"on_time": 940, "late": 389, "failed": 0, "open": 105}}
    # every trace and every event read, all loaded
    assert (s.rows_read, s.rows_loaded, dict(s.skipped)) == (1434 + 8577, 1434 + 8577, {})
    assert len(s.milestones) == 27
    c = receipt_xes.cases.set_index("case_id")
    # trace attributes keep their types; the mapped ones became the canonical dates
    assert c.loc["case-10017", "channel"] == "Internet"
    assert c.loc["case-10017", "closed"] == pd.Timestamp("2011-10-18T13:56:55.943+02:00")
    assert c.loc["case-10017", "target_date"] == pd.Timestamp("2011-12-06T01:06:40.010+01:00")
    assert c.loc["case-10017", "outcome"] == "on_time"
    assert str(c["deadline"].dtype) == "datetime64[ns, UTC]"
    first = receipt_xes.events.iloc[0]
    assert (first["case_id"], first["name"], first["owner"], first["role"]) == (
        receipt_xes.cases["case_id"].iloc[0], "Confirmation of receipt", "Resource21", "Group 1",
    )


@pytest.mark.shared
def test_receipt_xes_and_csv_agree_case_by_case(receipt_xes: salesproc.History, shared_data: Path) -> None:
    csv = salesproc.load_history(
        shared_data / "receipt" / "receipt.csv", kind="project", mapping=RECEIPT_CSV_MAPPING
    )
    x = receipt_xes.cases.set_index("case_id").sort_index()
    c = csv.cases.set_index("case_id").sort_index()
    assert x.index.tolist() == c.index.tolist()
    for col in ("outcome", "created", "closed", "target_date", "owner", "channel", "department",
                "responsible", "startdate", "deadline"):
        pd.testing.assert_series_equal(x[col], c[col], check_categorical=False, obj=col)
    xn = receipt_xes.events["case_id"].value_counts().sort_index()
    cn = csv.events["case_id"].value_counts().sort_index()
    assert xn.tolist() == cn.tolist()
    pd.testing.assert_frame_equal(event_keys(receipt_xes, "owner"), event_keys(csv, "owner"))


@pytest.mark.shared
def test_running_example_with_terminal_outcomes(shared_data: Path) -> None:
    path = shared_data / "running-example" / "running-example.xes"
    plain = salesproc.load_history(path)
    assert (plain.summary().cases, plain.summary().events) == (6, 42)
    h = salesproc.load_history(path, outcome_events=RUNNING_OUTCOMES)
    s = h.summary()
    assert s.outcomes["deal"] == {"won": 3, "lost": 3, "open": 0}
    assert s.events == 36
    assert s.rows_read == 6 + 42
    won = set(h.cases.loc[h.cases["outcome"] == "won", "case_id"])
    assert won == {"2", "3", "6"}
    # the trace attribute is a case attribute; event attributes stay on events
    assert h.cases["creator"].unique().tolist() == ["Fluxicon Nitro"]
    assert {"Activity", "Resource", "Costs"} <= set(h.events.columns)
    csv = salesproc.load_history(
        shared_data / "running-example" / "running-example.csv", mapping="xes-csv",
        outcome_events=RUNNING_OUTCOMES,
    )
    pd.testing.assert_frame_equal(event_keys(h, "owner"), event_keys(csv, "owner"))
    assert h.cases.set_index("case_id")["outcome"].sort_index().tolist() == (
        csv.cases.set_index("case_id")["outcome"].sort_index().tolist()
    )


@pytest.mark.shared
def test_road_traffic_fines_agree_with_their_csv(shared_data: Path) -> None:
    folder = shared_data / "road-traffic-fines"
    x = salesproc.load_history(folder / "roadtraffic100traces.xes")
    c = salesproc.load_history(folder / "roadtraffic100traces.csv", mapping="xes-csv")
    assert (x.summary().cases, x.summary().events) == (100, 390)
    assert sorted(x.cases["case_id"]) == sorted(c.cases["case_id"])
    pd.testing.assert_frame_equal(event_keys(x, "owner"), event_keys(c, "owner"))
    # typed event attributes: <int> stays integral, <float> a float, as the CSV has them
    assert str(x.events["points"].dtype) == "Int64"
    xa = x.cases.set_index("case_id")["amount"].sort_index()
    ca = c.cases.set_index("case_id")["amount"].sort_index()
    pd.testing.assert_series_equal(xa, ca)


@pytest.fixture(scope="module")
def pm4py_logs(shared_data: Path) -> dict[str, pd.DataFrame]:
    """pm4py's reading of each real XES log (read once: pm4py is slow)."""
    return {
        # pm4py's own XML reader (with r4pm installed it would use r4pm, which fills <global> defaults in)
        rel: pm4py.read_xes(str(shared_data / rel), variant="iterparse")
        for rel in ("receipt/08_receipt.xes.gz", "running-example/running-example.xes",
                    "road-traffic-fines/roadtraffic100traces.xes")
    }


@pytest.mark.shared
@pytest.mark.parametrize(
    "relative",
    ["receipt/08_receipt.xes.gz", "running-example/running-example.xes", "road-traffic-fines/roadtraffic100traces.xes"],
)
def test_events_equal_pm4py_read_xes(shared_data: Path, pm4py_logs: dict[str, pd.DataFrame], relative: str) -> None:
    receipt = "receipt" in relative
    h = salesproc.load_history(shared_data / relative, kind="project" if receipt else "deal",
                               mapping=RECEIPT_XES_MAPPING if receipt else None)
    ours = event_keys(h)
    ours = ours.assign(case_id=ours["case_id"].astype(str), name=ours["name"].astype(str))
    df = pm4py_logs[relative]
    theirs = pd.DataFrame({
        "case_id": df["case:concept:name"].astype(str),
        "name": df["concept:name"].astype(str),
        "timestamp": pd.to_datetime(df["time:timestamp"], utc=True).astype("datetime64[ns, UTC]"),
    }).sort_values(["case_id", "timestamp", "name"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[["case_id", "name", "timestamp"]], theirs)


@pytest.mark.shared
def test_receipt_case_attributes_equal_pm4py(
    receipt_xes: salesproc.History, pm4py_logs: dict[str, pd.DataFrame]
) -> None:
    df = pm4py_logs["receipt/08_receipt.xes.gz"]
    theirs = df.groupby("case:concept:name")[["case:channel", "case:responsible", "case:enddate"]].first()
    ours = receipt_xes.cases.set_index("case_id").sort_index()
    assert ours.index.tolist() == theirs.index.tolist()
    assert ours["channel"].tolist() == theirs["case:channel"].tolist()
    assert ours["responsible"].tolist() == theirs["case:responsible"].tolist()
    ended = pd.to_datetime(theirs["case:enddate"], utc=True).astype("datetime64[ns, UTC]")
    pd.testing.assert_series_equal(ours["closed"], ended, check_names=False, check_index=False)


# --- small hand-written logs ------------------------------------------------------------------

LIFECYCLE_LOG = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <global scope="event">
    <string key="org:resource" value="DEFAULT-RESOURCE"/>
    <string key="lifecycle:transition" value="complete"/>
  </global>
  <trace>
    <string key="concept:name" value="A"/>
    <event>
      <string key="concept:name" value="Qualify"/>
      <string key="lifecycle:transition" value="start"/>
      <date key="time:timestamp" value="2024-01-02T09:00:00+01:00"/>
      <string key="org:resource" value="ann"/>
    </event>
    <event>
      <string key="concept:name" value="Qualify"/>
      <string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2024-01-02T11:00:00+01:00"/>
      <string key="org:resource" value="ann"/>
    </event>
    <event>
      <string key="concept:name" value="Proposal"/>
      <string key="lifecycle:transition" value="START"/>
      <date key="time:timestamp" value="2024-01-05T09:00:00Z"/>
    </event>
    <event>
      <string key="concept:name" value="Proposal"/>
      <string key="lifecycle:transition" value="Complete"/>
      <date key="time:timestamp" value="2024-01-05T12:00:00Z"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="B"/>
    <event>
      <string key="concept:name" value="Qualify"/>
      <date key="time:timestamp" value="2024-02-01T08:00:00Z"/>
    </event>
  </trace>
</log>
"""


def test_lifecycle_keeps_complete_events_and_counts_the_others(tmp_path: Path) -> None:
    h = read_xes(write(tmp_path, "lc.xes", LIFECYCLE_LOG))
    assert event_keys(h).values.tolist() == [
        ["A", "Qualify", pd.Timestamp("2024-01-02 10:00", tz="UTC")],
        ["A", "Proposal", pd.Timestamp("2024-01-05 12:00", tz="UTC")],
        ["B", "Qualify", pd.Timestamp("2024-02-01 08:00", tz="UTC")],  # no transition: kept
    ]
    r = h.report
    assert dict(r.skipped) == {"lifecycle transition not kept (start)": 2}
    assert (r.rows_read, r.rows_loaded) == (2 + 5, 2 + 3)
    assert h.events["lifecycle:transition"].fillna("-").tolist() == ["complete", "Complete", "-"]


def test_lifecycle_none_keeps_every_event_and_a_list_keeps_several(tmp_path: Path) -> None:
    p = write(tmp_path, "lc.xes", LIFECYCLE_LOG)
    every = read_xes(p, options=LoadOptions(lifecycle=None))
    assert every.summary().events == 5
    assert dict(every.report.skipped) == {}
    starts = salesproc.load_history(p, lifecycle=["start"])
    assert starts.events["timestamp"].tolist() == utc("2024-01-02 08:00", "2024-01-05 09:00", "2024-02-01 08:00")
    assert dict(starts.report.skipped) == {"lifecycle transition not kept (complete)": 2}


def test_global_defaults_are_not_values(tmp_path: Path) -> None:
    h = read_xes(write(tmp_path, "lc.xes", LIFECYCLE_LOG))
    owners = dict(zip(event_keys(h, "owner")["name"] + "@" + event_keys(h, "owner")["case_id"],
                      event_keys(h, "owner")["owner"], strict=True))
    assert owners == {"Qualify@A": "ann", "Proposal@A": None, "Qualify@B": None}
    assert "DEFAULT-RESOURCE" not in set(h.cases["owner"].dropna())


def test_a_trace_the_lifecycle_filter_empties_is_skipped_and_counted(tmp_path: Path) -> None:
    text = LIFECYCLE_LOG.replace(
        '<string key="concept:name" value="Qualify"/>\n      <date key="time:timestamp" value="2024-02-01',
        '<string key="concept:name" value="Qualify"/>\n      <string key="lifecycle:transition" value="start"/>'
        '\n      <date key="time:timestamp" value="2024-02-01',
    )
    h = read_xes(write(tmp_path, "lc.xes", text))
    assert h.cases["case_id"].tolist() == ["A"]
    assert dict(h.report.skipped) == {
        "lifecycle transition not kept (start)": 3,
        "trace with no event of a kept lifecycle transition": 1,
    }
    assert h.report.rows_read == h.report.rows_loaded + sum(h.report.skipped.values())


EVERY_EVENT_WITH_A_TRANSITION = LIFECYCLE_LOG.replace(
    '<string key="concept:name" value="Qualify"/>\n      <date key="time:timestamp" value="2024-02-01',
    '<string key="concept:name" value="Qualify"/>\n      <string key="lifecycle:transition" value="complete"/>'
    '\n      <date key="time:timestamp" value="2024-02-01',
)


def test_a_filter_that_keeps_nothing_says_which_transitions_there_are(tmp_path: Path) -> None:
    with pytest.raises(EmptyInputError, match=parts(
        "lc.xes: no event has a lifecycle transition in ['suspend']",
        "the log has start (2), complete (3)", "lifecycle='start', or lifecycle=None",
    )):
        read_xes(write(tmp_path, "lc.xes", EVERY_EVENT_WITH_A_TRANSITION), options=LoadOptions(lifecycle="suspend"))


def test_files_without_namespace_and_with_a_prefixed_one_read_alike(tmp_path: Path) -> None:
    body = (
        '<{p}trace><{p}string key="concept:name" value="A"/>'
        '<{p}event><{p}string key="concept:name" value="Qualify"/>'
        '<{p}date key="time:timestamp" value="2024-01-02T10:00:00Z"/></{p}event></{p}trace>'
    )
    plain = write(tmp_path, "plain.xes", "<log>" + body.format(p="") + "</log>")
    prefixed = write(
        tmp_path, "prefixed.xes.gz",
        '<xes:log xmlns:xes="http://www.xes-standard.org/">' + body.format(p="xes:") + "</xes:log>",
    )
    default_ns = write(
        tmp_path, "default.xes", '<log xmlns="http://www.xes-standard.org/">' + body.format(p="") + "</log>"
    )
    loads = [salesproc.load_history(p) for p in (plain, prefixed, default_ns)]
    for h in loads:
        assert event_keys(h).values.tolist() == [["A", "Qualify", pd.Timestamp("2024-01-02 10:00", tz="UTC")]]


def test_compression_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    gz_named_plain = tmp_path / "plain.xes.gz"
    gz_named_plain.write_text(LIFECYCLE_LOG, encoding="utf-8")
    plain_named_gz = tmp_path / "zipped.xes"
    plain_named_gz.write_bytes(gzip.compress(LIFECYCLE_LOG.encode("utf-8")))
    a, b = salesproc.load_history(gz_named_plain), salesproc.load_history(plain_named_gz)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert a.summary().events == 3


TYPED_LOG = """<log>
  <string key="log-level" value="not case data"/>
  <trace>
    <string key="concept:name" value="P1"/>
    <int key="size" value="3"/>
    <float key="score" value="1.5">
      <string key="unit" value="points"/>
      <string key="source" value="model"/>
    </float>
    <boolean key="vip" value="true"/>
    <id key="crm" value="0b9e6c0a-1"/>
    <date key="planned" value="2024-03-01T00:00:00+00:00"/>
    <date key="done" value="2024-02-20T17:00:00+00:00"/>
    <list key="tags">
      <values>
        <string key="tag" value="a"/>
        <string key="tag" value="b"/>
      </values>
    </list>
    <event>
      <string key="concept:name" value="Kick-off"/>
      <date key="time:timestamp" value="2024-01-10T09:00:00+00:00"/>
      <int key="attendees" value="7"/>
      <boolean key="remote" value="false"/>
      <string key="org:role" value="PM"/>
      <string key="org:group" value="Delivery"/>
    </event>
    <event>
      <string key="concept:name" value="Review"/>
      <date key="time:timestamp" value="2024-02-01T09:00:00+00:00"/>
      <float key="hours" value="2.5"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="P2"/>
    <int key="size" value="11"/>
    <event>
      <string key="concept:name" value="Kick-off"/>
      <date key="time:timestamp" value="2024-01-15T09:00:00+00:00"/>
    </event>
  </trace>
</log>
"""


def test_typed_trace_and_event_attributes(tmp_path: Path) -> None:
    h = read_xes(write(tmp_path, "typed.xes", TYPED_LOG),
                 options=LoadOptions(kind="project", mapping={"target_date": "planned", "closed": "done"}))
    c = h.cases.set_index("case_id")
    assert c["size"].tolist() == [3, 11] and str(c["size"].dtype) == "int64"
    assert c["score"].fillna(-1.0).tolist() == [1.5, -1.0] and str(c["score"].dtype) == "float64"
    assert c["vip"].fillna(False).tolist() == [True, False] and str(c["vip"].dtype) == "boolean"
    assert c["vip"].isna().tolist() == [False, True]
    assert c.loc["P1", "crm"] == "0b9e6c0a-1"
    assert c["outcome"].tolist() == ["on_time", "open"]
    assert "log-level" not in c.columns and "tags" not in c.columns
    e = h.events.set_index(["case_id", "name"])
    assert e.loc[("P1", "Kick-off"), "attendees"] == 7 and str(h.events["attendees"].dtype) == "Int64"
    assert not e.loc[("P1", "Kick-off"), "remote"]
    assert e.loc[("P1", "Review"), "hours"] == 2.5
    # org:role is preferred to org:group for the role; org:group stays an event attribute
    assert e.loc[("P1", "Kick-off"), "role"] == "PM"
    assert e.loc[("P1", "Kick-off"), "org:group"] == "Delivery"


def test_nested_attributes_and_lists_are_ignored_and_counted(tmp_path: Path) -> None:
    h = read_xes(write(tmp_path, "typed.xes", TYPED_LOG))
    notes = h.report.notes
    assert "4 nested attribute values (children of trace or event attributes) ignored" in notes
    assert "list attributes ignored: 'tags' (1)" in notes
    assert "unit" not in h.cases.columns and "tag" not in h.cases.columns


def test_mapping_may_name_trace_attributes_with_the_case_prefix(tmp_path: Path) -> None:
    p = write(tmp_path, "typed.xes", TYPED_LOG)
    plain = read_xes(p, options=LoadOptions(kind="project", mapping={"target_date": "planned", "closed": "done"}))
    prefixed = read_xes(
        p, options=LoadOptions(kind="project", mapping={"target_date": "case:planned", "closed": "case:done"})
    )
    pd.testing.assert_frame_equal(plain.cases, prefixed.cases)
    by_outcome = read_xes(
        write(tmp_path, "o.xes", TYPED_LOG.replace('<int key="size" value="11"/>',
                                                   '<string key="result" value="lost"/>')),
        options=LoadOptions(mapping={"outcome": "result"}),
    )
    assert by_outcome.cases.set_index("case_id")["outcome"].to_dict() == {"P1": "open", "P2": "lost"}


def test_a_mapped_attribute_no_trace_or_event_has(tmp_path: Path) -> None:
    with pytest.raises(MissingColumnError, match=parts(
        "typed.xes", "no column 'enddate_planned' (needed for 'target_date')", "'case:planned'",
    )):
        read_xes(write(tmp_path, "typed.xes", TYPED_LOG),
                 options=LoadOptions(kind="project", mapping={"target_date": "enddate_planned"}))


def test_malformed_xml_names_line_column_and_trace(tmp_path: Path) -> None:
    text = TYPED_LOG.replace('<float key="hours" value="2.5"/>', '<float key="hours" value="2.5">')
    # the </event> after the unclosed <float> is the first tag that does not match
    line = next(i for i, s in enumerate(text.splitlines(), 1) if 'key="hours"' in s) + 1
    with pytest.raises(MalformedFileError, match=parts(
        "broken.xes", f"line {line}", "not well-formed XML (mismatched tag)", "in trace 1 ('P1')", "Fix:",
    )):
        read_xes(write(tmp_path, "broken.xes", text))


def test_a_file_that_ends_early_says_so(tmp_path: Path) -> None:
    text = TYPED_LOG[: TYPED_LOG.index("<trace>\n    <string key=\"concept:name\" value=\"P2\"/>") + 60]
    with pytest.raises(MalformedFileError, match=parts("in trace 2 ('P2')", "the file ends early")):
        read_xes(write(tmp_path, "cut.xes", text))


def test_truncated_gzip_names_the_trace_it_breaks_off_in(tmp_path: Path) -> None:
    big = "<log>" + "".join(
        f'<trace><string key="concept:name" value="T{i}"/>'
        f'<event><string key="concept:name" value="a{i % 7}"/>'
        f'<date key="time:timestamp" value="2024-01-01T00:00:{i % 60:02d}Z"/></event></trace>\n'
        for i in range(3000)
    ) + "</log>"
    data = gzip.compress(big.encode())
    p = tmp_path / "cut.xes.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(MalformedFileError, match=r"cut\.xes\.gz: the gzip data is cut short after [\d,]+ bytes "
                       r"of XML \(line \d+, in trace \d+ \('T\d+'\)\)\. Fix: download"):
        salesproc.load_history(p)


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    text = (
        '<?xml version="1.0"?>\n<!DOCTYPE log [\n<!ENTITY lol "lol">\n'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n<log>&lol2;</log>'
    )
    with pytest.raises(MalformedFileError, match=parts("bomb.xes, line 3", "declares an XML entity ('lol')")):
        read_xes(write(tmp_path, "bomb.xes", text))
    external = '<?xml version="1.0"?>\n<!DOCTYPE log [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<log>&x;</log>'
    with pytest.raises(MalformedFileError, match="declares an XML entity"):
        read_xes(write(tmp_path, "ext.xes", external))


def test_a_trace_without_a_name_is_an_error_naming_line_and_trace(tmp_path: Path) -> None:
    text = TYPED_LOG.replace('<string key="concept:name" value="P2"/>', '<string key="label" value="P2"/>')
    line = text.splitlines().index("  <trace>", 5) + 1
    with pytest.raises(MalformedFileError, match=parts(
        "nameless.xes", f"line {line}", "trace 2 has no 'concept:name' attribute", "errors='skip'",
    )):
        read_xes(write(tmp_path, "nameless.xes", text))
    h = read_xes(tmp_path / "nameless.xes", options=LoadOptions(errors="skip"))
    assert h.cases["case_id"].tolist() == ["P1"]
    assert dict(h.report.skipped) == {"trace without concept:name (with its events)": 2}
    assert (h.report.rows_read, h.report.rows_loaded) == (5, 3)
    # or take the case id from another trace attribute
    with pytest.raises(MalformedFileError, match="trace 1 has no 'label' attribute"):
        read_xes(tmp_path / "nameless.xes", options=LoadOptions(mapping={"case_id": "label"}))


def test_a_bad_timestamp_is_reported_by_line_and_xes_key(tmp_path: Path) -> None:
    text = TYPED_LOG.replace('value="2024-02-01T09:00:00+00:00"', 'value="first of February"')
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "first of February" in s)
    event_line = max(i for i, s in enumerate(text.splitlines()[:line], 1) if "<event>" in s)
    with pytest.raises(InvalidValueError, match=parts(
        f"bad.xes, line {event_line}, column 'time:timestamp': found 'first of February'",
    )):
        read_xes(write(tmp_path, "bad.xes", text))


@pytest.mark.parametrize(
    ("name", "text", "error", "message"),
    [
        ("empty.xes", "", EmptyInputError, "the file is empty"),
        ("html.xes", "<html><body/></html>", MalformedFileError, "the root element is <html>, expected <log>"),
        ("none.xes", "<log><string key='a' value='b'/></log>", EmptyInputError, "holds no traces"),
        ("noev.xes", "<log><trace><string key='concept:name' value='A'/></trace></log>", EmptyInputError,
         "hold no events"),
    ],
)
def test_files_that_are_no_event_log(
    tmp_path: Path, name: str, text: str, error: type[SalesprocError], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        read_xes(write(tmp_path, name, text))


def test_parameter_errors_use_the_load_history_wording(tmp_path: Path) -> None:
    p = write(tmp_path, "lc.xes", LIFECYCLE_LOG)
    with pytest.raises(ParameterError, match=r"The 'lifecycle' parameter of load_history must be .* Got int instead"):
        salesproc.load_history(p, lifecycle=3)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"The 'mapping' parameter of load_history must be .* Got list instead"):
        read_xes(p, options=LoadOptions(mapping=["case_id"]))  # type: ignore[arg-type]


# --- property: whatever the log, every event read is loaded or counted -----------------------

_names = st.sampled_from(["Qualify", "Proposal", "Negotiate", "Close"])
_transitions = st.sampled_from([None, "start", "complete", "COMPLETE", "suspend"])
_event = st.tuples(_names, _transitions, st.integers(0, 10_000))
_trace = st.lists(_event, min_size=0, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traces=st.lists(_trace, min_size=1, max_size=6).filter(lambda ts: any(ts)))
def test_every_event_read_is_loaded_or_counted(tmp_path: Path, traces: list[list[tuple[str, str | None, int]]]) -> None:
    lines = ["<log>"]
    for i, events in enumerate(traces):
        lines.append(f'<trace><string key="concept:name" value="T{i}"/><date key="created" '
                     'value="2023-12-01T00:00:00Z"/>')
        for name, transition, minutes in events:
            t = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(minutes=minutes)
            life = f'<string key="lifecycle:transition" value="{transition}"/>' if transition else ""
            lines.append(f'<event><string key="concept:name" value="{name}"/>{life}'
                         f'<date key="time:timestamp" value="{t.isoformat()}"/></event>')
        lines.append("</trace>")
    lines.append("</log>")
    path = write(tmp_path, "prop.xes", "\n".join(lines))
    kept = {
        (f"T{i}", name, minutes)
        for i, events in enumerate(traces)
        for name, transition, minutes in events
        if transition is None or transition.lower() == "complete"
    }
    if not kept:
        with pytest.raises(EmptyInputError, match="no event has a lifecycle transition in \\['complete'\\]"):
            read_xes(path, options=LoadOptions(errors="skip"))
        return
    h = read_xes(path, options=LoadOptions(errors="skip"))
    r = h.report
    n_events = sum(len(ev) for ev in traces)
    assert r.rows_read == len(traces) + n_events
    assert r.rows_read == r.rows_loaded + sum(r.skipped.values())
    offsets = (h.events["timestamp"] - pd.Timestamp("2024-01-01", tz="UTC")) // pd.Timedelta(minutes=1)
    got = set(zip(h.events["case_id"].astype(str), h.events["name"].astype(str), offsets.tolist(), strict=True))
    assert got == kept
    emptied = sum(1 for events in traces if events and not any(
        t is None or t.lower() == "complete" for _, t, _ in events))
    assert r.skipped.get("trace with no event of a kept lifecycle transition", 0) == emptied
    # traces without events are cases (the created date is theirs); emptied ones are not
    assert len(h.cases) == len(traces) - emptied


# --- the fast path (r4pm) and the expat reader give the same history --------------------------

r4pm = pytest.importorskip("r4pm", reason="the 'xes' extra (r4pm) is part of the 'test' extra")


def expat_only(path: Path, options: LoadOptions | None = None) -> salesproc.History:
    """read_xes as it reads without r4pm installed (the import fails)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "r4pm", None)
        mp.setitem(sys.modules, "r4pm.df", None)
        assert _xes_fast.read_fast(path, naive_ok=True) is None
        return read_xes(path, options=options)


def assert_same_history(a: salesproc.History, b: salesproc.History) -> None:
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.cases, b.cases)
    assert a.report == b.report


@pytest.mark.shared
@pytest.mark.parametrize(
    ("relative", "options"),
    [
        ("receipt/08_receipt.xes.gz", LoadOptions(kind="project", mapping=RECEIPT_XES_MAPPING)),
        ("running-example/running-example.xes", LoadOptions(outcome_events=RUNNING_OUTCOMES)),
        ("road-traffic-fines/roadtraffic100traces.xes", LoadOptions()),
        ("road-traffic-fines/roadtraffic100traces.xes", LoadOptions(lifecycle=None, errors="skip")),
    ],
)
def test_the_fast_path_reads_the_real_logs_as_expat_does(shared_data: Path, relative: str, options: LoadOptions) -> None:
    path = shared_data / relative
    assert _xes_fast.read_fast(path, naive_ok=True) is not None  # r4pm reads these (the globals taken out)
    assert_same_history(read_xes(path, options=options), expat_only(path, options))


ZONES_LOG = """<?xml version="1.0" encoding="UTF-8"?>
<!-- written by hand: offsets, Z, no offset, microseconds -->
<log xes.version="1.0">
  <global scope="trace"><string key="segment" value="none"/></global>
  <global scope="event"><string key="org:resource" value="UNKNOWN"/></global>
  <trace>
    <string key="concept:name" value="Z1"/>
    <date key="planned" value="2024-03-31T01:30:00+01:00"/>
    <float key="amount" value="1.5e3"/>
    <event>
      <string key="concept:name" value="Qualify &amp; score"/>
      <string key="lifecycle:transition" value="start"/>
      <date key="time:timestamp" value="2024-03-31T01:30:00.123456+01:00"/>
      <string key="org:resource" value="ann"/>
    </event>
    <event>
      <string key="concept:name" value="Qualify &amp; score"/>
      <string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2024-03-31T03:30:00Z"/>
      <int key="calls" value="-3"/>
      <boolean key="remote" value="true"/>
    </event>
    <event>
      <string key="concept:name" value="Proposal"/>
      <date key="time:timestamp" value="2024-04-02T08:00:00"/>
      <int key="calls" value="0"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="Z2"/>
    <string key="segment" value="SMB"/>
    <event>
      <string key="concept:name" value="Qualify &amp; score"/>
      <date key="time:timestamp" value="2024-04-01T23:59:59.5-05:30"/>
      <boolean key="remote" value="false"/>
    </event>
  </trace>
</log>
"""


@pytest.mark.parametrize(
    "options",
    [LoadOptions(), LoadOptions(lifecycle=None), LoadOptions(lifecycle=["start"]), LoadOptions(errors="skip"),
     LoadOptions(kind="project", mapping={"target_date": "planned", "amount": "amount"})],
)
def test_time_zones_lifecycle_and_missing_attributes_read_alike(tmp_path: Path, options: LoadOptions) -> None:
    path = write(tmp_path, "zones.xes", ZONES_LOG)
    assert _xes_fast.read_fast(path, naive_ok=True) is not None
    fast = read_xes(path, options=options)
    assert_same_history(fast, expat_only(path, options))
    if options == LoadOptions():
        e = fast.events.set_index(["case_id", "name"])["timestamp"]
        assert e.tolist() == utc("2024-03-31 03:30", "2024-04-02 08:00", "2024-04-02 05:29:59.5")
        # global defaults are not values: only ann's 'start' event (filtered out) had an owner; Z2 has a segment
        assert fast.events["owner"].isna().all()
        assert fast.cases.set_index("case_id")["segment"].isna().tolist() == [True, False]


def test_a_log_without_offsets_in_another_time_zone_is_read_by_expat(tmp_path: Path) -> None:
    path = write(tmp_path, "zones.xes", ZONES_LOG)
    assert _xes_fast.read_fast(path, naive_ok=False) is None  # r4pm would read 08:00 as UTC
    berlin = LoadOptions(tz="Europe/Berlin")
    h = read_xes(path, options=berlin)
    assert_same_history(h, expat_only(path, berlin))
    assert h.events["timestamp"].iloc[1] == pd.Timestamp("2024-04-02 06:00", tz="UTC")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (('<int key="calls" value="-3"/>', '<int key="calls" value="3.0"/>'), "an int r4pm reads as 0"),
        (('value="2024-03-31T03:30:00Z"', 'value="2024-03-31T03:30Z"'), "a date r4pm cannot read"),
        (('value="2024-04-02T08:00:00"', 'value="2024-04-02 08:00:00"'), "nor this one"),
        (('value="2024-03-31T03:30:00Z"', 'value="2024-03-31T03:30:00.1234567Z"'), "nanoseconds"),
        (('<boolean key="remote" value="true"/>', '<boolean key="remote" value="TRUE"/>'), "a boolean r4pm cannot read"),
        (('<float key="amount" value="1.5e3"/>', '<float key="amount" value="NaN"/>'), "NaN"),
        (('<float key="amount" value="1.5e3"/>', '<float key="amount" value="1.5"><string key="unit" value="k"/></float>'),
         "a nested attribute"),
        (('<float key="amount" value="1.5e3"/>', '<list key="tags"><values><string key="t" value="a"/></values></list>'),
         "a list"),
        (('<float key="amount" value="1.5e3"/>', '<id key="crm" value="0B9E6C0A-1111-2222-3333-444455556666"/>'),
         "an id r4pm rewrites"),
        (('<int key="calls" value="0"/>', '<string key="calls" value="0"/>'), "a key of two types"),
        (('<int key="calls" value="0"/>', '<string key="case:x" value="0"/>'), "r4pm's own prefix"),
        (('<string key="org:resource" value="ann"/>', '<string key="org:resource" value="UNKNOWN"/>'),
         "a value that equals its global default"),
        (('<string key="org:resource" value="ann"/>', '<string key="org:resource" value="a\tb"/>'), "a tab"),
        (('<string key="org:resource" value="ann"/>', '<string value="ann" key="org:resource"/>'), "value before key"),
        (('<string key="org:resource" value="ann"/>', "<string key='org:resource' value='ann'/>"), "single quotes"),
        (("<trace>\n    <string key=\"concept:name\" value=\"Z2\"/>",
          "<trace><string key=\"concept:name\" value=\"Z0\"/></trace>\n  <trace>\n    <string key=\"concept:name\" value=\"Z2\"/>"),
         "a trace without events"),
        (("</log>", "<event><string key=\"concept:name\" value=\"o\"/></event></log>"), "an event outside traces"),
        (('encoding="UTF-8"', 'encoding="ISO-8859-1"'), "another encoding"),
    ],
)
def test_what_r4pm_reads_otherwise_is_read_by_expat(tmp_path: Path, change: tuple[str, str], why: str) -> None:
    text = ZONES_LOG.replace(*change)
    assert text != ZONES_LOG
    path = tmp_path / "odd.xes"
    path.write_bytes(text.encode("latin-1" if "8859" in text else "utf-8"))
    assert _xes_fast.read_fast(path, naive_ok=True) is None, why
    options = LoadOptions(errors="skip", lifecycle=None)
    assert_same_history(read_xes(path, options=options), expat_only(path, options))


def test_an_error_on_the_fast_path_is_reported_by_expat_with_its_line(tmp_path: Path) -> None:
    text = ZONES_LOG.replace('      <date key="time:timestamp" value="2024-04-02T08:00:00"/>\n', "")
    path = write(tmp_path, "late.xes", text)
    assert _xes_fast.read_fast(path, naive_ok=True) is not None
    line = next(i for i, s in enumerate(text.splitlines(), 1) if 'value="Proposal"' in s) - 1
    with pytest.raises(InvalidValueError, match=parts(f"late.xes, line {line}", "'time:timestamp'")):
        read_xes(path)
    assert_same_history(read_xes(path, options=LoadOptions(errors="skip")),
                        expat_only(path, LoadOptions(errors="skip")))


def test_without_r4pm_the_expat_reader_reads_every_file(tmp_path: Path) -> None:
    path = write(tmp_path, "lc.xes", LIFECYCLE_LOG)
    h = expat_only(path)
    assert event_keys(h).values.tolist() == [
        ["A", "Qualify", pd.Timestamp("2024-01-02 10:00", tz="UTC")],
        ["A", "Proposal", pd.Timestamp("2024-01-05 12:00", tz="UTC")],
        ["B", "Qualify", pd.Timestamp("2024-02-01 08:00", tz="UTC")],
    ]
    assert_same_history(h, read_xes(path))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traces=st.lists(_trace, min_size=1, max_size=6).filter(lambda ts: any(ts)),
       offsets=st.lists(st.sampled_from(["Z", "+02:00", "-05:30", ""]), min_size=1, max_size=4))
def test_both_readers_agree_on_any_log(
    tmp_path: Path, traces: list[list[tuple[str, str | None, int]]], offsets: list[str]
) -> None:
    lines = ['<log><global scope="event"><string key="org:resource" value="nobody"/></global>']
    for i, events in enumerate(traces):
        lines.append(f'<trace><string key="concept:name" value="T{i}"/>')
        for j, (name, transition, minutes) in enumerate(events):
            t = (pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=minutes)).isoformat()
            life = f'<string key="lifecycle:transition" value="{transition}"/>' if transition else ""
            owner = f'<string key="org:resource" value="rep{j % 3}"/>' if j % 2 else ""
            lines.append(f'<event><string key="concept:name" value="{name}"/>{life}{owner}'
                         f'<date key="time:timestamp" value="{t}{offsets[j % len(offsets)]}"/></event>')
        lines.append("</trace>")
    lines.append("</log>")
    path = write(tmp_path, "prop.xes", "\n".join(lines))
    options = LoadOptions(errors="skip")
    try:
        expected = expat_only(path, options)
    except EmptyInputError:
        with pytest.raises(EmptyInputError):
            read_xes(path, options=options)
        return
    assert_same_history(read_xes(path, options=options), expected)


def test_a_misspelt_mapping_key_is_refused_for_xes_too(tmp_path: Path) -> None:
    # `outcom` would be read by nothing: every case would load as open
    p = tmp_path / "log.xes"
    p.write_text(
        '<log xes.version="1.0"><trace><string key="concept:name" value="c1"/>'
        '<event><string key="concept:name" value="A"/><date key="time:timestamp" value="2024-01-02T10:00:00Z"/>'
        "</event></trace></log>"
    )
    with pytest.raises(salesproc.SalesprocError, match="did you mean 'outcome'"):
        salesproc.load_history(p, mapping={"outcom": "result"})
