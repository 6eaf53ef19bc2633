"""The statistics salesproc reports, cross-checked against scipy and published values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from salesproc.derive._stats import bh, fisher_pvalues, kaplan_meier, newcombe, wilson


@pytest.mark.filterwarnings("ignore:The confidence interval is undefined")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kaplan_meier_equals_scipy_ecdf_on_censored_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.round(rng.lognormal(2.5, 0.7, 400), 1)  # ties on purpose
    c = rng.uniform(0, 40, 400)
    observed = t <= c
    d = np.where(observed, t, np.round(c, 1))
    km = kaplan_meier(d, observed)
    res = stats.ecdf(stats.CensoredData(uncensored=d[observed], right=d[~observed]))
    sf = res.sf
    # scipy steps at every distinct time (censored ones too); the curve only moves at event times
    np.testing.assert_allclose(km.times, np.unique(d[observed]))
    np.testing.assert_allclose(km.surv, sf.evaluate(km.times), rtol=1e-12)
    grid = np.linspace(0, d.max(), 200)
    np.testing.assert_allclose(km.sf(grid), sf.evaluate(grid), rtol=1e-12)
    ci = sf.confidence_interval(method="log-log")
    lo, hi = ci.low.evaluate(km.times), ci.high.evaluate(km.times)
    finite = np.isfinite(lo) & np.isfinite(hi) & (km.surv > 0) & (km.surv < 1)
    assert finite.sum() > 50
    np.testing.assert_allclose(km.low[finite], lo[finite], rtol=1e-9)
    np.testing.assert_allclose(km.high[finite], hi[finite], rtol=1e-9)


def test_kaplan_meier_median_without_censoring_is_the_sample_median() -> None:
    d = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9])
    km = kaplan_meier(d, np.ones(9, bool))
    assert km.quantile(0.5)[0] == 5.0
    assert km.quantile(0.8)[0] == 8.0


def test_kaplan_meier_quantile_is_none_beyond_the_data() -> None:
    d = np.array([1.0, 2, 3, 4, 5, 6])
    obs = np.array([True, False, False, False, False, False])
    km = kaplan_meier(d, obs)
    assert km.quantile(0.5)[0] is None


def test_wilson_matches_scipy_binomtest() -> None:
    for k, n in [(0, 10), (3, 10), (45, 50), (812, 1000)]:
        lo, hi = wilson(k, n)
        ref = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert lo == pytest.approx(ref.low, abs=1e-9)
        assert hi == pytest.approx(ref.high, abs=1e-9)


def test_newcombe_matches_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10:
    # (a) 56/70 - 48/80 -> 0.0524 to 0.3339; (e) 9/10 - 3/10 -> 0.1705 to 0.8090
    rd, lo, hi = newcombe(np.array([56, 9]), np.array([70, 10]), np.array([48, 3]), np.array([80, 10]))
    np.testing.assert_allclose(rd, [0.2, 0.6])
    np.testing.assert_allclose(lo, [0.0524, 0.1705], atol=5e-5)
    np.testing.assert_allclose(hi, [0.3339, 0.8090], atol=5e-5)


def test_fisher_matches_scipy_and_bh_matches_the_formula() -> None:
    a, b, c, d = np.array([8, 1]), np.array([2, 9]), np.array([1, 5]), np.array([5, 5])
    p = fisher_pvalues(a, b, c, d)
    assert p[0] == pytest.approx(stats.fisher_exact([[8, 2], [1, 5]]).pvalue)
    ps = np.array([0.01, 0.04, 0.03, 0.5])
    # BH by hand: sorted p * m / rank, then cumulative minimum from the top
    order = np.argsort(ps)
    raw = ps[order] * len(ps) / np.arange(1, len(ps) + 1)
    q_sorted = np.minimum.accumulate(raw[::-1])[::-1]
    expected = np.empty_like(ps)
    expected[order] = np.minimum(q_sorted, 1)
    np.testing.assert_allclose(bh(ps), expected)


def test_fisher_equals_scipy_on_many_tables() -> None:
    rng = np.random.default_rng(5)
    tables = rng.integers(0, 400, size=(60, 4))
    tables[:5] = rng.integers(0, 6, size=(5, 4))  # small tables too
    p = fisher_pvalues(*tables.T)
    ref = [stats.fisher_exact([[a, b], [c, d]]).pvalue for a, b, c, d in tables]
    np.testing.assert_allclose(p, ref, rtol=1e-9, atol=1e-300)
