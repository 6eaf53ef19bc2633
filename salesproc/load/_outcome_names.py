"""Event names that mean a deal was won or lost, read as outcomes when no rule says otherwise.

A stage history written by hand or exported from a CRM ends a closed deal with a stage such as
``Closed Won`` or ``Closed Lost``. Without ``outcome_events`` such events would stay milestones and
every deal would be open, so the names below are recognised by default: compared without case,
accents, spaces or punctuation (``Closed-Won``, ``closed_won`` and ``CLOSED WON`` are one name), and
only as whole names (``Lost opportunity review`` is not ``Lost``: a step about a lost deal is not
the loss itself). ``outcome_events={}`` turns the recognition off; any other ``outcome_events``
replaces it. It is not used when the data has an outcome column (the column gives the outcomes and
such events stay milestones) or a kind column, nor for projects.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "OUTCOME_EVENT_NAMES", "name_key", "outcome_events_note", "outcome_like_names", "recognised_outcome_events",
]

#: The event names read as outcomes by default, by outcome (English, the CRM presets' own stage
#: names, German, Dutch, Spanish, Portuguese, French and Italian).
OUTCOME_EVENT_NAMES: dict[str, tuple[str, ...]] = {
    "won": (
        "Closed Won", "Won", "Closed-Won", "Deal won", "Opportunity won", "Win", "closedwon",
        "Gewonnen", "Auftrag gewonnen", "Ganado", "Ganada", "Ganho", "Ganha", "Gagné", "Gagnée", "Vinto", "Vinta",
    ),
    "lost": (
        "Closed Lost", "Lost", "Closed-Lost", "Deal lost", "Opportunity lost", "Loss", "closedlost",
        "Verloren", "Auftrag verloren", "Perdido", "Perdida", "Perdu", "Perdue", "Perso", "Persa",
    ),
}


def name_key(name: object) -> str:
    """A name as it is compared: lower case, without accents, spaces or punctuation.

    >>> name_key("Closed-Won"), name_key(" closed_won "), name_key("Gagné")
    ('closedwon', 'closedwon', 'gagne')
    """
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", "", text.casefold())


_OUTCOME_OF_KEY = {name_key(n): outcome for outcome, names in OUTCOME_EVENT_NAMES.items() for n in names}


def recognised_outcome_events(names: Iterable[object]) -> dict[str, list[str]]:
    """The event names (as written) that read as won or lost, by outcome; empty if none do.

    >>> recognised_outcome_events(["Lead", "Closed Won", "closed-lost", "Lost opportunity review"])
    {'won': ['Closed Won'], 'lost': ['closed-lost']}
    """
    found: dict[str, list[str]] = {}
    for name in names:
        outcome = _OUTCOME_OF_KEY.get(name_key(name))
        if outcome is not None:
            found.setdefault(outcome, []).append(str(name))
    return found


def outcome_events_note(found: Mapping[str, list[str]], counts: Mapping[Any, int]) -> str:
    """What the summary says of outcomes read from event names (``counts``: cases by outcome).

    >>> outcome_events_note({"won": ["Closed Won"], "lost": ["Closed Lost"]}, {"won": 12, "lost": 9})
    "'Closed Won' and 'Closed Lost' read as outcomes (won 12, lost 9); to keep them as milestones pass outcome_events={}"
    """
    names = [repr(n) for outcome in ("won", "lost") for n in found.get(outcome, [])]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    tally = ", ".join(f"{outcome} {counts.get(outcome, 0):,}" for outcome in ("won", "lost") if outcome in found)
    return f"{listed} read as outcomes ({tally}); to keep them as milestones pass outcome_events={{}}"


# words that often sit in the name of an event that closes a case, for the hint of an error
_OUTCOME_WORDS = re.compile(
    r"won|lost|win|loss|closed|signed|gewonnen|verloren|ganad|perdid|gagn|perdu|vint|pers[oa]|ganh|"
    r"cancel|done|complete|finish|resolved|deliver|golive|accepted",
)


def outcome_like_names(counts: Mapping[Any, int], limit: int = 5) -> dict[str, int]:
    """The most frequent event names that look as if they close a case (name -> count).

    >>> outcome_like_names({"Lead": 30, "Closed Won": 6, "Closed Lost": 8, "Demo": 20})
    {'Closed Lost': 8, 'Closed Won': 6}
    """
    like = [(str(name), int(n)) for name, n in counts.items() if n > 0 and _OUTCOME_WORDS.search(name_key(name))]
    like.sort(key=lambda kv: (-kv[1], kv[0]))
    return dict(like[:limit])
