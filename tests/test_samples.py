"""The shipped samples: real files read by the real loader, equal to the generator's output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import salesproc
from salesproc.datasets import load_sample_deals, load_sample_projects, sample_path, synthetic_history
from salesproc.datasets._samples import SAMPLES, write_event_log_csv


def test_sample_files_ship_inside_the_package_and_stay_small() -> None:
    for name, (file_name, _, _) in SAMPLES.items():
        p = sample_path(name)
        assert p.name == file_name and p.is_file()
        assert p.parent == Path(salesproc.__file__).parent / "datasets" / "data"
        assert p.stat().st_size < 1_000_000
    with pytest.raises(ValueError, match="'name' parameter of sample_path must be one of"):
        sample_path("leads")


def test_sample_deals_load_through_the_plain_loader() -> None:
    h = load_sample_deals()
    assert h.report.source == "salesproc sample deals"
    assert len(h) == 600 and h.kinds == ["deal"]
    assert set(h.cases["outcome"]) == {"won", "lost", "open"}
    assert h.cases.loc[h.cases["outcome"] == "open", "closed"].isna().all()
    # the loader read every row, skipped none and needed no mapping
    assert h.report.rows_read == h.report.rows_loaded == len(h.events)
    assert dict(h.report.skipped) == {}
    s = h.summary()
    assert set(s.milestones) == {"Qualify", "Discovery", "Solution", "Proposal", "Negotiation"}
    assert len(s.activities) == 12
    same = salesproc.load_history(sample_path("deals"))
    pd.testing.assert_frame_equal(same.events, h.events)


def test_sample_projects_load_with_planned_ends() -> None:
    h = load_sample_projects()
    assert h.report.source == "salesproc sample projects"
    assert len(h) == 300 and h.kinds == ["project"]
    assert set(h.cases["outcome"]) == {"on_time", "late", "failed", "open"}
    assert h.cases["target_date"].notna().all()
    done = h.cases[h.cases["outcome"].isin(["on_time", "late"])]
    assert ((done["closed"] <= done["target_date"]) == (done["outcome"] == "on_time")).all()
    assert dict(h.report.skipped) == {}


@pytest.mark.parametrize("name", ["deals", "projects"])
def test_samples_equal_the_generator_they_came_from(name: str, tmp_path: Path) -> None:
    """If this fails after a change to synthetic_history, run benchmarks/make_samples.py."""
    file_name, kwargs, _ = SAMPLES[name]
    generated, truth = synthetic_history(**kwargs)  # type: ignore[arg-type]
    loaded = load_sample_deals() if name == "deals" else load_sample_projects()
    pd.testing.assert_frame_equal(loaded.cases, generated.cases)
    pd.testing.assert_frame_equal(loaded.events, generated.events)
    # and the file is byte for byte what make_samples writes
    fresh = write_event_log_csv(generated, tmp_path / file_name)
    assert fresh.read_bytes() == sample_path(name).read_bytes()
    assert truth.n_cases == len(loaded)


@pytest.mark.parametrize("loader", [load_sample_deals, load_sample_projects])
def test_samples_round_trip_through_parquet(loader, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h = loader()
    out = h.to_parquet(tmp_path / "saved")
    back = salesproc.load_history(out)
    pd.testing.assert_frame_equal(back.cases, h.cases)
    pd.testing.assert_frame_equal(back.events, h.events)
    assert back.report.source == h.report.source


def test_samples_cannot_be_changed_through_their_frames() -> None:
    h = load_sample_deals()
    cases = h.cases
    cases.loc[0, "amount"] = -1.0
    assert load_sample_deals().cases.loc[0, "amount"] != -1.0


def test_the_readme_example_export_loads_with_a_column_mapping_only() -> None:
    # the README's "Your own data" command: Closed Won / Closed Lost are read as outcomes
    from click.testing import CliRunner

    from salesproc.cli import main
    from salesproc.datasets import example_path

    args = ["info", str(example_path()), "-m", "case_id=deal_id", "-m", "name=stage", "-m", "timestamp=date",
            "-m", "amount=amount", "--json"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    import json

    summary = json.loads(r.stdout)
    assert summary["cases"] == 30
    assert summary["outcomes"]["deal"] == {"won": 6, "lost": 8, "open": 16}
