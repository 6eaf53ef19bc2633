"""Synthetic deal and project histories with a known, planted truth.

:func:`synthetic_history` draws cases from a fully specified process and returns the
:class:`~salesproc.history.History` together with a :class:`PlantedTruth` that says what was
planted. Later steps (deriving a template, reviewing deals, backtesting, calibrating plans) test
themselves against that truth, so the rules below are a contract.

The process (deals)
-------------------
Stages (milestones, in order): Qualify, Discovery, Solution, Proposal, Negotiation. Each case
starts at the first stage at ``created``; its first event is that stage's milestone.

1. **Time in stage.** Every visit of stage ``i`` lasts ``median_days[i] * exp(sigma[i] * Z)`` days
   (``Z`` standard normal), a lognormal with median ``median_days[i]``. For deals the duration
   depends on nothing else: not on the outcome, the path or the activities. A Kaplan-Meier
   estimate of time in stage (visits still running at ``as_of`` censored) recovers
   ``median_days``.
2. **At the end of the visit**, in this order:

   * *loss*: with probability ``p`` the case is lost and closes at that moment.
     ``p = 1 / (1 + odds)`` with ``odds = (1 - loss_prob[i]) / loss_prob[i] * prod(OR_a)``, the
     product over the effect activities ``a`` the case has already done at a stage before ``i``
     (``loss_prob`` is the loss probability of a case with no active effect);
   * else *regression* to stage ``i - 1`` with probability ``regression_prob``, only from the
     stages in ``regression_from`` (Solution and later) and at most once per case. The milestone
     of ``i - 1`` is recorded again (a revisit); from that revisit the case always moves on to
     ``i`` (a second revisit), never skipping;
   * else a *skip* with probability ``skip_prob`` to stage ``i + 2`` where that stage exists (the
     skipped milestone has no event; the first stage is never skipped: every case starts there);
   * else *forward* to ``i + 1``; after the last stage the case is won and closes at that moment.

   Entering a stage records its milestone event at the entry time. Won and lost are the case
   outcome (``cases.outcome`` and ``cases.closed``), not events.

Activities (events of type ``activity``)
----------------------------------------
* **Effect activities** (``truth.effects``): each has a usual stage ``s``, a probability ``q``
  and an odds ratio ``OR`` on surviving (not being lost at) every stage after ``s``. A case does
  it with probability ``q`` (independently of everything else), at a uniform random fraction of
  its first visit of ``s``; a case that never visits ``s`` (it skipped it) cannot do it. The
  effect applies at the end of every later stage visit of a higher stage. A landmark comparison
  (among cases that reached milestone ``m``, the success rate of those that did the activity
  before ``m`` against those that did not) shows the effect at ``truth.expected_flag_milestone``
  (the stage right after ``s``) and at later milestones.
* **Null activities** (``truth.nulls``, plus the effect activities when ``effects="none"``): the
  same mechanism with no effect at all.
* **Decoys** (``truth.decoys``): no effect, but each is a Poisson process with ``rate_per_day``
  over the case's whole life, of which the first ``max_count`` events are kept. Long-lived cases
  (won deals) do them more often, so a naive "ever did it" comparison favours them; the count
  before a landmark depends only on the time already spent, so a landmark comparison shows
  nothing.

Owners: every event's ``role`` is the activity's usual role; the owner is the case owner for the
``AE`` role (``PM`` for projects) and otherwise a person of that role (the rep's manager for
``Manager``). Milestones are owned by the case owner.

Open cases and ``as_of``
------------------------
Complete trajectories are drawn first. ``created`` is then uniform over a span of ``span_days``
days from ``start``, with ``span_days`` the mean case duration divided by ``open_share`` (rounded
up to whole days), and ``as_of = start + span_days``. Everything after ``as_of`` is cut: later
events are removed and cases not closed by then are open (no ``closed``). About ``open_share`` of
the cases are open. Cases are numbered in order of creation (``D0001``, ...; width by
``n_cases``). Owner (12 people), segment (SMB 50 %, Mid-Market 35 %, Enterprise 15 %) and
amount (lognormal by segment, rounded to 100) do not influence the process. Timestamps are
rounded to the second.

The numbers (deals)
-------------------
=================  ======  ======  =====  ==================================================
stage              median  sigma   loss   activities done during it (probability, odds ratio)
=================  ======  ======  =====  ==================================================
Qualify            6 d     0.6     0.25   Champion identified (0.45, 1.7), *LinkedIn
                                          connection (0.50)*
Discovery          12 d    0.7     0.25   Economic buyer met (0.40, 2.0), Single-threaded
                                          contact (0.35, 0.6), *Case study sent (0.40)*
Solution           15 d    0.7     0.20   Technical validation (0.50, 1.8), Discount offered
                                          unprompted (0.40, 0.55), *Demo recorded (0.35)*
Proposal           10 d    0.8     0.20   Mutual action plan agreed (0.50, 2.2)
Negotiation        8 d     0.7     0.20
=================  ======  ======  =====  ==================================================

Null activities in italics. Skips 0.08, regressions 0.03 (from Solution on). Decoys per day of
case life: Follow-up email 0.08 (first 10 kept), CRM notes updated 0.055 (8), Internal sync 0.04
(6). About 12 events per deal; at 5,000 deals a landmark comparison with Fisher's exact test and
Benjamini-Hochberg at q < 0.05 flags each effect at its expected milestone in at least 99 of 100
seeds (seeds 0-99 checked), while decoy and null tests are flagged at about 1.5 %.

Projects (``kind="project"``)
-----------------------------
Stages Kickoff, Requirements, Design, Build, Test, Go-live, with the same path rules (skips,
regressions from Design on). There are no losses, only a small per-stage probability
``loss_prob`` of failure (outcome ``failed``). ``target_date = created + planned_days`` with
``planned_days = planned_factor * sum(median_days)``; a finished project is ``on_time`` if
``closed <= target_date`` and ``late`` otherwise. Effect activities act on durations instead of
losses: every later stage visit lasts ``duration_factor`` times as long (a factor below 1 shortens,
direction ``+``; above 1 lengthens, direction ``-``): Sponsor named (Kickoff, 0.50, x0.85), Risk
review held (Requirements, 0.45, x0.8), Architecture review passed (Design, 0.40, x0.8), Test
plan agreed (Design, 0.50, x0.85), Scope change accepted (Design, 0.30, x1.3), Key engineer
reassigned (Requirements, 0.30, x1.25). Medians 5, 12, 14, 30, 12 and 4 days; failure 0.02 per
stage; skips 0.04; regressions 0.05 (from Design on); planned duration 1.15 x the sum of the
medians. So for projects time in stage depends on the
activities done earlier; ``median_days`` is the median for a case with none of them. Nulls and
decoys work as for deals, with one difference a reader must know: a project's lateness depends
on the time it has already taken, so decoys (which mark time spent) predict lateness even under
a landmark comparison; only a comparison of projects of similar elapsed time shows them null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from salesproc.errors import ParameterError
from salesproc.history._history import TS_DTYPE, History, LoadReport

__all__ = ["PlantedActivity", "PlantedEffect", "PlantedTruth", "synthetic_history"]

NS_PER_S = 1_000_000_000
S_PER_DAY = 86_400

Direction = Literal["+", "-"]


@dataclass(frozen=True)
class PlantedEffect:
    """An activity that changes the outcome: its usual stage, how often it is done and its effect.

    Deals carry ``odds_ratio`` (on not being lost at each stage after ``stage``); projects carry
    ``duration_factor`` (on the duration of each stage visit after ``stage``).
    """

    name: str
    stage: str
    probability: float
    direction: Direction
    role: str
    odds_ratio: float | None = None
    duration_factor: float | None = None

    def __post_init__(self) -> None:
        if (self.odds_ratio is None) == (self.duration_factor is None):
            raise ParameterError(
                f"PlantedEffect {self.name!r} must set exactly one of odds_ratio (deals) and "
                f"duration_factor (projects). Got odds_ratio={self.odds_ratio!r}, "
                f"duration_factor={self.duration_factor!r} instead."
            )
        if not 0.0 < self.probability <= 1.0:
            raise ParameterError(
                f"The probability of PlantedEffect {self.name!r} must be in (0, 1]. "
                f"Got {self.probability!r} instead."
            )
        size = self.odds_ratio if self.odds_ratio is not None else self.duration_factor
        assert size is not None
        if not size > 0:
            raise ParameterError(f"The effect size of {self.name!r} must be positive. Got {size!r} instead.")
        good = size > 1 if self.odds_ratio is not None else size < 1
        want = "+" if good else "-"
        if size != 1 and self.direction != want:
            raise ParameterError(
                f"The direction of PlantedEffect {self.name!r} must be {want!r} for "
                f"{'odds_ratio' if self.odds_ratio is not None else 'duration_factor'}={size}. "
                f"Got {self.direction!r} instead."
            )


@dataclass(frozen=True)
class PlantedActivity:
    """Any generated activity: ``kind`` is ``effect``, ``null`` or ``decoy``.

    Effects and nulls have a ``stage`` and a ``probability``; decoys a ``rate_per_day`` over the
    case's life and a ``max_count`` (the first events of the process that are kept).
    """

    name: str
    kind: Literal["effect", "null", "decoy"]
    role: str
    stage: str | None = None
    probability: float | None = None
    rate_per_day: float | None = None
    max_count: int | None = None


@dataclass(frozen=True)
class PlantedTruth:
    """What :func:`synthetic_history` planted; see the module docstring for the exact rules.

    Examples
    --------
    >>> from salesproc.datasets import synthetic_history
    >>> _, truth = synthetic_history(50, seed=0)
    >>> truth.effect_names("-")
    ['Discount offered unprompted', 'Single-threaded contact']
    >>> truth.expected_flag_milestone("Economic buyer met")
    'Solution'
    """

    kind: str
    stages: list[str]
    median_days: dict[str, float]
    sigma: dict[str, float]
    loss_prob: dict[str, float]
    skip_prob: float
    regression_prob: float
    regression_from: list[str]
    effects: dict[str, PlantedEffect]
    nulls: list[str]
    decoys: list[str]
    activities: dict[str, PlantedActivity]
    as_of: pd.Timestamp
    start: pd.Timestamp
    span_days: float
    n_cases: int
    seed: int
    open_share: float
    planned_days: float | None = None
    roles: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fail_prob(self) -> dict[str, float]:
        """Projects: the per-stage failure probability (the same numbers as ``loss_prob``)."""
        return dict(self.loss_prob)

    def effect_names(self, direction: Direction | None = None) -> list[str]:
        """Names of the planted effects, optionally only those helping (``"+"``) or hurting (``"-"``)."""
        if direction not in (None, "+", "-"):
            raise ParameterError(
                f"The 'direction' parameter of effect_names must be '+', '-' or None. Got {direction!r} instead."
            )
        return [n for n, e in self.effects.items() if direction is None or e.direction == direction]

    def expected_flag_milestone(self, name: str) -> str | None:
        """The milestone right after the activity's usual stage (``None`` after the last stage).

        A landmark comparison at this milestone is the first one that can show the activity's
        effect. Defined for effects and null activities; decoys have no stage.
        """
        act = self.activities.get(name)
        if act is None:
            raise KeyError(f"no activity {name!r} was planted; planted: {sorted(self.activities)}")
        if act.stage is None:
            raise ParameterError(f"{name!r} is a decoy: it has no usual stage, hence no milestone to flag.")
        i = self.stages.index(act.stage)
        return self.stages[i + 1] if i + 1 < len(self.stages) else None


# --- the two processes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Process:
    kind: str
    prefix: str
    stages: tuple[str, ...]
    median_days: tuple[float, ...]
    sigma: tuple[float, ...]
    loss_prob: tuple[float, ...]
    skip_prob: float
    regression_prob: float
    regression_min: int  # first stage index that may regress
    effects: tuple[PlantedEffect, ...]
    nulls: tuple[PlantedActivity, ...]
    decoys: tuple[PlantedActivity, ...]
    owner_role: str
    owners: tuple[str, ...]
    role_people: Mapping[str, tuple[str, ...]]
    amount_median: Mapping[str, float]
    amount_sigma: float
    planned_factor: float | None = None


_SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
_SEGMENT_P = (0.50, 0.35, 0.15)

_DEALS = _Process(
    kind="deal",
    prefix="D",
    stages=("Qualify", "Discovery", "Solution", "Proposal", "Negotiation"),
    median_days=(6.0, 12.0, 15.0, 10.0, 8.0),
    sigma=(0.6, 0.7, 0.7, 0.8, 0.7),
    loss_prob=(0.25, 0.25, 0.20, 0.20, 0.20),
    skip_prob=0.08,
    regression_prob=0.03,
    regression_min=2,
    effects=(
        PlantedEffect("Champion identified", "Qualify", 0.45, "+", "AE", odds_ratio=1.7),
        PlantedEffect("Economic buyer met", "Discovery", 0.40, "+", "Exec", odds_ratio=2.0),
        PlantedEffect("Technical validation", "Solution", 0.50, "+", "SE", odds_ratio=1.8),
        PlantedEffect("Mutual action plan agreed", "Proposal", 0.50, "+", "AE", odds_ratio=2.2),
        PlantedEffect("Discount offered unprompted", "Solution", 0.40, "-", "AE", odds_ratio=0.55),
        PlantedEffect("Single-threaded contact", "Discovery", 0.35, "-", "AE", odds_ratio=0.6),
    ),
    nulls=(
        PlantedActivity("Case study sent", "null", "AE", stage="Discovery", probability=0.40),
        PlantedActivity("Demo recorded", "null", "SE", stage="Solution", probability=0.35),
        PlantedActivity("LinkedIn connection", "null", "AE", stage="Qualify", probability=0.50),
    ),
    decoys=(
        PlantedActivity("Follow-up email", "decoy", "AE", rate_per_day=0.08, max_count=10),
        PlantedActivity("Internal sync", "decoy", "Manager", rate_per_day=0.04, max_count=6),
        PlantedActivity("CRM notes updated", "decoy", "AE", rate_per_day=0.055, max_count=8),
    ),
    owner_role="AE",
    owners=(
        "Alice Moreau", "Ben Carter", "Chloe Nguyen", "Daniel Okafor", "Elena Rossi", "Farid Haddad",
        "Grace Kim", "Hugo Lambert", "Isabel Santos", "Jonas Weber", "Kavya Iyer", "Liam O'Brien",
    ),
    role_people={
        "SE": ("Priya Natarajan", "Tom Becker", "Lucia Fernandez", "Kenji Watanabe"),
        "Manager": ("Rachel Adams", "Marco Bianchi", "Sofia Lindqvist"),
        "Exec": ("Victoria Hale", "Samuel Osei"),
    },
    amount_median={"SMB": 8_000.0, "Mid-Market": 35_000.0, "Enterprise": 150_000.0},
    amount_sigma=0.6,
)

_PROJECTS = _Process(
    kind="project",
    prefix="P",
    stages=("Kickoff", "Requirements", "Design", "Build", "Test", "Go-live"),
    median_days=(5.0, 12.0, 14.0, 30.0, 12.0, 4.0),
    sigma=(0.5, 0.6, 0.6, 0.6, 0.6, 0.5),
    loss_prob=(0.02, 0.02, 0.02, 0.02, 0.02, 0.02),
    skip_prob=0.04,
    regression_prob=0.05,
    regression_min=2,
    effects=(
        PlantedEffect("Sponsor named", "Kickoff", 0.50, "+", "Sponsor", duration_factor=0.85),
        PlantedEffect("Risk review held", "Requirements", 0.45, "+", "PM", duration_factor=0.8),
        PlantedEffect("Architecture review passed", "Design", 0.40, "+", "Architect", duration_factor=0.8),
        PlantedEffect("Test plan agreed", "Design", 0.50, "+", "Engineer", duration_factor=0.85),
        PlantedEffect("Scope change accepted", "Design", 0.30, "-", "PM", duration_factor=1.3),
        PlantedEffect("Key engineer reassigned", "Requirements", 0.30, "-", "PM", duration_factor=1.25),
    ),
    nulls=(
        PlantedActivity("Newsletter mention", "null", "PM", stage="Build", probability=0.40),
        PlantedActivity("Team lunch", "null", "Engineer", stage="Requirements", probability=0.35),
        PlantedActivity("Slides shared", "null", "Architect", stage="Design", probability=0.50),
    ),
    decoys=(
        PlantedActivity("Status report sent", "decoy", "PM", rate_per_day=0.03, max_count=8),
        PlantedActivity("Internal sync", "decoy", "Engineer", rate_per_day=0.02, max_count=6),
        PlantedActivity("Timesheet reminder", "decoy", "PM", rate_per_day=0.015, max_count=6),
    ),
    owner_role="PM",
    owners=(
        "Anna Schmidt", "Bruno Costa", "Camille Martin", "David Cohen", "Emma Johansson", "Felix Wagner",
        "Hannah Muller", "Ivan Petrov", "Julia Novak", "Karim Mansour", "Laura Bianchi", "Mateo Garcia",
    ),
    role_people={
        "Engineer": ("Nina Kowalski", "Omar Siddiqui", "Pauline Girard", "Raj Patel", "Sara Eriksson"),
        "Architect": ("Thomas Reid", "Yuki Tanaka"),
        "Sponsor": ("Victor Almeida", "Wendy Zhou"),
    },
    amount_median={"SMB": 20_000.0, "Mid-Market": 80_000.0, "Enterprise": 300_000.0},
    amount_sigma=0.5,
    planned_factor=1.15,
)

_PROCESSES = {"deal": _DEALS, "project": _PROJECTS}


# --- the generator ---------------------------------------------------------------------------------

def synthetic_history(
    n_cases: int,
    *,
    seed: int,
    kind: str = "deal",
    open_share: float = 0.10,
    start: Any = "2023-01-01",
    effects: str | Mapping[str, PlantedEffect] = "default",
) -> tuple[History, PlantedTruth]:
    """Draw a history of deals or projects from a process whose truth is known.

    The rules (durations, losses, skips, regressions, planted effects, null activities, decoys,
    open cases) are in the module docstring of :mod:`salesproc.datasets._synthetic`; the returned
    :class:`PlantedTruth` records every number used.

    Parameters
    ----------
    n_cases
        Number of cases (deals or projects).
    seed
        Seed of ``numpy.random.default_rng``: the same seed gives the same history.
    kind
        ``"deal"`` (won / lost / open) or ``"project"`` (on_time / late / failed / open).
    open_share
        About this share of the cases is still open at ``truth.as_of`` (between 0 and 1, exclusive).
    start
        The earliest ``created`` date (UTC).
    effects
        ``"default"`` plants the built-in effects; ``"none"`` keeps those activities (same stages
        and probabilities) but with no effect, listing them among ``truth.nulls``; a mapping of
        name -> :class:`PlantedEffect` plants exactly those (odds ratios for deals, duration
        factors for projects).

    Returns
    -------
    tuple of (History, PlantedTruth)

    Examples
    --------
    >>> from salesproc.datasets import synthetic_history
    >>> history, truth = synthetic_history(200, seed=1)
    >>> len(history), sorted(history.cases["outcome"].unique().tolist())
    (200, ['lost', 'open', 'won'])
    >>> truth.stages[0], truth.median_days["Discovery"], truth.as_of > truth.start
    ('Qualify', 12.0, True)
    >>> bool((history.events["timestamp"] <= truth.as_of).all())
    True
    """
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < 1:
        raise ParameterError(
            f"The 'n_cases' parameter of synthetic_history must be a positive integer. Got {n_cases!r} instead."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(
            f"The 'seed' parameter of synthetic_history must be a non-negative integer. Got {seed!r} instead."
        )
    if kind not in _PROCESSES:
        raise ParameterError(
            f"The 'kind' parameter of synthetic_history must be 'deal' or 'project'. Got {kind!r} instead."
        )
    if isinstance(open_share, bool) or not isinstance(open_share, (int, float)) or not 0 < open_share < 1:
        raise ParameterError(
            "The 'open_share' parameter of synthetic_history must be a number between 0 and 1 "
            f"(exclusive). Got {open_share!r} instead."
        )
    try:
        t0 = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"The 'start' parameter of synthetic_history must be a date. Got {start!r} instead."
        ) from exc
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")

    proc = _PROCESSES[kind]
    planted, as_nulls = _resolve_effects(proc, effects)
    n = int(n_cases)
    rng = np.random.default_rng(int(seed))
    return _generate(proc, planted, as_nulls, n, rng, t0, float(open_share), int(seed))


def _resolve_effects(
    proc: _Process, effects: str | Mapping[str, PlantedEffect]
) -> tuple[tuple[PlantedEffect, ...], tuple[PlantedActivity, ...]]:
    """The effects to plant, and effect activities demoted to nulls (``effects="none"``)."""
    if isinstance(effects, str):
        if effects == "default":
            return proc.effects, ()
        if effects == "none":
            return (), tuple(
                PlantedActivity(e.name, "null", e.role, stage=e.stage, probability=e.probability)
                for e in proc.effects
            )
        raise ParameterError(
            "The 'effects' parameter of synthetic_history must be 'default', 'none' or a mapping of "
            f"name -> PlantedEffect. Got {effects!r} instead."
        )
    if not isinstance(effects, Mapping):
        raise ParameterError(
            "The 'effects' parameter of synthetic_history must be 'default', 'none' or a mapping of "
            f"name -> PlantedEffect. Got {type(effects).__name__} instead."
        )
    out = []
    taken = {a.name for a in proc.nulls + proc.decoys} | set(proc.stages)
    for name, eff in effects.items():
        if not isinstance(eff, PlantedEffect):
            raise ParameterError(
                f"The 'effects' parameter of synthetic_history must map names to PlantedEffect. "
                f"Got {type(eff).__name__} for {name!r} instead."
            )
        if eff.stage not in proc.stages:
            raise ParameterError(
                f"The stage of effect {name!r} must be one of {list(proc.stages)}. Got {eff.stage!r} instead."
            )
        if (eff.odds_ratio is None) != (proc.kind == "project"):
            need = "odds_ratio" if proc.kind == "deal" else "duration_factor"
            raise ParameterError(f"Effects on {proc.kind}s must set {need}. Got {eff!r} instead.")
        if name in taken:
            raise ParameterError(f"The effect name {name!r} is already used by a stage, null activity or decoy.")
        out.append(replace(eff, name=str(name)))
    return tuple(out), ()


@dataclass(frozen=True)
class _Catalogue:
    """What a case can record: event names and roles, and the staged activities (effects, then nulls)."""

    n_stages: int
    nulls: tuple[PlantedActivity, ...]
    staged_names: list[str]
    staged_stage: np.ndarray  # the stage index of each staged activity
    staged_q: np.ndarray  # the probability that a case does it
    staged_role: list[str]
    n_eff: int  # the first n_eff staged activities are the planted effects
    log_size: np.ndarray  # per effect: log odds ratio (deals) or log duration factor (projects)
    names: list[str]  # event names: stages first (milestones), then staged activities, then decoys
    roles: list[str]
    role_code: dict[str, int]


@dataclass(frozen=True)
class _Attributes:
    """Per case, in draw order: owner and segment (indices), amount, and the staged activities it does."""

    owner: np.ndarray
    segment: np.ndarray
    amount: np.ndarray
    does: np.ndarray  # (case, staged activity): done if the case visits the activity's stage


@dataclass
class _RawEvents:
    """Events in the chunks they are drawn in: case index, name code, days since the case was created."""

    case: list[np.ndarray] = field(default_factory=list)
    name: list[np.ndarray] = field(default_factory=list)
    days: list[np.ndarray] = field(default_factory=list)

    def add(self, case: np.ndarray, name: np.ndarray, days: np.ndarray) -> None:
        """Append one chunk of events."""
        self.case.append(case)
        self.name.append(name)
        self.days.append(days)


@dataclass
class _Walk:
    """Every case's state while its path is drawn, and the events drawn so far (arrays updated in place)."""

    stage: np.ndarray  # the stage of the current visit
    t: np.ndarray  # days since created at which the current visit began
    alive: np.ndarray
    regressed: np.ndarray  # the case has had its one regression
    revisit: np.ndarray  # the current visit was entered by a regression
    occurred: np.ndarray  # (case, staged activity): done already
    life: np.ndarray  # days from created to closed
    failed: np.ndarray  # lost (deals) or failed (projects)
    events: _RawEvents

    @classmethod
    def begin(cls, n: int, n_staged: int) -> _Walk:
        """Every case alive in its first visit of the first stage, at day 0."""
        return cls(
            stage=np.zeros(n, dtype=np.int64),
            t=np.zeros(n),
            alive=np.ones(n, dtype=bool),
            regressed=np.zeros(n, dtype=bool),
            revisit=np.zeros(n, dtype=bool),
            occurred=np.zeros((n, n_staged), dtype=bool),
            life=np.zeros(n),
            failed=np.zeros(n, dtype=bool),
            events=_RawEvents(),
        )


@dataclass(frozen=True)
class _Calendar:
    """When the cases happen: span, ``as_of``, created and closed (ns), and the order of creation."""

    span_days: float
    start_ns: int
    as_of_ns: int
    created_ns: np.ndarray
    closed_ns: np.ndarray
    is_closed: np.ndarray
    order: np.ndarray  # order[position by creation] = index in draw order
    rank: np.ndarray  # rank[index in draw order] = position by creation


@dataclass(frozen=True)
class _Events:
    """Events as parallel arrays: case, name code, timestamp (ns), owner (index into people), role code."""

    case: np.ndarray
    name: np.ndarray
    ts: np.ndarray
    owner: np.ndarray
    role: np.ndarray

    def take(self, ix: np.ndarray) -> _Events:
        """The events at ``ix`` (positions or a boolean mask)."""
        return _Events(self.case[ix], self.name[ix], self.ts[ix], self.owner[ix], self.role[ix])


@dataclass(frozen=True)
class _Outcomes:
    """Per case, in draw order: the outcome and the target date (ns; projects), and the planned days."""

    outcome: np.ndarray
    target_ns: np.ndarray
    planned_days: float | None


def _generate(
    proc: _Process,
    planted: tuple[PlantedEffect, ...],
    extra_nulls: tuple[PlantedActivity, ...],
    n: int,
    rng: np.random.Generator,
    start: pd.Timestamp,
    open_share: float,
    seed: int,
) -> tuple[History, PlantedTruth]:
    """Draw the cases, walk their paths, add decoys, place everything on the calendar, build the frames.

    The random draws come in a fixed order (case attributes, visits, decoys, creation times, event
    owners), which is what makes a seed give the same history: keep it.
    """
    from salesproc.history._history import finalize

    cat = _catalogue(proc, planted, extra_nulls)
    attrs = _draw_attributes(proc, cat, n, rng)
    walk = _walk_paths(proc, cat, attrs.does, rng)
    _draw_decoys(proc, cat, walk, rng)
    cal = _calendar(walk.life, open_share, start, rng)
    case, name, ts = _cut_at_as_of(walk.events, cal)
    events = _Events(case, name, ts, *_event_owners(proc, cat, attrs.owner, case, name, rng))
    outcomes = _outcomes(proc, walk.failed, cal)
    ids = _case_ids(proc.prefix, n)
    cases_df = _cases_frame(proc, attrs, cal, outcomes, ids)
    events_df = _events_frame(proc, cat, _sorted_events(events, cal, len(cat.names)), ids)
    report = LoadReport(
        source=f"synthetic_history(n_cases={n}, seed={seed}, kind={proc.kind!r})",
        rows_read=len(events_df),
        rows_loaded=len(events_df),
    )
    history = finalize(cases_df, events_df, report)
    truth = _truth(
        proc, planted, cat.nulls, cal, outcomes.planned_days, n=n, start=start, open_share=open_share, seed=seed
    )
    return history, truth


def _catalogue(
    proc: _Process, planted: tuple[PlantedEffect, ...], extra_nulls: tuple[PlantedActivity, ...]
) -> _Catalogue:
    """The event names, roles and staged activities of the process (no random draws)."""
    stage_ix = {s: i for i, s in enumerate(proc.stages)}
    nulls = extra_nulls + proc.nulls
    # activities done during a stage: effects first, then nulls
    staged_names = [e.name for e in planted] + [a.name for a in nulls]
    staged_role = [e.role for e in planted] + [a.role for a in nulls]
    if proc.kind == "deal":
        log_size = np.log(np.array([e.odds_ratio or 1.0 for e in planted], dtype=float))
    else:
        log_size = np.log(np.array([e.duration_factor or 1.0 for e in planted], dtype=float))
    roles = sorted({proc.owner_role, *staged_role, *(d.role for d in proc.decoys)})
    return _Catalogue(
        n_stages=len(proc.stages),
        nulls=nulls,
        staged_names=staged_names,
        staged_stage=np.array([stage_ix[e.stage] for e in planted] + [stage_ix[a.stage or ""] for a in nulls]),
        staged_q=np.array([e.probability for e in planted] + [a.probability or 0.0 for a in nulls]),
        staged_role=staged_role,
        n_eff=len(planted),
        log_size=log_size,
        names=list(proc.stages) + staged_names + [d.name for d in proc.decoys],
        roles=roles,
        role_code={r: i for i, r in enumerate(roles)},
    )


def _draw_attributes(proc: _Process, cat: _Catalogue, n: int, rng: np.random.Generator) -> _Attributes:
    """Draw each case's owner, segment, amount and staged activities (before the paths, so they are stable)."""
    owner = rng.integers(0, len(proc.owners), size=n)
    segment = rng.choice(len(_SEGMENTS), size=n, p=_SEGMENT_P)
    med = np.array([proc.amount_median[s] for s in _SEGMENTS])[segment]
    amount = np.round(med * np.exp(proc.amount_sigma * rng.standard_normal(n)), -2)
    amount = np.maximum(amount, 100.0)
    does = rng.random((n, len(cat.staged_names))) < cat.staged_q
    return _Attributes(owner, segment, amount, does)


def _walk_paths(proc: _Process, cat: _Catalogue, does: np.ndarray, rng: np.random.Generator) -> _Walk:
    """Draw every case's path: a loop over visits (at most K + 2), vectorised over cases."""
    walk = _Walk.begin(len(does), len(cat.staged_names))
    for _ in range(cat.n_stages + 2):
        idx = np.flatnonzero(walk.alive)
        if len(idx) == 0:
            break
        _visit(proc, cat, does, walk, idx, rng)
    assert not walk.alive.any()
    return walk


def _visit(
    proc: _Process, cat: _Catalogue, does: np.ndarray, walk: _Walk, idx: np.ndarray, rng: np.random.Generator
) -> None:
    """One visit of each running case ``idx``: its milestone event, duration, activities and end."""
    st = walk.stage[idx]
    entry = walk.t[idx]
    walk.events.add(idx, st, entry)
    # effects active in this visit: done earlier, at a stage before this one
    active = walk.occurred[idx, : cat.n_eff] & (cat.staged_stage[: cat.n_eff][None, :] < st[:, None])
    dur = _visit_days(proc, cat, st, active, rng)
    _visit_activities(cat, does, walk, idx, entry, dur, rng)
    _end_visit(proc, cat, walk, idx, entry + dur, active, rng)


def _visit_days(
    proc: _Process, cat: _Catalogue, st: np.ndarray, active: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw how long each visit lasts: lognormal by stage, for projects scaled by the active effects."""
    med_days = np.array(proc.median_days)
    sig = np.array(proc.sigma)
    dur = med_days[st] * np.exp(sig[st] * rng.standard_normal(len(st)))
    if proc.kind == "project" and cat.n_eff:
        dur = dur * np.exp(active.astype(float) @ cat.log_size)
    return dur


def _visit_activities(
    cat: _Catalogue,
    does: np.ndarray,
    walk: _Walk,
    idx: np.ndarray,
    entry: np.ndarray,
    dur: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Record the staged activities done during the first visit of their stage, at a uniform fraction of it."""
    st = walk.stage[idx]
    frac = rng.random((len(idx), len(cat.staged_names)))
    happen = does[idx] & ~walk.occurred[idx] & (cat.staged_stage[None, :] == st[:, None])
    hc, ha = np.nonzero(happen)
    walk.events.add(idx[hc], cat.n_stages + ha, entry[hc] + frac[hc, ha] * dur[hc])
    walk.occurred[idx[hc], ha] = True


def _end_visit(
    proc: _Process,
    cat: _Catalogue,
    walk: _Walk,
    idx: np.ndarray,
    end: np.ndarray,
    active: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """End each visit by loss (failure), regression, skip or moving forward; close the cases that end."""
    K = cat.n_stages
    st = walk.stage[idx]
    base_odds = np.array([(1 - p) / p for p in proc.loss_prob])
    odds = base_odds[st]
    if proc.kind == "deal" and cat.n_eff:
        odds = odds * np.exp(active.astype(float) @ cat.log_size)
    u = rng.random((len(idx), 3))
    lost = u[:, 0] < 1.0 / (1.0 + odds)
    can_reg = ~lost & (st >= proc.regression_min) & ~walk.regressed[idx]
    reg = can_reg & (u[:, 1] < proc.regression_prob)
    can_skip = ~lost & ~reg & ~walk.revisit[idx] & (st + 2 <= K - 1)
    skip = can_skip & (u[:, 2] < proc.skip_prob)
    nxt = np.where(reg, st - 1, np.where(skip, st + 2, st + 1))
    done = lost | (nxt >= K)
    fin = idx[done]
    walk.life[fin] = end[done]
    walk.failed[fin] = lost[done]
    walk.alive[fin] = False
    go = ~done
    walk.stage[idx[go]] = nxt[go]
    walk.t[idx[go]] = end[go]
    walk.regressed[idx[reg]] = True
    walk.revisit[idx] = reg


def _draw_decoys(proc: _Process, cat: _Catalogue, walk: _Walk, rng: np.random.Generator) -> None:
    """Add each decoy's events: the first ``max_count`` of a Poisson process over the case's life."""
    first_code = cat.n_stages + len(cat.staged_names)
    for j, d in enumerate(proc.decoys):
        cap = int(d.max_count or 1)
        rate = float(d.rate_per_day or 0.0)
        times = np.cumsum(rng.exponential(1.0 / rate, size=(len(walk.life), cap)), axis=1)
        dc, dk = np.nonzero(times < walk.life[:, None])
        walk.events.add(dc, np.full(len(dc), first_code + j), times[dc, dk])


def _calendar(life: np.ndarray, open_share: float, start: pd.Timestamp, rng: np.random.Generator) -> _Calendar:
    """Draw ``created`` uniform over a span chosen so that about ``open_share`` of the cases are open."""
    n = len(life)
    span_days = float(math.ceil(float(life.mean()) / open_share))
    created_s = np.floor(rng.random(n) * span_days * S_PER_DAY).astype(np.int64)
    order = np.argsort(created_s, kind="stable")  # number cases in order of creation
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    start_ns = int(start.value)
    as_of_ns = start_ns + int(span_days * S_PER_DAY) * NS_PER_S
    created_ns = start_ns + created_s * NS_PER_S
    closed_ns = created_ns + np.round(life * S_PER_DAY).astype(np.int64) * NS_PER_S
    return _Calendar(
        span_days=span_days,
        start_ns=start_ns,
        as_of_ns=as_of_ns,
        created_ns=created_ns,
        closed_ns=closed_ns,
        is_closed=closed_ns <= as_of_ns,
        order=order,
        rank=rank,
    )


def _cut_at_as_of(raw: _RawEvents, cal: _Calendar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The events' case, name code and timestamp (ns), without those after ``as_of``."""
    e_case = np.concatenate(raw.case)
    e_name = np.concatenate(raw.name)
    e_ts = cal.created_ns[e_case] + np.round(np.concatenate(raw.days) * S_PER_DAY).astype(np.int64) * NS_PER_S
    keep = e_ts <= cal.as_of_ns
    return e_case[keep], e_name[keep], e_ts[keep]


def _people(proc: _Process) -> tuple[list[str], dict[str, int]]:
    """Everyone who can own an event (owners, then each role's people by role) and where each role begins."""
    people = list(proc.owners) + [p for r in sorted(proc.role_people) for p in proc.role_people[r]]
    first_of_role: dict[str, int] = {}
    pos = len(proc.owners)
    for r in sorted(proc.role_people):
        first_of_role[r] = pos
        pos += len(proc.role_people[r])
    return people, first_of_role


def _event_owners(
    proc: _Process,
    cat: _Catalogue,
    owner: np.ndarray,
    case: np.ndarray,
    name: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw who did each event: the case owner for the owner role, else a person of that role."""
    _, first_of_role = _people(proc)
    name_role = np.array(
        [cat.role_code[proc.owner_role]] * cat.n_stages
        + [cat.role_code[r] for r in cat.staged_role]
        + [cat.role_code[d.role] for d in proc.decoys]
    )
    e_role = name_role[name]
    e_owner = owner[case].copy()
    pick = rng.random(len(case))
    for r, members in proc.role_people.items():
        if r not in cat.role_code:
            continue
        m = e_role == cat.role_code[r]
        if not m.any():
            continue
        if r == "Manager":  # the rep's own manager: reps are split evenly between managers
            e_owner[m] = first_of_role[r] + owner[case[m]] * len(members) // len(proc.owners)
        else:
            e_owner[m] = first_of_role[r] + (pick[m] * len(members)).astype(np.int64)
    return e_owner, e_role


def _outcomes(proc: _Process, failed: np.ndarray, cal: _Calendar) -> _Outcomes:
    """Each case's outcome (``open`` when not closed by ``as_of``) and, for projects, its target date."""
    planned_days: float | None = None
    target_ns = np.full(len(failed), np.iinfo(np.int64).min, dtype=np.int64)
    if proc.kind == "deal":
        outcome = np.where(failed, "lost", "won")
    else:
        planned_days = float(proc.planned_factor or 1.0) * float(sum(proc.median_days))
        target_ns = cal.created_ns + round(planned_days * S_PER_DAY) * NS_PER_S
        outcome = np.where(failed, "failed", np.where(cal.closed_ns <= target_ns, "on_time", "late"))
    outcome = np.where(cal.is_closed, outcome, "open")
    return _Outcomes(outcome, target_ns, planned_days)


def _case_ids(prefix: str, n: int) -> np.ndarray:
    """Case ids ``D0001``... in order of creation, zero-padded to the width of ``n`` (at least 4)."""
    width = max(4, len(str(n)))
    return np.strings.add(prefix, np.strings.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)


def _cases_frame(
    proc: _Process, attrs: _Attributes, cal: _Calendar, outcomes: _Outcomes, ids: np.ndarray
) -> pd.DataFrame:
    """The cases frame, in order of creation."""
    inv = cal.order  # inv[new_position] = old index
    nat = np.iinfo(np.int64).min
    return pd.DataFrame(
        {
            "case_id": pd.array(ids, dtype="str"),
            "kind": proc.kind,
            "outcome": outcomes.outcome[inv],
            "created": _ts(cal.created_ns[inv]),
            "closed": _ts(np.where(cal.is_closed, cal.closed_ns, nat)[inv]),
            "amount": attrs.amount[inv],
            "owner": pd.array(np.array(proc.owners, dtype=object)[attrs.owner[inv]], dtype="str"),
            "segment": pd.array(np.array(_SEGMENTS, dtype=object)[attrs.segment[inv]], dtype="str"),
            "target_date": _ts(outcomes.target_ns[inv]),
        }
    )


def _sorted_events(events: _Events, cal: _Calendar, n_names: int) -> _Events:
    """Events with cases numbered by creation, sorted by case, time and name, same-second repeats dropped."""
    new_case = cal.rank[events.case]
    ev_order = _event_order(new_case, events.ts, events.name, cal.start_ns, n_names)
    ev = replace(events, case=new_case).take(ev_order)
    # two events of one name in the same second (decoys can) are one event, as the loader sees it
    dup = np.r_[False, (ev.case[1:] == ev.case[:-1]) & (ev.ts[1:] == ev.ts[:-1]) & (ev.name[1:] == ev.name[:-1])]
    return ev.take(~dup) if dup.any() else ev


def _events_frame(proc: _Process, cat: _Catalogue, ev: _Events, ids: np.ndarray) -> pd.DataFrame:
    """The events frame (categorical case, name and type; owner and role as text)."""
    people, _ = _people(proc)
    return pd.DataFrame(
        {
            "case_id": pd.Categorical.from_codes(ev.case, categories=pd.Index(ids, dtype="str")),
            "name": pd.Categorical.from_codes(ev.name, categories=pd.Index(cat.names, dtype="str")),
            "type": pd.Categorical.from_codes(
                (ev.name >= cat.n_stages).astype(np.int8),
                categories=pd.Index(["milestone", "activity"], dtype="str"),
            ),
            "timestamp": _ts(ev.ts),
            "owner": pd.array(np.array(people, dtype=object)[ev.owner], dtype="str"),
            "role": pd.array(np.array(cat.roles, dtype=object)[ev.role], dtype="str"),
        }
    )


def _truth(
    proc: _Process,
    planted: tuple[PlantedEffect, ...],
    nulls: tuple[PlantedActivity, ...],
    cal: _Calendar,
    planned_days: float | None,
    *,
    n: int,
    start: pd.Timestamp,
    open_share: float,
    seed: int,
) -> PlantedTruth:
    """The :class:`PlantedTruth` recording every number the generator used."""
    activities: dict[str, PlantedActivity] = {}
    for e in planted:
        activities[e.name] = PlantedActivity(e.name, "effect", e.role, stage=e.stage, probability=e.probability)
    for a in nulls + proc.decoys:
        activities[a.name] = a
    return PlantedTruth(
        kind=proc.kind,
        stages=list(proc.stages),
        median_days=dict(zip(proc.stages, proc.median_days)),
        sigma=dict(zip(proc.stages, proc.sigma)),
        loss_prob=dict(zip(proc.stages, proc.loss_prob)),
        skip_prob=proc.skip_prob,
        regression_prob=proc.regression_prob,
        regression_from=list(proc.stages[proc.regression_min:]),
        effects={e.name: e for e in planted},
        nulls=[a.name for a in nulls],
        decoys=[d.name for d in proc.decoys],
        activities=activities,
        as_of=pd.Timestamp(cal.as_of_ns, tz="UTC"),
        start=start,
        span_days=cal.span_days,
        n_cases=n,
        seed=seed,
        open_share=open_share,
        planned_days=planned_days,
        roles={proc.owner_role: list(proc.owners), **{r: list(p) for r, p in proc.role_people.items()}},
    )


def _event_order(case: np.ndarray, ts_ns: np.ndarray, name: np.ndarray, start_ns: int, n_names: int) -> np.ndarray:
    """Order events by case, time, then name (milestones first); one packed-key sort when it fits."""
    sec = (ts_ns - start_ns) // NS_PER_S
    name_bits = max(1, int(n_names - 1).bit_length())
    sec_bits = max(1, int(sec.max(initial=0)).bit_length())
    case_bits = max(1, int(case.max(initial=0)).bit_length())
    if ts_ns.size == 0 or name_bits + sec_bits + case_bits > 62 or sec.min() < 0:
        return np.lexsort((name, ts_ns, case))
    key = (case.astype(np.int64) << (sec_bits + name_bits)) | (sec << name_bits) | name.astype(np.int64)
    return np.argsort(key, kind="stable")


def _ts(ns: np.ndarray) -> pd.Series:
    """Nanoseconds since the epoch (int64 min for missing) as ``datetime64[ns, UTC]``."""
    return pd.Series(pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")).astype(TS_DTYPE)
