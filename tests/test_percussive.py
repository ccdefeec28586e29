"""Tests of percussion-aware blind separation (nmfsep.percussive) and nmfsep.sources."""

from __future__ import annotations

import numpy as np
import pytest
from _cli import one_error_line, run

from nmfsep import separate
from nmfsep.exceptions import ParameterError
from nmfsep.percussive import (
    DEFAULT_TONAL,
    DRUMS,
    _harmonic_groups,
    atom_flatness,
    factorize_percussive,
    hpss_split,
    percussive_names,
    percussive_share,
)
from nmfsep.plan import make_plan, stem_names
from nmfsep.sources import DRUMS_SHARE, silhouette, suggest_sources

SR = 16000


def _clicks(seconds: float, period: float = 0.25, amp: float = 0.5) -> np.ndarray:
    """Short noise bursts every ``period`` seconds (a hi-hat-like drum part), seeded."""
    rng = np.random.default_rng(3)
    y = np.zeros(int(seconds * SR))
    burst = rng.standard_normal(int(0.01 * SR)) * np.exp(-np.arange(int(0.01 * SR)) / 40)
    for start in np.arange(0, seconds - 0.02, period):
        i = int(start * SR)
        y[i : i + burst.size] += amp * burst
    return y


def _tones(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A low sustained tone and a high one entering half-way, both with a few partials."""
    t = np.arange(int(seconds * SR)) / SR
    low = sum(0.3 / h * np.sin(2 * np.pi * 110 * h * t) for h in range(1, 5))
    high = sum(0.2 / h * np.sin(2 * np.pi * 1320 * h * t) for h in range(1, 3)) * (t > seconds / 3)
    return low, high


@pytest.fixture(scope="module")
def band() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mixture (1, n), drums part, harmonic part) at 16 kHz, 3 s; int16-scale amplitude."""
    drums = _clicks(3.0)
    low, high = _tones(3.0)
    harmonic = low + high
    y = (3000.0 * (drums + harmonic)).astype(np.float32)[None]
    return y, 3000.0 * drums, 3000.0 * harmonic


def _spectrogram(y: np.ndarray) -> np.ndarray:
    from nmfsep.spectral import STFTConfig, model_spectrogram, stft

    return model_spectrogram(stft(y, STFTConfig.for_sample_rate(SR)), 1.0)


def test_hpss_split_adds_up_and_keeps_its_input(band) -> None:
    V = _spectrogram(band[0])
    before = V.copy()
    for margin in (1.0, 3.0):
        V_h, V_p = hpss_split(V, margin=margin)
        assert V_h.shape == V_p.shape == V.shape
        assert (V_h >= 0).all() and (V_p >= 0).all()
        np.testing.assert_allclose(V_h + V_p, V, rtol=1e-5, atol=1e-6 * V.max())
    np.testing.assert_array_equal(V, before)


@pytest.mark.parametrize(("kernel", "margin"), [((17, 17), 1.0), ((9, 31), 2.5), ((1, 1), 1.0)])
def test_hpss_split_is_librosas_percussive_mask(band, kernel, margin) -> None:
    import librosa

    V = _spectrogram(band[0])
    V[:, :3] = 0.0  # silent bins: librosa splits them half and half at margin 1
    _, mask = librosa.decompose.hpss(V.T.astype(np.float32), kernel_size=kernel, power=2.0,
                                     mask=True, margin=(1.0, margin))
    _, V_p = hpss_split(V, kernel=kernel, margin=margin)
    np.testing.assert_allclose(V_p, V * mask.T, rtol=1e-6, atol=0)


def test_a_larger_margin_keeps_less_in_the_percussive_part(band) -> None:
    V = _spectrogram(band[0])
    shares = [percussive_share(V, hpss_split(V, margin=m)[1]) for m in (1.0, 2.0, 4.0)]
    assert shares[0] > shares[1] > shares[2] > 0


def test_clicks_are_percussive_and_tones_are_not() -> None:
    low, high = _tones(3.0)
    clicks = _spectrogram(_clicks(3.0)[None].astype(np.float32))
    tones = _spectrogram((low + high)[None].astype(np.float32))
    assert percussive_share(clicks, hpss_split(clicks)[1]) > 0.6
    assert percussive_share(tones, hpss_split(tones)[1]) < 0.1
    assert percussive_share(np.zeros((4, 5)), np.zeros((4, 5))) == 0.0


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"margin": 0.5}, "margin"), ({"kernel": (0, 17)}, "harmonic kernel"),
    ({"kernel": (17, 0)}, "percussive kernel"),
])
def test_hpss_split_refuses_bad_settings(kwargs, needle) -> None:
    with pytest.raises(ParameterError, match=needle):
        hpss_split(np.ones((20, 33)), **kwargs)


def test_factorize_percussive_groups_every_component_once(band) -> None:
    V = _spectrogram(band[0])
    fit = factorize_percussive(V, 12, 3, sr=SR, n_fft=(V.shape[1] - 1) * 2, beta=1.0,
                               max_iter=50, random_state=0, warn=False, tonal=None)
    assert list(fit.groups) == ["source_1", "source_2", DRUMS]
    assert sorted(i for g in fit.groups.values() for i in g) == list(range(12))
    assert fit.groups[DRUMS] == [8, 9, 10, 11]  # a source's share of k, after the harmonic
    assert fit.W.shape == (V.shape[0], 12) and fit.H.shape == (12, V.shape[1])
    assert np.isfinite(fit.loss_history).all() and 0 < fit.share < 1
    with pytest.raises(ParameterError, match="n_sources"):
        factorize_percussive(V, 12, 1, sr=SR, n_fft=(V.shape[1] - 1) * 2)
    with pytest.raises(ParameterError, match="n_components=2"):
        factorize_percussive(V, 2, 3, sr=SR, n_fft=(V.shape[1] - 1) * 2)


def test_joint_iterations_fit_the_mixture_better_and_keep_the_groups(band) -> None:
    from nmfsep.divergence import beta_divergence

    V = _spectrogram(band[0])
    before = V.copy()
    kw = {"sr": SR, "n_fft": (V.shape[1] - 1) * 2, "beta": 1.0, "max_iter": 50,
          "random_state": 0, "warn": False}
    split = factorize_percussive(V, 12, 3, refine_iter=0, **kw)
    joint = factorize_percussive(V, 12, 3, refine_iter=20, **kw)
    np.testing.assert_array_equal(V, before)
    assert sorted(i for g in joint.groups.values() for i in g) == list(range(12))
    assert joint.n_iter == split.n_iter + 20
    assert (beta_divergence(V, joint.W, joint.H, 1.0)
            < 0.99 * beta_divergence(V, split.W, split.H, 1.0))
    stage = joint.loss_history[split.loss_history.size:]  # the joint stage's checks
    assert stage.size >= 2 and np.all(np.diff(stage) <= 1e-6 * stage[0])
    with pytest.raises(ParameterError, match="refine_iter"):
        factorize_percussive(V, 12, 3, refine_iter=-1, **kw)


def _comb(f0: float, n_bins: int = 257, partials: int = 5) -> np.ndarray:
    freqs = np.linspace(0, SR / 2, n_bins)
    return sum(np.exp(-0.5 * ((freqs - f0 * h) / 15) ** 2) for h in range(1, partials + 1)) + 1e-6


def test_tonal_attacks_join_the_harmonic_components_and_kicks_stay_drums() -> None:
    rng = np.random.default_rng(0)
    noise = rng.uniform(0.5, 1.0, 257)
    # harmonic side: a bass note, a keys note; percussive side: a hi-hat (flat), a kick
    # (tonal but below 200 Hz) and a keys note's attack (tonal, high)
    H = np.stack([_comb(55.0, partials=2), _comb(660.0), noise, _comb(60.0, partials=1),
                  _comb(660.0)])
    W = rng.uniform(0.1, 1.0, (40, 5))
    kw = {"sr": SR, "n_fft": 512, "grouping": "register", "extra": False, "flatness": None}
    groups = _harmonic_groups(W, H, 2, 3, tonal=DEFAULT_TONAL, **kw)
    assert groups[DRUMS] == [2, 3]
    assert 4 in groups["source_2"] and 1 in groups["source_2"]  # with the keys
    assert _harmonic_groups(W, H, 2, 3, tonal=None, **kw)[DRUMS] == [2, 3, 4]
    # the drums keep a component even when every percussive atom is a tonal attack
    assert _harmonic_groups(W[:, [0, 1, 4]], H[[0, 1, 4]], 2, 3, tonal=DEFAULT_TONAL,
                            **kw)[DRUMS] == [2]


def test_the_tonal_rule_only_regroups(band) -> None:
    V = _spectrogram(band[0])
    kw = {"sr": SR, "n_fft": (V.shape[1] - 1) * 2, "beta": 1.0, "max_iter": 50,
          "random_state": 0, "warn": False}
    plain = factorize_percussive(V, 12, 3, tonal=None, **kw)
    fit = factorize_percussive(V, 12, 3, **kw)
    np.testing.assert_array_equal(fit.W, plain.W)
    moved = sorted(set(plain.groups[DRUMS]) - set(fit.groups[DRUMS]))
    assert moved and fit.groups[DRUMS]  # the high tone's onset, and drums remain
    freqs = np.linspace(0, SR / 2, V.shape[1])
    assert all(freqs[np.argmax(fit.H[c])] > 200 for c in moved)
    assert (atom_flatness(fit.H[moved]) < DEFAULT_TONAL).all()
    for bad in (-0.1, float("nan"), 2.0):
        with pytest.raises(ParameterError, match="tonal"):
            factorize_percussive(V, 12, 3, tonal=bad, **kw)


def test_separate_percussive_finds_the_drums_and_adds_up(band) -> None:
    y, drums, harmonic = band
    before = y.copy()
    res = separate(y, SR, n_sources=2, percussive=True, max_iter=100)
    np.testing.assert_array_equal(y, before)
    assert res.names == ["source_1", DRUMS]
    assert res.settings["percussive"] is True
    np.testing.assert_allclose(sum(res.stems.values()), y, atol=1e-5 * np.abs(y).max())
    assert res.masks.min() >= 0 and res.masks.max() <= 1
    np.testing.assert_allclose(res.masks.sum(axis=0), 1.0, atol=1e-5)
    est = res.stems[DRUMS][0]
    # the drums stem follows the clicks, the other one the tones
    assert np.corrcoef(est, drums)[0, 1] > 0.9
    assert np.corrcoef(res.stems["source_1"][0], harmonic)[0, 1] > 0.9
    # bit-for-bit reproducible with a seed; the default path is untouched
    again = separate(y, SR, n_sources=2, percussive=True, max_iter=100)
    np.testing.assert_array_equal(again.stems[DRUMS], res.stems[DRUMS])
    assert separate(y, SR, n_sources=2, max_iter=5).settings["percussive"] is False


def test_percussive_groups_the_harmonic_stems_by_register_unless_told(band) -> None:
    y = band[0]
    res = separate(y, SR, n_sources=3, percussive=True, max_iter=30)
    assert res.settings["grouping"] == "register"
    told = separate(y, SR, n_sources=3, percussive=True, max_iter=30, grouping="timbre")
    assert told.settings["grouping"] == "timbre"
    assert separate(y, SR, n_sources=2, max_iter=5).settings["grouping"] == "timbre"
    # the low tone's stem comes first (register: bass first), the high tone's second
    low, high = _tones(3.0)
    s1, s2 = res.stems["source_1"][0], res.stems["source_2"][0]
    assert np.corrcoef(s1, low)[0, 1] > np.corrcoef(s1, high)[0, 1]
    assert np.corrcoef(s2, high)[0, 1] > np.corrcoef(s2, low)[0, 1]


def test_separate_percussive_on_silence_gives_silent_named_stems() -> None:
    res = separate(np.zeros((1, SR), dtype=np.float32), SR, n_sources=3, percussive=True)
    assert res.names == ["source_1", "source_2", DRUMS]
    assert all(not np.any(s) for s in res.stems.values()) and res.warnings


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"n_components": 8}, "n_sources >= 2"),
    ({"n_sources": 1}, "n_sources >= 2"),
    ({"n_sources": 2, "percussive": "yes"}, "percussive"),
])
def test_percussive_needs_blind_sources(kwargs, needle) -> None:
    kwargs = {"percussive": True, **kwargs}
    with pytest.raises(ParameterError, match=needle):
        make_plan(kwargs.pop("n_components", None), kwargs.pop("n_sources", None), [], 0,
                  kwargs.pop("percussive"))


def test_stem_names_and_percussive_names() -> None:
    assert stem_names(n_sources=3, percussive=True) == ["source_1", "source_2", DRUMS]
    assert stem_names(n_sources=3) == ["source_1", "source_2", "source_3"]
    assert percussive_names(2) == ["source_1", DRUMS]
    with pytest.raises(ParameterError):
        percussive_names(1)


def test_silhouette_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    F = np.concatenate([rng.normal(0, 1, (10, 3)), rng.normal(4, 1, (7, 3)), [[9, 9, 9]]])
    labels = np.array([0] * 10 + [1] * 7 + [2])
    assert silhouette(F, labels) == pytest.approx(metrics.silhouette_score(F, labels))
    assert silhouette(F, np.zeros(len(F), dtype=int)) == 0.0


def test_suggest_sources_sees_drums_only_where_there_are_some(band) -> None:
    y, _, harmonic = band
    with_drums = suggest_sources(y, SR, n_components=(6, 8), max_iter=50)
    without = suggest_sources(harmonic[None].astype(np.float32), SR, n_components=(6, 8),
                              max_iter=50)
    assert with_drums.drums and with_drums.share >= DRUMS_SHARE
    assert not without.drums and without.share < DRUMS_SHARE
    for s in (with_drums, without):
        assert s.n_sources == s.n_harmonic + int(s.drums) and s.n_harmonic in (2, 3)
        assert 0 <= s.confidence <= 1 and sum(s.votes.values()) == 2
        assert s.to_dict()["n_sources"] == s.n_sources


def test_cli_percussive_writes_drums(tmp_path, band) -> None:
    import soundfile as sf

    mix = tmp_path / "band.wav"
    sf.write(mix, band[0][0] / 32768, SR, subtype="FLOAT")
    result = run("separate", mix, "--sources", "2", "--percussive", "-o", tmp_path / "out",
                 "--max-iter", "30")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "band").iterdir()) == [
        "drums.wav", "source_1.wav"]
    for extra in (["-k", "4"], ["--sources", "drums,bass"]):
        bad = run("separate", mix, *extra, "--percussive", "-o", tmp_path / "out2")
        assert bad.exit_code == 2 and "--percussive" in bad.stderr, bad.output
        assert "Traceback" not in bad.output and not (tmp_path / "out2").exists()
    suggestion = run("rank", mix, "--sources", "--quiet")
    assert suggestion.exit_code == 0, suggestion.output
    assert int(suggestion.stdout.strip()) >= 2


def test_cli_grouping_register(tmp_path, band) -> None:
    import soundfile as sf

    mix = tmp_path / "band.wav"
    sf.write(mix, band[0][0] / 32768, SR, subtype="FLOAT")
    result = run("separate", mix, "--sources", "2", "--grouping", "register", "-o",
                 tmp_path / "out", "--max-iter", "20")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "band").iterdir()) == [
        "source_1.wav", "source_2.wav"]
    bad = run("separate", mix, "--sources", "2", "--grouping", "pitch", "-o", tmp_path / "o2")
    assert bad.exit_code == 2 and "register" in bad.stderr, bad.output
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "o2").exists()


def test_cli_rank_sources_refuses_a_missing_file(tmp_path) -> None:
    result = run("rank", tmp_path / "missing.wav", "--sources")
    assert result.exit_code == 1
    one_error_line(result, "missing.wav")


def test_atom_flatness_tells_noise_from_harmonic_atoms() -> None:
    freqs = np.linspace(0, SR / 2, 257)
    harmonic = sum(np.exp(-0.5 * ((freqs - 220 * h) / 20) ** 2) for h in range(1, 6)) + 1e-6
    noise = np.random.default_rng(0).uniform(0.5, 1.0, 257)
    flat = atom_flatness(np.stack([harmonic, noise, np.zeros(257)]))
    assert flat[0] < 0.1 < flat[1] and flat[1] > 0.8
    assert np.isfinite(flat).all()


def test_atom_flatness_equals_librosa_spectral_flatness() -> None:
    import librosa

    rng = np.random.default_rng(1)
    H = rng.gamma(0.3, size=(6, 257)) * rng.uniform(1e-3, 1e3, (6, 1))
    H[2, 10:] = 0.0  # mostly zero: librosa's floor at 1e-12 decides
    peak = H.max(axis=1, keepdims=True)
    want = librosa.feature.spectral_flatness(S=(H / peak).T, power=1.0, amin=1e-12)[0]
    np.testing.assert_allclose(atom_flatness(H), want, rtol=1e-10)
