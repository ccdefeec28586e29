"""Tests of nmfsep.grouping: blind components into sources."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmfsep.exceptions import ParameterError
from nmfsep.grouping import (
    GROUPING_METHODS,
    REGISTER_SPLIT_HZ,
    components_groups,
    group_components,
    kmeans_1d,
    register_features,
    source_names,
    timbre_features,
)

SR = 16000
N_FFT = 512
N_BINS = N_FFT // 2 + 1
FREQS = np.linspace(0, SR / 2, N_BINS)


def harmonic_atom(f0: float, decay: float, n_harm: int = 30) -> np.ndarray:
    """A harmonic spectrum whose h-th partial has amplitude h ** -decay.

    Partials as wide as a Hann main lobe at this FFT size, over a -80 dB noise floor,
    as in atoms that NMF learns from real recordings.
    """
    atom = np.full(N_BINS, 1e-4)
    for h in range(1, n_harm + 1):
        f = f0 * h
        if f >= SR / 2:
            break
        atom += h**-decay * np.exp(-0.5 * ((FREQS - f) / 45.0) ** 2)
    return atom / np.linalg.norm(atom)


def test_components_groups() -> None:
    assert components_groups(1) == {"component_01": [0]}
    assert list(components_groups(12))[-1] == "component_12"
    g = components_groups(100)
    assert list(g)[0] == "component_001" and list(g)[-1] == "component_100"
    assert [v for v in g.values()] == [[i] for i in range(100)]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ParameterError, match="k must"):
            components_groups(bad)


def test_source_names() -> None:
    assert source_names(3) == ["source_1", "source_2", "source_3"]
    with pytest.raises(ParameterError):
        source_names(0)


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 9),
    data=st.data(),
    method=st.sampled_from(GROUPING_METHODS),
    seed=st.integers(0, 1000),
)
def test_groups_partition_the_components(k: int, data, method: str, seed: int) -> None:
    s = data.draw(st.integers(1, k))
    rng = np.random.default_rng(seed)
    W = rng.random((20, k)) * (rng.random(k) > 0.2)  # some dead components
    H = rng.random((k, N_BINS)) ** 4
    W0, H0 = W.copy(), H.copy()
    groups = group_components(W, H, s, method=method, sr=SR, n_fft=N_FFT)
    assert list(groups) == [f"source_{i + 1}" for i in range(s)]
    members = sorted(i for idx in groups.values() for i in idx)
    assert members == list(range(k))
    assert all(idx and idx == sorted(idx) for idx in groups.values())
    assert group_components(W, H, s, method=method, sr=SR, n_fft=N_FFT) == groups
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(H, H0)


def test_groups_are_ordered_by_spectral_centroid() -> None:
    low = [harmonic_atom(f, 3.0) for f in (60, 70, 80)]
    high = [harmonic_atom(f, 3.0) for f in (1500, 2500)]
    H = np.array([high[0], low[0], high[1], low[1], low[2]])
    W = np.ones((10, 5))
    for method in GROUPING_METHODS:
        groups = group_components(W, H, 5, method=method, sr=SR, n_fft=N_FFT)
        # one group per component: ascending centroid
        assert [idx[0] for idx in groups.values()] == [1, 3, 4, 0, 2]


def test_timbre_groups_by_spectral_envelope_not_pitch() -> None:
    # A dull instrument (steep harmonic decay) and a bright one (flat), overlapping pitches.
    dull = [harmonic_atom(f, 4.0) for f in (150, 200, 260, 330, 440)]
    bright = [harmonic_atom(f, 0.2) for f in (160, 210, 250, 350, 430)]
    order = np.random.default_rng(0).permutation(10)
    H = np.array(dull + bright)[order]
    truth = {frozenset(np.flatnonzero(order < 5)), frozenset(np.flatnonzero(order >= 5))}
    W = np.random.default_rng(1).random((50, 10))  # uninformative activations
    groups = group_components(W, H, 2, method="timbre", sr=SR, n_fft=N_FFT)
    assert {frozenset(v) for v in groups.values()} == truth
    assert timbre_features(H, sr=SR, n_fft=N_FFT).shape == (10, 12)
    np.testing.assert_allclose(timbre_features(H, sr=SR, n_fft=N_FFT, power=2.0),
                               timbre_features(H**2, sr=SR, n_fft=N_FFT))
    for power in (1.0, 2.0):  # whatever the atoms' scale
        np.testing.assert_allclose(
            timbre_features(H * 1e-9, sr=SR, n_fft=N_FFT, power=power),
            timbre_features(H * 1e3, sr=SR, n_fft=N_FFT, power=power), atol=1e-9)


def test_kmeans_is_scikit_learns_kmeans_of_the_power_mfccs() -> None:
    """The groups are those of KMeans (seed 0) on timbre_features(H, power=2); a dull
    and a bright instrument in one register come apart. (Power MFCCs resolve the
    partials of low notes more than magnitude MFCCs do: on the low atoms of the test
    above they split by pitch, which "timbre" does not.)"""
    from sklearn.cluster import KMeans

    dull = [harmonic_atom(f, 4.0) for f in (400, 450, 520, 600)]
    bright = [harmonic_atom(f, 0.2) for f in (420, 480, 550, 640)]
    order = np.random.default_rng(5).permutation(8)
    H = np.array(dull + bright)[order]
    W = np.random.default_rng(6).random((40, 8))
    groups = group_components(W, H, 2, method="kmeans", sr=SR, n_fft=N_FFT)
    assert {frozenset(v) for v in groups.values()} == {
        frozenset(np.flatnonzero(order < 4)), frozenset(np.flatnonzero(order >= 4))}
    rng = np.random.default_rng(7)
    H = rng.random((12, N_BINS)) ** 3
    labels = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(
        timbre_features(H, sr=SR, n_fft=N_FFT, power=2.0))
    want = {frozenset(np.flatnonzero(labels == j).tolist()) for j in range(3)}
    got = group_components(rng.random((20, 12)), H, 3, method="kmeans", sr=SR, n_fft=N_FFT)
    assert {frozenset(v) for v in got.values()} == want


def test_kmeans_keeps_every_source_when_atoms_repeat() -> None:
    """Fewer distinct atoms than sources leave a k-means cluster empty: Ward's cut is
    used then, so every source still gets a component."""
    H = np.array([harmonic_atom(200, 2.0)] * 4 + [harmonic_atom(300, 0.5)])
    W = np.random.default_rng(0).random((30, 5))
    groups = group_components(W, H, 3, method="kmeans", sr=SR, n_fft=N_FFT)
    assert len(groups) == 3 and all(groups.values())
    assert sorted(i for v in groups.values() for i in v) == list(range(5))


def test_register_groups_bass_apart_whatever_the_timbre() -> None:
    # two timbres in each register, grouped by register.
    # (A bass much brighter than 1/h**1.5 holds most of its energy above 200 Hz and
    # would join the instruments above: the feature is the energy's register.)
    low = [harmonic_atom(f, d) for f, d in ((55, 4.0), (70, 1.5), (82, 4.0), (98, 1.5))]
    high = [harmonic_atom(f, d) for f, d in ((440, 4.0), (523, 1.5), (660, 4.0), (880, 1.5))]
    order = np.random.default_rng(2).permutation(8)
    H = np.array(low + high)[order]
    is_low = order < 4
    W = np.random.default_rng(3).random((40, 8))
    groups = group_components(W, H, 2, method="register", sr=SR, n_fft=N_FFT)
    assert groups["source_1"] == [int(i) for i in np.flatnonzero(is_low)]  # bass first
    assert groups["source_2"] == [int(i) for i in np.flatnonzero(~is_low)]


def test_register_of_three_sources_splits_the_atoms_above_the_bass_by_timbre() -> None:
    """Three sources: the low group by register, a dull and a bright instrument above it
    by "kmeans" (dividing all by register would cut the upper ones by pitch)."""
    low = [harmonic_atom(f, 1.5) for f in (55, 70, 82, 98)]
    dull = [harmonic_atom(f, 4.0) for f in (400, 450, 520, 600)]
    bright = [harmonic_atom(f, 0.2) for f in (420, 480, 550, 640)]
    order = np.random.default_rng(4).permutation(12)
    H = np.array(low + dull + bright)[order]
    W = np.random.default_rng(5).random((40, 12))
    groups = group_components(W, H, 3, method="register", sr=SR, n_fft=N_FFT)
    want = {frozenset(np.flatnonzero((order >= lo) & (order < lo + 4)).tolist())
            for lo in (0, 4, 8)}
    assert {frozenset(v) for v in groups.values()} == want
    # what the atoms above the low group get is "kmeans" of them alone
    above = np.flatnonzero(order >= 4)
    sub = group_components(W[:, above], H[above], 2, method="kmeans", sr=SR, n_fft=N_FFT)
    assert {frozenset(above[v].tolist()) for v in sub.values()} <= want
    # with too few atoms above the low group, the register alone divides them
    H2 = np.array([harmonic_atom(f, 1.5) for f in (55, 60, 65, 70)] + [harmonic_atom(600, 1.0)])
    groups = group_components(W[:, :5], H2, 3, method="register", sr=SR, n_fft=N_FFT)
    assert len(groups) == 3 and all(groups.values())


@pytest.mark.parametrize("seed", range(6))
def test_kmeans_1d_finds_the_least_sum_of_squares(seed: int) -> None:
    import itertools

    rng = np.random.default_rng(seed)
    x = rng.random(int(rng.integers(4, 10))) ** 3
    n = int(rng.integers(1, 4))
    labels = kmeans_1d(x, n)

    def sse(lab: np.ndarray) -> float:
        return sum(float(((x[lab == c] - x[lab == c].mean()) ** 2).sum()) for c in set(lab))

    xs = np.sort(x)  # slow oracle: every split of the sorted values into n intervals
    best = min(
        sum(float(((p - p.mean()) ** 2).sum()) for p in np.split(xs, list(cuts)))
        for cuts in itertools.combinations(range(1, x.size), n - 1)
    )
    assert sorted(set(labels.tolist())) == list(range(n))
    assert sse(labels) == pytest.approx(best, abs=1e-12)
    for c in range(n - 1):  # clusters are intervals, lowest values first
        assert x[labels == c].max() <= x[labels == c + 1].min()
    before = x.copy()
    kmeans_1d(x, n)
    np.testing.assert_array_equal(x, before)


def test_register_features_are_the_share_below_the_split() -> None:
    H = np.zeros((4, N_BINS))
    below = FREQS < REGISTER_SPLIT_HZ
    H[0, below] = 1.0  # all low
    H[1, ~below] = 2.0  # all high
    H[2, np.flatnonzero(below)[-1]] = 1.0  # half and half
    H[2, np.flatnonzero(~below)[0]] = 1.0
    F = register_features(H, sr=SR, n_fft=N_FFT)  # H[3]: silent atom
    np.testing.assert_allclose(F[:, 0], [1.0, 0.0, 0.5, 0.0])
    assert F.shape == (4, 1)


def test_activation_groups_follow_who_plays_together() -> None:
    rng = np.random.default_rng(2)
    n_frames = 200
    a = (rng.random(n_frames) > 0.5).astype(float)
    b = (rng.random(n_frames) > 0.5).astype(float)
    cols = [a * (0.5 + rng.random(n_frames)) for _ in range(3)]
    cols += [b * (0.5 + rng.random(n_frames)) for _ in range(3)]
    order = rng.permutation(6)
    W = np.array(cols).T[:, order]
    H = rng.random((6, N_BINS))  # uninformative atoms
    groups = group_components(W, H, 2, method="activations", sr=SR, n_fft=N_FFT)
    truth = {frozenset(np.flatnonzero(order < 3)), frozenset(np.flatnonzero(order >= 3))}
    assert {frozenset(v) for v in groups.values()} == truth


def test_edge_cases() -> None:
    rng = np.random.default_rng(3)
    W, H = rng.random((8, 4)), rng.random((4, N_BINS))
    assert group_components(W, H, 1, sr=SR, n_fft=N_FFT) == {"source_1": [0, 1, 2, 3]}
    one = group_components(W[:, :1], H[:1], 1, sr=SR, n_fft=N_FFT)
    assert one == {"source_1": [0]}
    zeros = group_components(np.zeros((8, 4)), np.zeros((4, N_BINS)), 2, sr=SR, n_fft=N_FFT)
    assert sorted(i for v in zeros.values() for i in v) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0,), {}, "n_sources"),
        ((5,), {}, "n_sources"),
        ((1.5,), {}, "n_sources"),
        ((2,), {"method": "spectral"}, "grouping method"),
        ((2,), {"n_fft": 1024}, "n_fft"),
        ((2,), {"sr": 0}, "sr"),
    ],
)
def test_validation(args: tuple, kwargs: dict, match: str) -> None:
    rng = np.random.default_rng(4)
    W, H = rng.random((8, 4)), rng.random((4, N_BINS))
    kw = {"sr": SR, "n_fft": N_FFT, **kwargs}
    with pytest.raises(ParameterError, match=match):
        group_components(W, H, *args, **kw)


def test_validation_of_factors() -> None:
    rng = np.random.default_rng(5)
    W, H = rng.random((8, 4)), rng.random((4, N_BINS))
    with pytest.raises(ParameterError, match="components"):
        group_components(W[:, :3], H, 2, sr=SR, n_fft=N_FFT)
    with pytest.raises(ParameterError, match="negative"):
        group_components(-W, H, 2, sr=SR, n_fft=N_FFT)
    with pytest.raises(ParameterError, match="NaN"):
        group_components(W, H * np.nan, 2, sr=SR, n_fft=N_FFT)
    with pytest.raises(ParameterError, match="shape"):
        group_components(W[0], H, 2, sr=SR, n_fft=N_FFT)


def test_group_components_stats_equals_whole_w() -> None:
    """Statistics accumulated block by block give the groups of the whole W."""
    from nmfsep.grouping import ActivationStats, group_components_stats

    rng = np.random.default_rng(4)
    W, H = rng.random((300, 6)).astype(np.float32), rng.random((6, 513)).astype(np.float32)
    stats = ActivationStats(6)
    for j in range(0, 300, 70):
        stats.update(W[j : j + 70])
    for method in ("timbre", "kmeans", "activations", "combined"):
        assert group_components_stats(stats, H, 3, method=method, sr=22050, n_fft=1024) == \
            group_components(W, H, 3, method=method, sr=22050, n_fft=1024)
    # with positions (a stream's blind gains): the same groups too, positions counting
    angles = np.array([0.1, 0.1, 0.1, 1.4, 1.4, 1.4])
    positions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    by_place = group_components_stats(stats, H, 2, sr=22050, n_fft=1024, positions=positions)
    assert by_place == group_components(W, H, 2, sr=22050, n_fft=1024, positions=positions)
    assert sorted(sorted(g) for g in by_place.values()) == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ParameterError, match="ActivationStats"):
        group_components_stats(ActivationStats(5), H, 3, sr=22050, n_fft=1024)
    with pytest.raises(ParameterError, match="positions must have shape"):
        group_components_stats(stats, H, 2, sr=22050, n_fft=1024, positions=positions[:5])
