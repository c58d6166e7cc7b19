"""Statistics across training seeds (ganrepro.report.statistics) and the verdicts built on
them (ganrepro.report.claims), on synthetic numbers with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ganrepro.report import claims as claimsmod
from ganrepro.report import statistics as st

BASE, SIMPLEX, DUPLEX = claimsmod.BASE, claimsmod.SIMPLEX, claimsmod.DUPLEX


def test_summary_of_known_values():
    s = st.summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.mean, s.n) == (2.5, 4)
    assert s.sd == pytest.approx(math.sqrt(5 / 3))
    assert st.summarize([7.0]).sd is None


def test_welch_interval_equals_scipys_welch_test():
    a, b = [10.0, 12.0, 11.5, 9.0], [15.0, 19.0, 14.0]
    est, low, high, df = st.welch_interval(a, b)
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert est == pytest.approx(np.mean(b) - np.mean(a))
    assert (low, high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert df == pytest.approx(res.df)


def test_probability_of_improvement_counts_pairs_and_ties():
    assert st.prob_improvement([1, 2], [3, 4]) == 1.0
    assert st.prob_improvement([3, 4], [1, 2]) == 0.0
    assert st.prob_improvement([1, 3], [2, 2]) == 0.5
    assert st.prob_improvement([2], [2]) == 0.5


def test_seeds_needed_reaches_the_power_and_one_less_does_not():
    n = st.seeds_needed(10.0, 8.0, 12.0)
    assert n is not None and n > 2
    assert st.power(n, 10.0, 8.0, 12.0) >= st.POWER > st.power(n - 1, 10.0, 8.0, 12.0)
    assert st.seeds_needed(100.0, 1.0, 1.0) == 2              # huge effect: the minimum
    assert st.seeds_needed(0.0, 1.0, 1.0) is None              # nothing to detect
    assert st.seeds_needed(5.0, None, 1.0) is None             # no spread measured
    assert st.seeds_needed(1e-3, 50.0, 50.0) == st.MAX_SEEDS + 1


def test_power_matches_a_simulation():
    rng = np.random.default_rng(1)
    n, diff, sa, sb = 5, 10.0, 6.0, 9.0
    hits = 0
    for _ in range(2000):
        a, b = rng.normal(0, sa, n), rng.normal(diff, sb, n)
        hits += stats.ttest_ind(b, a, equal_var=False).pvalue < 0.05
    assert abs(hits / 2000 - st.power(n, diff, sa, sb)) < 0.05


@pytest.mark.parametrize("n_a, n_b, sd_a, sd_b", [(3, 3, 20.0, 45.0), (2, 2, 10.0, 10.0), (5, 3, 5.0, 15.0),
                                                  (10, 10, 22.0, 36.0)])
def test_interval_covers_the_true_difference_about_95_percent(n_a, n_b, sd_a, sd_b):
    rng = np.random.default_rng([n_a, n_b])
    true = 30.0
    trials, covered = 1000, 0
    for _ in range(trials):
        better = rng.normal(200.0, sd_a, n_a)
        worse = rng.normal(200.0 + true, sd_b, n_b)
        _, low, high, _ = st.welch_interval(list(better), list(worse))
        covered += low <= true <= high
    # 95 % nominal; a binomial count of 1000 has sd 0.7 %. Welch's interval is slightly
    # conservative at the smallest n and slightly liberal when the smaller group spreads most
    # (about 93 % for n = 5 and 3 with a threefold sd). Normal quantiles instead of Student's
    # would cover about 85 % at n = 3, and a pooled-variance interval fails the unequal cases.
    assert 0.915 <= covered / trials <= 0.985


def test_identical_runs_give_an_exact_difference():
    est, low, high, df = st.welch_interval([5.0, 5.0], [7.0, 7.0])
    assert (est, low, high, df) == (2.0, 2.0, 2.0, math.inf)


def test_pooled_sd_over_groups():
    sd, df = st.pooled_sd([[1.0, 3.0], [10.0, 14.0], [5.0]])
    assert df == 2 and sd == pytest.approx(math.sqrt((2 + 8) / 2))
    assert st.pooled_sd([[1.0], []]) == (None, 0)


def test_log_ratio_interval_of_constant_ratios_is_exact():
    r, low, high = st.log_ratio_interval([0.5, 0.5, 0.5])
    assert r == pytest.approx(0.5) and low == pytest.approx(0.5) and high == pytest.approx(0.5)


# ---------------------------------------------------------------------------- verdicts

def _inputs(finals: dict[str, list[float]], curves: dict[str, list[list[float]]] | None = None,
            kimgs=(4, 8, 12)) -> claimsmod.Inputs:
    final = {m: dict(enumerate(v)) for m, v in finals.items()}
    if curves is None:        # a straight fall to the final value
        curves = {m: [[300.0, (300.0 + f) / 2, f] for f in v] for m, v in finals.items()}
    curve = {m: {s: list(zip(kimgs, c)) for s, c in enumerate(cs)} for m, cs in curves.items()}
    return claimsmod.Inputs("toy", kimgs[-1], "64", final, curve)


def _verdicts(data, models=(BASE, SIMPLEX, DUPLEX)):
    return {c.id: c for c in claimsmod.check(data, list(models))}


def test_a_large_difference_with_small_seed_noise_is_supported():
    data = _inputs({BASE: [200.0, 202.0, 198.0], DUPLEX: [150.0, 151.0, 149.0], SIMPLEX: [180.0, 181.0, 179.0]})
    v = _verdicts(data)
    assert v["lower-fid"].verdict == "supported"
    assert v["duplex-vs-simplex"].verdict == "supported"
    n = v["lower-fid"].numbers
    assert n["interval"][0] > 0 and n["p_improvement"] == 1.0
    assert n["per_seed"][DUPLEX] == {0: 150.0, 1: 151.0, 2: 149.0}


def test_a_reversed_difference_is_not_supported():
    data = _inputs({BASE: [150.0, 151.0, 149.0], DUPLEX: [200.0, 202.0, 198.0], SIMPLEX: [150.0, 152.0, 149.0]})
    v = _verdicts(data)
    assert v["lower-fid"].verdict == "not supported"
    assert v["lower-fid"].numbers["interval"][1] < 0
    assert v["lower-fid"].numbers["p_improvement"] == 0.0


def test_a_large_difference_from_one_seed_is_inconclusive():
    data = _inputs({BASE: [200.0], DUPLEX: [100.0], SIMPLEX: [150.0]})
    v = _verdicts(data)
    for cid in ("lower-fid", "duplex-vs-simplex", f"faster-{DUPLEX}", f"faster-{SIMPLEX}"):
        assert v[cid].verdict == "inconclusive", cid
        assert "one training run" in v[cid].reason
    assert v["lower-fid"].numbers["interval"] == [None, None]


def test_a_difference_within_the_seed_noise_is_inconclusive_and_says_the_seeds_needed():
    data = _inputs({BASE: [200.0, 240.0, 170.0], DUPLEX: [190.0, 250.0, 150.0], SIMPLEX: [210.0, 180.0, 230.0]})
    c = _verdicts(data)["lower-fid"]
    assert c.verdict == "inconclusive"
    low, high = c.numbers["interval"]
    assert low < 0 < high
    assert c.numbers["seeds_needed"] > 3 and f"about {c.numbers['seeds_needed']} seeds per model" in c.reason


def test_learning_speed_from_per_seed_kimg_to_target():
    # StyleGAN2's worst final FID is 202: its runs reach it at 12 kimg; duplex's at 4 to 8.
    finals = {BASE: [200.0, 202.0, 198.0], DUPLEX: [150.0, 151.0, 149.0], SIMPLEX: [260.0, 262.0, 258.0]}
    curves = {BASE: [[300.0, 250.0, f] for f in finals[BASE]],
              DUPLEX: [[220.0, 180.0, 150.0], [201.0, 170.0, 151.0], [205.0, 175.0, 149.0]],
              SIMPLEX: [[300.0, 280.0, f] for f in finals[SIMPLEX]]}
    v = _verdicts(_inputs(finals, curves))
    fast = v[f"faster-{DUPLEX}"]
    assert fast.verdict == "supported"
    assert fast.numbers["target_fid"] == 202.0
    assert all(k < 8 for k in fast.numbers["per_seed"][DUPLEX].values())
    slow = v[f"faster-{SIMPLEX}"]                # never reaches 202: counted at 12 kimg, the last
    assert slow.verdict != "supported"
    assert slow.numbers["never_reached"][SIMPLEX] == [0, 1, 2]


def test_attention_cost_from_the_interleaved_benchmark():
    bench = {"device": "test cpu", "models": {
        BASE: {"seconds": [0.10, 0.11, 0.10, 0.12], "img_per_sec": 150.0},
        DUPLEX: {"seconds": [0.15, 0.16, 0.15, 0.17], "img_per_sec": 100.0},      # ratio ~0.68
        SIMPLEX: {"seconds": [0.40, 0.45, 0.41, 0.44], "img_per_sec": 37.0}}}     # ratio ~0.26
    data = _inputs({BASE: [1.0, 2.0], DUPLEX: [1.0, 2.0], SIMPLEX: [1.0, 2.0]})
    data.throughput = bench
    v = _verdicts(data)
    assert v[f"attention-cost-{DUPLEX}"].verdict == "supported"
    assert v[f"attention-cost-{SIMPLEX}"].verdict == "not supported"
    assert v[f"attention-cost-{DUPLEX}"].numbers["ratios"][0] == pytest.approx(0.10 / 0.15)
    data.throughput = None
    assert _verdicts(data)[f"attention-cost-{DUPLEX}"].verdict == "inconclusive"
