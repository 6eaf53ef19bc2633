"""A history without amounts says so: in the load summary, and on the pipeline pages instead of a
value of 0 (issue 14: 'expected loss 0' was shown with no hint that no amount was mapped)."""

from __future__ import annotations

import io

import salesproc


def _deals(amount: bool) -> salesproc.History:
    outcomes = ["won", "lost", "open"]
    rows = "".join(
        f"D{i},{stage},2024-{month:02d}-{i + 1:02d},{outcomes[i % 3]}" + (f",{1000 * (i + 1)}" if amount else "") + "\n"
        for i in range(27) for stage, month in (("Qualify", 1), ("Proposal", 2))
    )
    header = "case_id,name,timestamp,outcome" + (",amount" if amount else "") + "\n"
    return salesproc.load_history(io.StringIO(header + rows))


def test_the_load_summary_says_how_to_map_an_amount() -> None:
    notes = _deals(amount=False).report.notes
    assert any("no amount column" in n and "-m amount=<column>" in n for n in notes)
    assert not any("no amount column" in n for n in _deals(amount=True).report.notes)


def test_the_pipeline_says_no_amounts_instead_of_zero() -> None:
    h = _deals(amount=False)
    review = salesproc.review_deals(h, salesproc.derive_template(h, as_of="2024-03-01"), as_of="2024-03-01")
    s = review.summary()
    assert s["with_amount"] == 0 and s["expected_loss"] is None and s["expected_value"] is None
    assert "no amounts in the data" in repr(review) and "expected loss 0" not in repr(review)
    html = str(salesproc.render_report(review, format="html"))
    md = str(salesproc.render_report(review, format="md"))
    assert "no amounts in the data" in html and "At risk" not in html
    assert "no amounts in the data" in md and "at risk:** 0" not in md


def test_with_amounts_the_pipeline_sums_them() -> None:
    h = _deals(amount=True)
    review = salesproc.review_deals(h, salesproc.derive_template(h, as_of="2024-03-01"), as_of="2024-03-01")
    s = review.summary()
    assert s["with_amount"] == 9 and s["expected_loss"] > 0
    assert "At risk" in str(salesproc.render_report(review, format="html"))
