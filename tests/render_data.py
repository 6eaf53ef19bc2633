"""Fixed inputs for the rendering tests: a small synthetic review and a hostile one.

Everything is seeded and dated by the generator (no clock), so the same call gives the same
review on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

import salesproc
from salesproc.history import History
from salesproc.plan import Plan
from salesproc.review import Review
from salesproc.template import ProcessTemplate

#: payloads a hostile export could carry; every one must come out as inert text
SCRIPT = "<script>window.__pwned=1</script>"
IMG = "\"><img src=x onerror=\"window.__pwned=2;alert('img')\">"
JS_LINK = "javascript:window.__pwned=3"
MD_LINK = "[click me](javascript:window.__pwned=4)"
TRAVERSAL = "../../etc/passwd"
OWNER = "<img src=x onerror=alert(document.domain)>"
ACTIVITY = "Champion <script>window.__pwned=5</script>identified"
ACTIVITY_LINK = "Economic buyer [met](javascript:window.__pwned=6)"
MILESTONE = "Proposal <b>$5</b>"
HOSTILE_IDS = (TRAVERSAL, SCRIPT, IMG, JS_LINK, MD_LINK, "..\\..\\windows\\win.ini", "/etc/shadow")


@dataclass(frozen=True)
class Fixture:
    history: History
    as_of: pd.Timestamp
    template: ProcessTemplate
    review: Review


def small_review(n: int = 1000, seed: int = 7) -> Fixture:
    """A synthetic history of ``n`` deals, its template and the review of its open deals."""
    h, truth = salesproc.synthetic_history(n, seed=seed)
    t = salesproc.derive_template(h, as_of=truth.as_of, name="Synthetic deals")
    r = salesproc.review_deals(h, t, as_of=truth.as_of)
    return Fixture(h, truth.as_of, t, r)


def small_plan(fx: Fixture) -> Plan:
    """A backwards plan for the pipeline's top deal, six weeks out."""
    case = fx.review.case_ids[0]
    goal = salesproc.Goal(fx.as_of.normalize() + pd.Timedelta(days=42), success="Order form signed",
                          measure="countersigned order form", seller_owner="Dana (AE)", buyer_owner="Sam (CFO)")
    return salesproc.plan_backwards(fx.template, goal=goal, as_of=fx.as_of, case=case, history=fx.history,
                                    seed=0, n_simulations=2_000)


def hostile_review(n: int = 1000, seed: int = 7) -> Fixture:
    """The synthetic history with script-injection payloads as case ids, owners, activity and
    milestone names, derived and reviewed like any other."""
    h, truth = salesproc.synthetic_history(n, seed=seed)
    cases = h.cases.copy()
    events = h.events.copy()
    open_ids = cases.loc[cases["outcome"] == "open", "case_id"].astype(str).tolist()
    rename = dict(zip(open_ids, HOSTILE_IDS))
    cases["case_id"] = cases["case_id"].astype(str).replace(rename)
    events["case_id"] = events["case_id"].astype(str).replace(rename)
    owners = cases["owner"].astype(object)
    owners.loc[cases["case_id"].isin(list(rename.values()))] = OWNER
    cases["owner"] = owners
    names = events["name"].astype(str).replace(
        {"Champion identified": ACTIVITY, "Economic buyer met": ACTIVITY_LINK, "Proposal": MILESTONE}
    )
    events["name"] = names
    hostile = History.from_frames(cases, events, report=h.report)
    t = salesproc.derive_template(hostile, as_of=truth.as_of, name=f"Deals {SCRIPT}")
    r = salesproc.review_deals(hostile, t, as_of=truth.as_of)
    return Fixture(hostile, truth.as_of, t, r)
