"""Milestone visits: runs of events of one milestone within a case, and when each ended."""

from __future__ import annotations

import numpy as np

NAT = np.iinfo(np.int64).min


def milestone_visits(
    mc: np.ndarray, mk: np.ndarray, mt: np.ndarray, closed_ns: np.ndarray, as_of_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Visits from milestone events sorted by case then time.

    ``mc``/``mk``/``mt`` are each event's case index, milestone code and time (ns); ``closed_ns``
    is each case's close time (``NAT`` while open). A visit ends at the case's next visit, else at
    its close (never before the visit began), else it is still running at ``as_of_ns`` (censored).

    Returns ``(case, milestone, start, end, observed)`` per visit.

    Examples
    --------
    >>> import numpy as np
    >>> c, k, s, e, o = milestone_visits(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 0]),
    ...                                  np.array([0, 5, 10, 3]), np.array([20, NAT]), as_of_ns=50)
    >>> k.tolist(), s.tolist(), e.tolist(), o.tolist()
    ([0, 1, 0], [0, 10, 3], [10, 20, 50], [True, True, False])
    """
    if len(mc) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, z, z.astype(bool)
    new = np.ones(len(mc), dtype=bool)
    new[1:] = (mc[1:] != mc[:-1]) | (mk[1:] != mk[:-1])
    vc, vk, vt = mc[new], mk[new], mt[new]
    nxt_same = np.zeros(len(vc), dtype=bool)
    nxt_same[:-1] = vc[1:] == vc[:-1]
    end = np.empty(len(vc), dtype=np.int64)
    end[:-1] = vt[1:]
    closed = closed_ns[vc]
    is_closed = closed != NAT
    end = np.where(nxt_same, end, np.where(is_closed, np.maximum(closed, vt), as_of_ns))
    return vc, vk, vt, end, nxt_same | is_closed
