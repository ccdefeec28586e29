import json
import math

import numpy as np
import pytest

from nmfsep.exceptions import ParameterError
from nmfsep.rank import (
    RankResult,
    dictionary_stability,
    match_atoms,
    rank_sweep,
    rank_sweep_audio,
    suggest_k,
)


def _known_rank(seed=0, shape=(150, 50), k_true=4, noise=0.05):
    g = np.random.default_rng(seed)
    V = g.gamma(1.0, 1.0, (shape[0], k_true)) @ g.gamma(1.0, 1.0, (k_true, shape[1]))
    return V + noise * V.mean() * g.random(V.shape)


@pytest.fixture(scope="module")
def sweep():
    V = _known_rank()
    calls = []
    result = rank_sweep(
        V, range(1, 9), max_iter=300, tol=1e-5, callback=lambda d, t: calls.append((d, t))
    )
    return V, result, calls


# --------------------------------------------------------------------------- stability


def test_stability_identical_and_permuted_dictionaries(rng):
    H = rng.gamma(1.0, 1.0, (6, 40))
    perm, sim = match_atoms(H, H)
    assert perm.tolist() == list(range(6)) and np.allclose(sim, 1.0)
    order = [3, 5, 0, 1, 4, 2]
    scaled = H[order] * rng.uniform(0.1, 10, (6, 1))  # permuted and rescaled atoms
    perm, sim = match_atoms(H, scaled)
    assert [order[p] for p in perm] == list(range(6))
    assert np.allclose(sim, 1.0)
    mean, worst = dictionary_stability([H, scaled, H[::-1]])
    assert mean == pytest.approx(1.0) and worst == pytest.approx(1.0)


def test_stability_lower_for_unrelated_dictionaries(rng):
    A, B = rng.gamma(1.0, 1.0, (2, 6, 40))
    mean, worst = dictionary_stability([A, B])
    assert worst <= mean < 0.6
    raw, _ = dictionary_stability([A, B], center=False)
    assert mean < raw < 0.95  # uncentred cosines of non-negative vectors are inflated
    # a dead (all-zero) atom matches nothing, without NaN or warnings
    A0 = A.copy()
    A0[2] = 0.0
    _, sim = match_atoms(A0, A)
    assert np.all(np.isfinite(sim)) and sim.min() == 0.0


def test_match_atoms_errors(rng):
    with pytest.raises(ParameterError, match="shape"):
        match_atoms(rng.random((3, 5)), rng.random((4, 5)))
    with pytest.raises(ParameterError, match="two"):
        dictionary_stability([rng.random((3, 5))])


# --------------------------------------------------------------------------- the sweep


def test_known_rank_is_suggested(sweep):
    _, result, _ = sweep
    assert isinstance(result, RankResult)
    assert result.suggested_k == 4, result.reason
    assert result.reason.startswith("k=4")
    i4 = result.ks.index(4)
    assert result.stability[i4] > 0.9
    assert result.gain[i4] > 0.5 and np.nanmax(result.gain[i4 + 1 :]) < 0.2
    assert np.all(np.diff(result.stability[i4:]) < 0.1)


def test_sweep_records_and_reports(sweep):
    V, result, calls = sweep
    assert result.ks == tuple(range(1, 9)) and result.seeds == (0, 1, 2)
    assert len(result.runs) == 24 and calls == [(i, 24) for i in range(1, 25)]
    assert result.shape == V.shape
    for r in result.runs:
        assert r.divergence >= 0 and r.seconds >= 0 and r.n_iter >= 1
        assert r.divergence_per_entry == pytest.approx(r.divergence / V.size)
    best = [min(r.divergence for r in result.runs if r.k == k) for k in result.ks]
    np.testing.assert_allclose(result.divergence, best)
    assert result.stability[0] == pytest.approx(1.0)  # one atom: always the same
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["suggested_k"] == 4 and d["table"][3]["k"] == 4 and len(d["runs"]) == 24
    assert d["table"][0]["gain"] is None
    text = result.format_table()
    assert "suggested k=4: " in text and "* 4" in text


def test_sweep_is_reproducible_and_pure(lowrank):
    V = lowrank.copy()
    a = rank_sweep(V, [2, 4], seeds=[0, 1], max_iter=30, tol=0)
    b = rank_sweep(V, [4, 2, 2], seeds=[0, 1], max_iter=30, tol=0)
    np.testing.assert_array_equal(V, lowrank)
    assert a.ks == b.ks == (2, 4)
    np.testing.assert_array_equal(a.divergence, b.divergence)
    np.testing.assert_array_equal(a.stability, b.stability)
    assert "stopped at max_iter" not in a.reason  # tol=0 runs are not "capped"


def test_one_seed_and_list_of_spectrograms(lowrank):
    result = rank_sweep([lowrank[:60], lowrank[60:]], [1, 2, 3], seeds=[0], max_iter=50)
    assert result.shape == lowrank.shape
    assert np.all(np.isnan(result.stability))
    assert "stability not measured" in result.reason
    with pytest.raises(ParameterError, match="bins"):
        rank_sweep([lowrank, lowrank[:, :10]], [1])


@pytest.mark.parametrize(
    ("ks", "match"),
    [([], "empty"), ([0, 2], ">= 1"), ([2, 41], "exceeds"), ([2.5], "int"), (["3"], "int")],
)
def test_bad_ks(lowrank, ks, match):
    with pytest.raises(ParameterError, match=match):
        rank_sweep(lowrank, ks)


def test_bad_seeds_and_thresholds(lowrank):
    with pytest.raises(ParameterError, match="seeds"):
        rank_sweep(lowrank, [2], seeds=[])
    with pytest.raises(ParameterError, match="distinct"):
        rank_sweep(lowrank, [2], seeds=[1, 1])
    with pytest.raises(ParameterError, match="min_gain"):
        rank_sweep(lowrank, [2], min_gain=2.0)


# --------------------------------------------------------------------------- the rule


def test_suggest_k_rule():
    ks = [2, 4, 8, 16]
    D = [100.0, 50.0, 45.0, 44.0]  # flattens after 4 (2.6%/component, then 0.3%)
    k, why = suggest_k(ks, D, [1.0, 0.95, 0.8, 0.7], min_gain=0.05)
    assert k == 4 and "from k=4 to k=8" in why
    # unstable at the flattening point: step back to the largest stable k
    k, why = suggest_k(ks, D, [0.95, 0.7, 0.6, 0.5], min_gain=0.05)
    assert k == 2 and "unstable" in why
    # still dropping fast at the largest k: say so
    k, why = suggest_k(ks, [100.0, 50.0, 20.0, 5.0], [1.0, 1.0, 1.0, 1.0])
    assert k == 16 and "try larger k" in why
    # a run stopped early (D goes up) does not count as a gain or a loss
    k, _ = suggest_k([1, 2, 3, 4], [100.0, 10.0, 12.0, 9.9], None)
    assert k == 2
    # nothing stable: the most stable one, with a caution
    k, why = suggest_k(ks, D, [0.5, 0.6, 0.4, 0.3], min_gain=0.05)
    assert k == 4 and "caution" in why
    # an exact fit
    k, why = suggest_k([1, 2, 3], [5.0, 0.0, 0.0], None)
    assert k == 2 and "exact" in why
    with pytest.raises(ParameterError, match="increasing"):
        suggest_k([4, 2], [1.0, 2.0])


# --------------------------------------------------------------------------- audio


def test_rank_sweep_audio(rng):
    sr = 8000
    t = np.arange(2 * sr) / sr
    notes = [
        np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * r * t) > 0)
        for f, r in [(220, 1.0), (550, 1.5)]
    ]
    y = (0.3 * sum(notes) + 0.001 * rng.standard_normal(t.size)).astype(np.float32)[None]
    before = y.copy()
    result = rank_sweep_audio([y, y[:, : sr // 2]], sr, [1, 2, 3], seconds=1.0, max_iter=60)
    np.testing.assert_array_equal(y, before)
    s = result.settings
    assert s["sr"] == sr and s["power"] == 1.0 and s["seconds"] == 1.0 and s["n_clips"] == 2
    assert s["stft"]["n_fft"] == 512 and s["stft"]["hop_length"] == 128
    # 1 s of the first clip + the whole 0.5 s second clip, transformed separately
    assert result.shape == (1 + sr // 128 + 1 + (sr // 2) // 128, 257)
    assert math.isfinite(result.divergence[-1])
    is_result = rank_sweep_audio(y, sr, [2], beta="itakura-saito", seeds=[0], max_iter=5)
    assert is_result.settings["power"] == 2.0 and is_result.beta == 0.0
