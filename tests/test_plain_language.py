"""Pages for the people in the room speak plain language; the statistics stay one fold away.

The deal review, pipeline review and plan pages, in HTML and Markdown, for the built-in sample
deals and a synthetic history, with the analyst's part cut out (HTML: the ``<details
class="analyst">`` fold "How this was worked out"; Markdown: the last section, "For the analyst"),
hold none of the analyst's words: no q- or p-values, no ``n=`` counts, no snapshots, no model or
test names, no percentiles read backwards, no internal flag ids, no ``Timestamp(`` or ``Goal(``.
The fold is there on every page and holds the numbers (intervals, n, the method).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from render_data import small_plan, small_review

import salesproc
from salesproc.derive._derive import _default_as_of
from salesproc.history import History
from salesproc.plan import Goal, Plan
from salesproc.render import render_report
from salesproc.review import DealReview, Review
from salesproc.review._review import FLAGS

#: The analyst's words: none may show on a manager's page outside the fold.
ANALYST_WORDS: dict[str, str] = {
    "a q-value": r"\bq\s*=",
    "a p-value": r"\bp\s*=",
    "an n= count": r"\bn\s*=",
    "snapshots": r"\bsnapshots?\b",
    "a model name": r"logistic|calibrat|\bPlatt\b|sandwich|ridge-penal",
    "a test or estimator name": r"Kaplan|Newcombe|Wilson|Benjamini|Aalen|lognormal|\bAUC\b|\bECE\b",
    "a percentile": r"percentile|\b[pP](?:10|50|80)\b",
    "a percentile read backwards": r"\b(?:older|younger|longer|shorter) than \d+% of\b",
    "a bracketed interval": r"\[\s*[+-]?\d+(?:\.\d+)?%?\s*(?:–|,)\s*[+-]?\d+(?:\.\d+)?%?\s*\\?\]",
    "a 95% interval": r"95% interval",
    "simulations": r"\bsimulations?\b",
    "an internal flag id": "|".join(f.replace("_", r"\\?_") for f in FLAGS if "_" in f),
    "a Python repr": r"Timestamp\(|Goal\(|Plan\(|<DealReview|<Review\b",
}
_FOLD_HTML = re.compile(r'<details class="analyst"[^>]*>.*?</details>', re.S)
_FOLD_MD = re.compile(r"\n## For the analyst\n.*?(?=\n---\nMade with)", re.S)


def analyst_words(text: str) -> dict[str, list[str]]:
    """The analyst's words found in ``text``, by kind (empty when it is plain)."""
    found = {what: re.findall(pattern, text) for what, pattern in ANALYST_WORDS.items()}
    return {what: hits for what, hits in found.items() if hits}


def split_fold(text: str, fmt: str) -> tuple[str, str]:
    """``(the page without the analyst's fold, the fold)``; a page must have exactly one fold."""
    pattern = _FOLD_HTML if fmt == "html" else _FOLD_MD
    folds = pattern.findall(text)
    assert len(folds) == 1, f"expected one analyst fold, found {len(folds)}"
    return pattern.sub("", text), folds[0]


# --- the inputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    review: Review
    plan: Plan


def _plan(template: Any, history: History, as_of: pd.Timestamp, case: str, owner: str | None) -> Plan:
    goal = Goal(as_of.normalize() + pd.Timedelta(days=42), success="Order form signed",
                measure="countersigned order form", seller_owner=owner, buyer_owner="Sam (CFO)")
    return salesproc.plan_backwards(template, goal=goal, as_of=as_of, case=case, history=history,
                                    seed=0, n_simulations=2_000)


@pytest.fixture(scope="module")
def sample() -> Source:
    h = salesproc.load_sample_deals()
    as_of = _default_as_of(h)
    t = salesproc.derive_template(h, as_of=as_of, name="Sample deals")
    r = salesproc.review_deals(h, t, as_of=as_of)
    top = r[r.case_ids[0]]
    return Source(r, _plan(t, h, as_of, top.case_id, top.owner))


@pytest.fixture(scope="module")
def synthetic() -> Source:
    fx = small_review()
    return Source(fx.review, small_plan(fx))


@pytest.fixture(scope="module")
def named() -> Source:
    """A synthetic history whose cases carry CRM-style 'Deal Name' and 'Account Name' columns."""
    h, truth = salesproc.synthetic_history(600, seed=3)
    cases = h.cases.copy()
    cases["Deal Name"] = [f"Renewal {c}" for c in cases["case_id"].astype(str)]
    cases["Account Name"] = [f"Acme {i % 7}" for i in range(len(cases))]
    hn = History.from_frames(cases, h.events.copy(), report=h.report)
    t = salesproc.derive_template(hn, as_of=truth.as_of, name="Named deals")
    r = salesproc.review_deals(hn, t, as_of=truth.as_of)
    return Source(r, _plan(t, hn, truth.as_of, r.case_ids[0], r[r.case_ids[0]].owner))


SOURCES = ("sample", "synthetic", "named")


def _deals(review: Review) -> list[DealReview]:
    """Deals that between them show every kind of sentence: the top ones and one per flag."""
    picked = {cid: review[cid] for cid in review.case_ids[:5]}
    frame = review.to_frame()
    for flag in FLAGS:
        hit = frame.loc[frame[flag], "case_id"]
        if len(hit):
            picked.setdefault(hit.iloc[0], review[hit.iloc[0]])
    return list(picked.values())


def _pages(src: Source) -> Iterator[tuple[str, Callable[[str], str]]]:
    yield "pipeline_review", lambda fmt: str(render_report(src.review, format=fmt))  # type: ignore[arg-type]
    yield "plan", lambda fmt: str(render_report(src.plan, format=fmt))  # type: ignore[arg-type]
    for d in _deals(src.review):
        yield f"deal_review {d.case_id}", lambda fmt, d=d: str(render_report(d, format=fmt))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _builtin_templates_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# --- the check -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["html", "md"])
@pytest.mark.parametrize("source", SOURCES)
def test_pages_speak_plain_language_outside_the_analyst_fold(source: str, fmt: str,
                                                             request: pytest.FixtureRequest) -> None:
    src: Source = request.getfixturevalue(source)
    problems = {}
    for name, render in _pages(src):
        plain, _ = split_fold(render(fmt), fmt)
        if found := analyst_words(plain):
            problems[name] = found
    assert not problems, f"analyst words outside the fold ({source}, {fmt}): {problems}"


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_the_fold_holds_the_numbers(synthetic: Source, fmt: str) -> None:
    r = synthetic.review
    d = r[r.case_ids[0]]
    _, fold = split_fold(str(render_report(d, format=fmt)), fmt)  # type: ignore[arg-type]
    assert f"Probability {d.probability:.1%}, 95% interval [{d.probability_low:.1%}, {d.probability_high:.1%}]" in fold
    assert f"n={r.model.snapshots:,} snapshots" in fold and "logistic regression" in fold and "Platt" in fold
    assert f"{d.comparable_won:,} of n={d.comparable_n:,}" in fold and "Wilson 95% interval" in fold
    for g in d.gaps:
        assert f"{g.n:,}" in fold and "q=" in fold
    for f in d.flags:
        assert f.name.replace("_", "\\_" if fmt == "md" else "_") in fold
    _, fold = split_fold(str(render_report(r, format=fmt)), fmt)  # type: ignore[arg-type]
    assert f"n={r.model.snapshots:,} snapshots of {r.model.cases:,} past cases" in fold
    assert all(c in fold for c in r.caveats)
    p = synthetic.plan
    _, fold = split_fold(str(render_report(p, format=fmt)), fmt)  # type: ignore[arg-type]
    assert f"{p.n_simulations:,} simulations" in fold and "Aalen-Johansen" in fold and "P80" in fold


def test_the_check_finds_the_old_wording(synthetic: Source, tmp_path: Path) -> None:
    """The check is not vacuous: the sentences the issue quotes, and a page that prints the
    evidence outside the fold, fail it."""
    old = [
        "+13 points [+3, +22] of win rate at Proposal: 83% with it (n=152) vs 70% without (n=167), q=0.0084",
        "85% of deals that won had two or more by Discovery (n=2,997 snapshots)",
        "The chance comes from the team's own history (calibrated logistic model).",
        "Age 87 days, older than 1% of won deals",
        "Goal(target_date=Timestamp('2024-06-30 00:00:00+0000', tz='UTC'))",
        "flag missing_critical: 1 critical activity not done",
        "Times are Kaplan–Meier medians; rates with Wilson 95% intervals; held-out AUC 0.71",
        "61% [34–83%]",
    ]
    for sentence in old:
        assert analyst_words(sentence), sentence
    d = next(x for x in synthetic.review if x.gaps)
    page = tmp_path / "loud.html.j2"
    page.write_text('{% extends "builtin/deal_review.html.j2" %}'
                    "{% block content %}{{ super() }}<p>{{ deal.gaps[0].evidence }}</p>{% endblock %}")
    plain, _ = split_fold(str(render_report(d, template=page)), "html")  # type: ignore[arg-type]
    assert {"an n= count", "a q-value"} <= set(analyst_words(plain))


# --- the sentences -------------------------------------------------------------------------------


def test_a_deal_review_says_the_chance_why_what_to_do_by_when_and_who(synthetic: Source) -> None:
    r = synthetic.review
    d = r[r.case_ids[0]]
    assert d.chance_text == (f"{d.probability:.0%} (likely between {d.probability_low:.0%} and "
                             f"{d.probability_high:.0%})")
    md = str(render_report(d, format="md"))  # type: ignore[arg-type]
    a = d.actions[0]
    assert f"Chance to win: {d.chance_text}." in md
    assert f"Why: {d.reasons[0].text}" in md
    assert f"Next: {a.what} ({a.owner}) by {a.by:%Y-%m-%d}." in md
    for f in d.flags:
        assert f"**{f.label}:** {f.text}" in md
    # a step the deal's owner does names them, never 'deal owner'
    solo = next(x for x in r if any(x.owner and act.owner == "deal owner" for act in x.actions))
    html = str(render_report(solo))  # type: ignore[arg-type]
    assert "deal owner" not in html and html.count(f"<td>{solo.owner}</td>") >= 1


def test_ages_read_the_right_way_round(synthetic: Source) -> None:
    """An age at the 1st percentile of won deals' time to close is 'just started', not 'older than 1%'."""
    young = next(d for d in synthetic.review if d.age_percentile is not None and d.age_percentile <= 0.1)
    md = str(render_report(young, format="md"))  # type: ignore[arg-type]
    assert "**Age:** " in md and "just started" in split_fold(md, "md")[0]
    assert f"older than {young.age_percentile:.0%} of won deals were when they closed" in split_fold(md, "md")[1]


def test_names_and_accounts_show_beside_ids(named: Source) -> None:
    r = named.review
    d = r[r.case_ids[0]]
    assert d.name == f"Renewal {d.case_id}" and d.account is not None and d.account.startswith("Acme ")
    label = f"{d.case_id} · Renewal {d.case_id} · {d.account}"
    assert d.label == label and label in repr(d) and label in str(d) and label in d._repr_html_()
    assert f"<h1>{label}</h1>" in str(render_report(d))  # type: ignore[arg-type]
    pipeline = str(render_report(r))  # type: ignore[arg-type]
    assert f'<span class="note">Renewal {d.case_id} · {d.account}</span>' in pipeline
    assert f"| {d.case_id} · Renewal {d.case_id} · {d.account} |" in str(render_report(r, format="md"))  # type: ignore[arg-type]
    assert f"Renewal {d.case_id}" in r._repr_html_()
    frame = r.to_frame()
    assert list(frame.columns[:4]) == ["rank", "case_id", "name", "account"]


def test_without_name_columns_the_id_stands_alone(synthetic: Source) -> None:
    r = synthetic.review
    d = r[r.case_ids[0]]
    assert d.name is None and d.account is None and d.label == d.case_id
    assert r.to_frame()[["name", "account"]].isna().all().all()


def test_a_goal_and_a_plan_print_as_sentences(synthetic: Source) -> None:
    g = Goal("2024-06-30", success="order form signed", measure="signed order form",
             seller_owner="Ana", buyer_owner="Bo")
    assert str(g) == ("Win by 30 June 2024: order form signed; measured by signed order form; "
                      "owned by Ana (seller) and Bo (buyer)")
    assert repr(g) == f"<Goal {g}>" and str(g) in g._repr_html_()
    assert g.sentence("project").startswith("Finish by 30 June 2024: order form signed;")
    assert g.sentence("project").endswith("owned by Ana (delivery team) and Bo (customer)")
    assert str(Goal("2024-06-30")) == "Win by 30 June 2024"
    assert "Dana (AE, seller)" in str(Goal("2024-06-30", seller_owner="Dana (AE)"))
    p = synthetic.plan
    text = str(p)
    assert text.startswith(f"Plan for {p.case_id}. Goal: {p.goal.sentence(p.kind)}.")
    assert p.message in text and not analyst_words(text)
    assert f"Goal: {p.goal.sentence(p.kind)}" in p._repr_html_()
    for fmt in ("html", "md"):
        page = str(render_report(p, format=fmt))  # type: ignore[arg-type]
        assert p.goal.sentence(p.kind) in page.replace("&#39;", "'")


def test_notebook_views_use_labels_not_flag_ids(synthetic: Source) -> None:
    r = synthetic.review
    flagged = [d for d in r if d.flags][:5]
    for d in flagged:
        plain, _ = split_fold(d._repr_html_().replace("<details>", '<details class="analyst">'), "html")
        assert not analyst_words(plain), analyst_words(plain)
        assert all(f.label in plain for f in d.flags)
    plain, _ = split_fold(r._repr_html_().replace("<details>", '<details class="analyst">'), "html")
    assert not analyst_words(plain), analyst_words(plain)
