"""Harmonic atoms (nmfsep.harmonic) and their use by learn_dictionary / nmfsep learn."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from nmfsep.dictionary import Dictionary, learn_dictionary
from nmfsep.exceptions import ParameterError
from nmfsep.harmonic import (
    PITCH_LIMITS,
    PITCHED,
    _build,
    _interpolation,
    _pyin_range,
    fit_harmonic,
    parse_pitch_range,
    partial_lobes,
    pitch_grid,
    played_pitches,
)
from nmfsep.spectral import STFTConfig, model_spectrogram, stft

SR = 8000
N_FFT = 1024
WINDOW = scipy.signal.get_window("hann", N_FFT, fftbins=True)


def tone(midi: float, seconds: float, sr: int = SR, n_harmonics: int = 8) -> np.ndarray:
    """A harmonic tone with 1/h partials, (1, n) float64."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, n_harmonics + 1)
            if h * f0 < sr / 2)
    return 0.3 * y[None, :]


def melody(pitches: list[float], note_s: float = 0.4, sr: int = SR) -> np.ndarray:
    return np.concatenate([tone(p, note_s, sr) for p in pitches], axis=1)


def spectrogram(y: np.ndarray, context: int = 1) -> np.ndarray:
    from nmfsep.context import stack_frames

    V = model_spectrogram(stft(y, STFTConfig(n_fft=N_FFT, hop_length=256)), 1.0)
    V = stack_frames(V, context)
    return V / V.mean()


def test_pitch_grid_spacing_and_limits():
    g = pitch_grid(60, 62, 3)
    np.testing.assert_allclose(g, 60 + np.arange(7) / 3)
    assert pitch_grid(10, 200, 1)[[0, -1]].tolist() == list(PITCH_LIMITS)


def test_partial_lobes_peak_on_the_partial_bin_and_nothing_above_nyquist():
    # 1000 Hz falls on bin 128 exactly at sr 8000, n_fft 1024: MIDI of 1000 Hz
    midi = 69 + 12 * np.log2(1000 / 440)
    bins, w = partial_lobes(np.array([midi]), sr=SR, n_fft=N_FFT, window=WINDOW, n_harmonics=5)
    j = np.argmax(w[0, 0])
    assert bins[0, 0, j] == 128 and w[0, 0, j] == pytest.approx(1.0)
    assert np.all(w[0, 1:3].max(axis=1) > 0.99)  # 2 and 3 kHz also on bins
    assert np.all(w[0, 3:] == 0)  # 4 and 5 kHz: at or above the Nyquist frequency


def test_build_equals_a_slow_loop():
    p = pitch_grid(40, 60, 3)
    bins, w = partial_lobes(p, sr=22050, n_fft=1024, window=scipy.signal.get_window(
        "hann", 1024), n_harmonics=10)
    S = _interpolation(p, 6.0)
    B = np.random.default_rng(0).random((S.shape[1], 10, 3))
    got = _build(B, S, bins, w, 513)
    A = np.einsum("pr,rht->pht", S, B)
    ref = np.zeros((p.size, 3, 513))
    for i in range(p.size):
        for h in range(10):
            for j in range(bins.shape[2]):
                ref[i, :, bins[i, h, j]] += A[i, h, :] * w[i, h, j]
    np.testing.assert_allclose(got, ref.reshape(p.size, -1), rtol=1e-12, atol=1e-12)


def test_interpolation_rows_sum_to_one():
    S = _interpolation(pitch_grid(30, 70, 3), 6.0)
    np.testing.assert_allclose(S.sum(axis=1), 1.0)
    assert S.min() >= 0


def fit(V, **kw):
    return fit_harmonic(V, sr=SR, n_fft=N_FFT, window=WINDOW, context_frames=kw.pop("T", 1),
                        pitches=kw.pop("pitches", pitch_grid(55, 72, 3)), **kw)


def test_loss_does_not_increase_with_iterations():
    V = spectrogram(melody([57, 60, 64, 67]))
    losses = [fit(V, max_iter=n).loss for n in (1, 5, 20, 60)]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 0.7 * losses[0]


def test_fit_finds_the_played_pitch():
    V = spectrogram(melody([62.0]))
    f = fit(V, max_iter=60)
    P = f.pitches.size
    assert f.pitches[np.argmax(f.energy[:P])] == pytest.approx(62.0, abs=0.34)
    assert f.harmonic_share > 0.8
    assert np.all(np.isfinite(f.atoms)) and f.atoms.min() >= 0


def test_context_atoms_have_one_block_per_frame():
    V = spectrogram(melody([60, 64]), context=3)
    f = fit(V, T=3, max_iter=10)
    assert f.atoms.shape[1] == 3 * (N_FFT // 2 + 1)


def test_wrong_width_is_refused():
    with pytest.raises(ParameterError, match="columns"):
        fit(np.ones((10, 7)))


def test_played_pitches_of_a_melody_and_of_noise():
    sr = 22050
    low, high, pitched = played_pitches([melody([57, 60, 64], 0.5, sr)], sr,
                                        frame_length=2048)
    assert pitched > 0.5
    assert 56.5 <= low <= 57.5 and 63.5 <= high <= 64.5
    noise = np.random.default_rng(0).normal(0, 0.1, (1, 2 * sr))
    assert played_pitches([noise], sr, frame_length=2048)[2] < PITCHED / 2
    assert played_pitches([noise[:, :100]], sr, frame_length=2048)[2] == 0.0


def test_played_pitches_at_a_rate_too_low_for_pyin_tracks_nothing():
    # 512-sample frames at 1000 Hz: a hop of 0.256 s lets pyin's pitch move by more
    # semitones than its grid (C1 to 450 Hz) holds, which librosa refuses outright
    sine = 0.5 * np.sin(2 * np.pi * 110 * np.arange(2000) / 1000)[None]
    assert _pyin_range(1000, 512) is None
    low, high, pitched = played_pitches([sine], 1000, frame_length=512)
    assert np.isnan(low) and np.isnan(high) and pitched == 0.0
    sine = 0.5 * np.sin(2 * np.pi * 110 * np.arange(4000) / 2000)[None]
    low, high, pitched = played_pitches([sine], 2000, frame_length=512)
    assert pitched > PITCHED and 44 <= low <= high <= 46  # A2 (MIDI 45)


@pytest.mark.parametrize("sr", [1500, 1950, 1960, 2000])
def test_pyin_range_says_whether_librosa_pyin_runs(sr):
    import librosa

    limits = _pyin_range(sr, 512)
    fmin, fmax = limits or (max(32.71, 2.02 * sr / 512), 0.45 * sr)
    y = np.random.default_rng(0).normal(0, 0.1, 2048)
    try:
        librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=512, hop_length=256,
                     resolution=0.5, max_transition_rate=35.92)
    except librosa.ParameterError:
        assert limits is None
    else:
        assert limits is not None


@pytest.mark.parametrize(("text", "expected"), [
    ("C4-C7", (60.0, 96.0)), ("Bb1-G3", (34.0, 55.0)), ("60-96", (60.0, 96.0)),
    ("C#4-D5", (61.0, 74.0))])
def test_parse_pitch_range(text, expected):
    assert parse_pitch_range(text) == expected


@pytest.mark.parametrize("text", ["C4", "x-y", "C7-C4", "C0-C4", "", "1-2-3"])
def test_parse_pitch_range_refuses(text):
    with pytest.raises(ParameterError):
        parse_pitch_range(text)


# ------------------------------------------------------------------ learn_dictionary


@pytest.fixture(scope="module")
def clip():
    return melody([60, 62, 64, 65, 67], 0.5, 22050), 22050


def test_learn_auto_adds_harmonic_atoms_before_the_plain_ones(clip):
    plain = learn_dictionary([clip], "keys", 8, pitch_shifts=(), harmonic="off", max_iter=20)
    both = learn_dictionary([clip], "keys", 8, pitch_shifts=(), harmonic="auto",
                            harmonic_margin=3, max_iter=20)
    rec = both.training["harmonic"]
    assert rec["atoms"] == both.atoms.shape[0] - 8 > 0
    np.testing.assert_array_equal(both.atoms[rec["atoms"]:], plain.atoms)
    low, high = rec["range"]
    assert 56.5 <= low <= 57.5 and 69.5 <= high <= 70.5  # 60-67 played, +- 3
    assert rec["noise_atoms"] == 4
    np.testing.assert_allclose(np.linalg.norm(both.atoms, axis=1), 1, rtol=1e-5)
    assert set(both.labels) == {"keys"}
    assert rec["n_iter"] == 20  # learn's max_iter caps the harmonic fit too


def test_learn_max_iter_caps_the_harmonic_fit(clip, monkeypatch):
    import nmfsep.harmonic as harmonic

    seen = []
    real = harmonic.fit_harmonic
    monkeypatch.setattr(harmonic, "fit_harmonic",
                        lambda *a, **kw: seen.append(kw["max_iter"]) or real(*a, **kw))
    for max_iter, expected in ((0, 0), (7, 7), (500, harmonic.HARMONIC_ITER)):
        d = learn_dictionary([clip], "keys", 4, pitch_shifts=(), harmonic=(60, 67),
                             max_iter=max_iter)
        assert seen[-1] == d.training["harmonic"]["n_iter"] == expected
        assert np.isfinite(d.atoms).all() and d.atoms.shape[0] == 4 + 22 + 4


def test_learn_with_a_given_range_and_file_round_trip(clip, tmp_path):
    d = learn_dictionary([clip], "keys", 8, pitch_shifts=(), harmonic=(48, 60),
                         max_iter=20)
    assert d.training["harmonic"]["range"] == [48.0, 60.0]
    assert d.atoms.shape[0] == 8 + 37 + 4
    path = d.save(tmp_path / "k.npz")
    assert path.stat().st_size < 0.6 * d.atoms.nbytes  # harmonic atoms: deflated by default
    back = Dictionary.load(path)
    assert back.training["harmonic"] == d.training["harmonic"]
    np.testing.assert_array_equal(back.atoms, d.atoms)


def test_learn_auto_adds_nothing_for_unpitched_clips():
    noise = (np.random.default_rng(1).normal(0, 0.1, (1, 3 * 22050)), 22050)
    d = learn_dictionary([noise], "hats", 8, pitch_shifts=(), harmonic="auto",
                         max_iter=20)
    assert d.training["harmonic"]["atoms"] == 0 and d.atoms.shape[0] == 8


def test_learn_auto_adds_nothing_at_a_rate_too_low_for_pitch_tracking():
    sine = (0.5 * np.sin(2 * np.pi * 110 * np.arange(2000) / 1000)[None].astype(np.float32),
            1000)
    d = learn_dictionary([sine], "x", 4, pitch_shifts=(), harmonic="auto", max_iter=20)
    assert d.atoms.shape[0] == 4
    assert d.training["harmonic"] == {
        "chosen_by": "pitch of the clips (librosa.pyin)", "voiced_probability": 0.0,
        "margin": 12.0, "atoms": 0}


@pytest.mark.parametrize("bad", ["on", (60,), (70, 60), (10, 60), ("a", "b"), 3])
def test_learn_refuses_bad_harmonic(clip, bad):
    with pytest.raises(ParameterError, match="harmonic"):
        learn_dictionary([clip], "keys", 4, harmonic=bad)


def test_separation_with_harmonic_atoms_adds_up(clip):
    from nmfsep.separate import separate

    y, sr = clip
    other = (melody([48, 43, 45, 41, 48], 0.5, sr), sr)
    d1 = learn_dictionary([clip], "a", 8, harmonic=(57, 70), pitch_shifts=(), max_iter=20)
    d2 = learn_dictionary([other], "b", 8, harmonic=(38, 51), pitch_shifts=(), max_iter=20)
    mix = 0.5 * (y + other[0])
    res = separate(mix, sr, dictionaries=[d1, d2], max_iter=30)
    np.testing.assert_allclose(res.stems["a"] + res.stems["b"], mix, atol=1e-5)


def test_cli_learn_harmonic_range_info_and_bad_range(tmp_path, clip):
    import soundfile as sf
    from typer.testing import CliRunner

    from nmfsep.cli import app

    runner = CliRunner()
    y, sr = clip
    sf.write(tmp_path / "k.wav", y[0].astype(np.float32), sr)
    r = runner.invoke(app, ["learn", str(tmp_path / "k.wav"), "-n", "keys", "-k", "4", "-o",
                            str(tmp_path / "k.npz"), "--harmonic", "C3-C4", "--max-iter", "5",
                            "--pitch-shifts", "none"])
    assert r.exit_code == 0, r.output
    d = Dictionary.load(tmp_path / "k.npz")
    assert d.training["harmonic"]["range"] == [48.0, 60.0]
    info = runner.invoke(app, ["info", str(tmp_path / "k.npz")])
    assert "harmonic:      41 atoms (incl. 4 noise), MIDI 48-60 (given)" in info.output
    for bad in ("C4", "C7-C4"):
        r = runner.invoke(app, ["learn", str(tmp_path / "k.wav"), "-n", "keys", "-o",
                                str(tmp_path / "x.npz"), "--harmonic", bad])
        assert r.exit_code == 2 and "--harmonic" in r.output
        assert not (tmp_path / "x.npz").exists()
    r = runner.invoke(app, ["learn", str(tmp_path / "k.wav"), "-n", "keys", "-o",
                            str(tmp_path / "x.npz"), "--harmonic", "auto", "--online"])
    assert r.exit_code != 0 and "--harmonic" in r.output and "online" in r.output


# ------------------------------------------------------------------ separation's use


@pytest.fixture(scope="module")
def pair(clip):
    y, sr = clip
    other = (melody([48, 43, 45, 41, 48], 0.5, sr), sr)
    a = learn_dictionary([clip], "a", 8, harmonic=(57, 70), pitch_shifts=(), max_iter=20)
    b = learn_dictionary([other], "b", 8, harmonic=(38, 51), pitch_shifts=(), max_iter=20)
    c = learn_dictionary([other], "c", 8, pitch_shifts=(), max_iter=20, harmonic="off")
    return a, b, c, 0.5 * (y + other[0]), sr


def test_without_harmonic_keeps_the_plain_atoms(pair):
    a, _, c, _, _ = pair
    plain = a.without_harmonic()
    assert a.n_harmonic == a.n_atoms - 8 > 0 and plain.n_harmonic == 0 and c.n_harmonic == 0
    np.testing.assert_array_equal(plain.atoms, a.atoms[a.n_harmonic:])
    assert plain.labels == ("a",) * 8 and plain.training["harmonic"]["left_out"] == a.n_harmonic
    assert c.without_harmonic() is c


@pytest.mark.parametrize(("which", "use", "n_free", "kept"), [
    ("ab", "auto", 0, {"a", "b"}), ("ac", "auto", 0, set()), ("ac", "on", 0, {"a"}),
    ("ab", "off", 0, set()), ("ab", "auto", 2, set()), ("ab", "on", 2, {"a", "b"}),
])
def test_harmonic_atoms_are_used_only_when_every_source_has_them(pair, which, use, n_free,
                                                                   kept):
    from nmfsep.plan import harmonic_in_use, make_plan

    dicts = [{"a": pair[0], "b": pair[1], "c": pair[2]}[n] for n in which]
    used = harmonic_in_use(dicts, use, n_free)
    assert {d.names[0] for d in used if d.n_harmonic} == kept
    plan = make_plan(None, None, dicts, n_free, harmonic=use)
    assert plan.n_fixed == sum(d.n_atoms for d in used)
    had = {d.names[0] for d in dicts if d.n_harmonic}
    assert set(plan.harmonic_left_out) == had - kept
    assert bool(plan.harmonic_note) == (use == "auto" and bool(had - kept))


def test_left_out_harmonic_atoms_separate_as_the_plain_dictionary(pair):
    from nmfsep.separate import separate

    a, _, c, mix, sr = pair
    auto = separate(mix, sr, dictionaries=[a, c], max_iter=30)
    plain = separate(mix, sr, dictionaries=[a.without_harmonic(), c], max_iter=30)
    for name in ("a", "c"):
        np.testing.assert_array_equal(auto.stems[name], plain.stems[name])
    assert auto.settings["harmonic_left_out"] == ["a"]
    assert [d["n_harmonic"] for d in auto.settings["dictionaries"]] == [0, 0]
    assert any("harmonic atoms of a left out: c has none" in w for w in auto.warnings)
    on = separate(mix, sr, dictionaries=[a, c], max_iter=30, harmonic="on")
    assert on.settings["dictionaries"][0]["n_harmonic"] == a.n_harmonic and not on.warnings
    np.testing.assert_allclose(on.stems["a"] + on.stems["c"], mix, atol=1e-5)
    with pytest.raises(ParameterError, match="harmonic"):
        separate(mix, sr, dictionaries=[a, c], harmonic="yes")


def test_plain_plan_drops_every_harmonic_atom(pair):
    from nmfsep.plan import make_plan, plain_plan

    a, b, _, _, _ = pair
    plan = make_plan(None, None, [a, b], 0, harmonic="auto")
    assert plan.harmonic_choice and plan.n_fixed == a.n_atoms + b.n_atoms
    assert not make_plan(None, None, [a, b], 0, harmonic="on").harmonic_choice
    plain = plain_plan(plan)
    assert plain.n_fixed == 16 and plain.names == plan.names and not plain.harmonic_choice
    assert set(plain.harmonic_left_out) == {"a", "b"}
    np.testing.assert_array_equal(plain.dictionary.atoms,
                                  np.concatenate([a.atoms[a.n_harmonic:], b.atoms[b.n_harmonic:]]))


@pytest.mark.parametrize("shift", [0, 1])
def test_auto_keeps_harmonic_atoms_only_where_they_fit_much_better(pair, shift):
    """The training melodies themselves: the plain atoms fit them, and are kept alone;
    other notes (within the harmonic range): only the harmonic atoms fit them."""
    from nmfsep.plan import HARMONIC_FIT_RATIO
    from nmfsep.separate import separate

    a, b, _, mix, sr = pair
    if shift:
        mix = 0.5 * (melody([63, 69, 66, 64, 68], 0.5, sr) + melody([50, 44, 46, 42, 51], 0.5, sr))
    auto = separate(mix, sr, dictionaries=[a, b], max_iter=30)
    ratio = auto.settings["harmonic_fit_ratio"]
    assert (ratio < HARMONIC_FIT_RATIO) == bool(shift), ratio
    same = separate(mix, sr, dictionaries=[a, b], max_iter=30,
                    harmonic="on" if shift else "off")
    for name in ("a", "b"):
        np.testing.assert_array_equal(auto.stems[name], same.stems[name])
    np.testing.assert_array_equal(auto.W, same.W)
    assert auto.settings["harmonic_left_out"] == ([] if shift else ["a", "b"])
    assert same.settings["harmonic_fit_ratio"] is None and not auto.warnings
    np.testing.assert_allclose(auto.stems["a"] + auto.stems["b"], mix, atol=1e-5)


def test_cli_summary_says_whether_the_fit_kept_the_harmonic_atoms(tmp_path, pair):
    import soundfile as sf
    from typer.testing import CliRunner

    from nmfsep.cli import app

    a, b, _, mix, sr = pair
    sf.write(tmp_path / "mix.wav", mix[0].astype(np.float32), sr)
    for d in (a, b):
        d.save(tmp_path / f"{d.names[0]}.npz")
    r = CliRunner().invoke(app, [
        "separate", str(tmp_path / "mix.wav"), "--dict", str(tmp_path / "a.npz"),
        "--dict", str(tmp_path / "b.npz"), "--max-iter", "30", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "harmonic atoms left out (fit ratio 0.9" in r.output
    assert "--harmonic on keeps them" in r.output


def test_cli_separate_harmonic_choice(tmp_path, pair):
    import json

    import soundfile as sf
    from typer.testing import CliRunner

    from nmfsep.cli import app

    a, _, c, mix, sr = pair
    sf.write(tmp_path / "mix.wav", mix[0].astype(np.float32), sr)
    for d in (a, c):
        d.save(tmp_path / f"{d.names[0]}.npz")
    runner = CliRunner()
    base = ["separate", str(tmp_path / "mix.wav"), "--dict", str(tmp_path / "a.npz"),
            "--dict", str(tmp_path / "c.npz"), "--max-iter", "10", "--json", "--force"]
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "on"), "--harmonic", "on"])
    assert r.exit_code == 0, r.output
    settings = json.loads(r.stdout)[0]["settings"]
    assert settings["harmonic_left_out"] == [] and settings["n_components"] == a.n_atoms + 8
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "x"), "--harmonic", "yes"])
    assert r.exit_code == 2 and "--harmonic" in r.output
    assert not (tmp_path / "x").exists()


def test_played_pitches_skips_frames_the_viterbi_path_calls_unvoiced(monkeypatch):
    import librosa

    f0 = np.array([220.0, np.nan, 440.0, 330.0])
    prob = np.array([0.9, 0.9, 0.9, 0.1])
    monkeypatch.setattr(librosa, "pyin", lambda *a, **k: (f0, prob > 0.5, prob))
    low, high, pitched = played_pitches([np.zeros((1, 4096))], SR, frame_length=1024)
    assert np.isfinite(low) and 57 <= low <= high <= 69
    assert pitched == pytest.approx(0.7)


def test_fit_on_strided_frames_stays_close():
    V = spectrogram(melody([57, 60, 64, 67], 0.6))
    full = fit(V, max_iter=40, max_frames=V.shape[0])
    half = fit(V, max_iter=40, max_frames=V.shape[0] // 2)
    assert half.atoms.shape == full.atoms.shape
    cos = np.sum(full.atoms * half.atoms, axis=1) / (
        np.linalg.norm(full.atoms, axis=1) * np.linalg.norm(half.atoms, axis=1) + 1e-12)
    assert np.median(cos) > 0.95


@pytest.mark.slow
def test_default_dictionaries_of_the_bundled_piano_and_flute_separate_their_duo():
    """The defaults on the bundled duo: harmonic atoms learned for both clips, whose notes
    the duo plays, so the fit comparison keeps the plain atoms (ratio 0.83): 18.2 / 16.3 dB
    (17.5 / 16.4 with the harmonic atoms)."""
    from pathlib import Path

    from nmfsep import io
    from nmfsep.bsseval import bss_eval_sources
    from nmfsep.separate import separate

    samples = Path(__file__).resolve().parent.parent / "audio_samples"
    dicts = [learn_dictionary([io.load(samples / "train" / f"{n}.flac")], n)
             for n in ("piano", "flute")]
    assert all(d.n_harmonic > 0 for d in dicts)
    mix, sr = io.load(samples / "piano_flute" / "mix.flac")
    res = separate(mix, sr, dictionaries=dicts)
    assert res.settings["harmonic_fit_ratio"] > 0.5
    refs = np.stack([io.load(samples / "piano_flute" / f"{n}.flac")[0].mean(0)
                     for n in ("piano", "flute")])
    sdr = bss_eval_sources(refs, np.stack([res.stems[n].mean(0) for n in ("piano", "flute")]))[0]
    assert sdr.min() > 15.0, sdr


@pytest.mark.parametrize("shift", [0, 1])
def test_stream_chooses_harmonic_atoms_on_its_first_block(pair, tmp_path, shift):
    import soundfile as sf

    from nmfsep.plan import HARMONIC_FIT_RATIO
    from nmfsep.stream import separate_stream

    a, b, _, mix, sr = pair
    if shift:
        mix = 0.5 * (melody([63, 69, 66, 64, 68], 0.5, sr) + melody([50, 44, 46, 42, 51], 0.5, sr))
    sf.write(tmp_path / "mix.wav", mix[0].astype(np.float32), sr)
    runs = {use: separate_stream(tmp_path / "mix.wav", tmp_path / use, dictionaries=[a, b],
                                 max_iter=30, harmonic=use, block_seconds=1.0)
            for use in ("auto", "on" if shift else "off")}
    settings = runs["auto"]["settings"]
    assert (settings["harmonic_fit_ratio"] < HARMONIC_FIT_RATIO) == bool(shift)
    assert settings["harmonic_left_out"] == ([] if shift else ["a", "b"])
    assert runs["auto"]["n_blocks"] > 1
    same = "on" if shift else "off"
    for name in ("a", "b"):
        got, _ = sf.read(tmp_path / "auto" / "mix" / f"{name}.wav")
        want, _ = sf.read(tmp_path / same / "mix" / f"{name}.wav")
        np.testing.assert_array_equal(got, want)


def test_stream_says_when_harmonic_atoms_are_left_out(pair, tmp_path):
    import soundfile as sf

    from nmfsep.stream import separate_stream

    a, _, c, mix, sr = pair
    sf.write(tmp_path / "mix.wav", mix[0].astype(np.float32), sr)
    summary = separate_stream(tmp_path / "mix.wav", tmp_path / "out", dictionaries=[a, c],
                              max_iter=10)
    assert any("harmonic atoms of a left out: c has none" in w for w in summary["warnings"])


@pytest.mark.parametrize("shift", [0, 1])
def test_auto_compares_a_long_mixture_on_its_first_seconds(pair, monkeypatch, shift):
    """Longer than HARMONIC_CHOICE_SECONDS: both fits on the first frames, then the atoms
    kept fitted to the whole mixture, giving the stems of harmonic="on" / "off" (one
    pass: relearn="off")."""
    import importlib

    from nmfsep.plan import HARMONIC_FIT_RATIO

    sep = importlib.import_module("nmfsep.separate")  # the module, not the function
    a, b, _, mix, sr = pair
    if shift:
        mix = 0.5 * (melody([63, 69, 66, 64, 68], 0.5, sr) + melody([50, 44, 46, 42, 51], 0.5, sr))
    whole = sep.separate(mix, sr, dictionaries=[a, b], max_iter=30,
                        relearn="off")
    frames, factorize = [], sep._factorize

    def spy(V, *args):
        frames.append(V.shape[-2])
        return factorize(V, *args)

    monkeypatch.setattr(sep, "_factorize", spy)
    monkeypatch.setattr(sep, "HARMONIC_CHOICE_SECONDS", 1.0)
    auto = sep.separate(mix, sr, dictionaries=[a, b], max_iter=30,
                        relearn="off")
    n = 1 + int(1.0 * a.sr / a.stft.hop_length)
    assert frames == [n, n, whole.W.shape[0]] and n < frames[-1]
    ratio = auto.settings["harmonic_fit_ratio"]
    assert ratio != whole.settings["harmonic_fit_ratio"]
    assert (ratio < HARMONIC_FIT_RATIO) == bool(shift), ratio
    same = sep.separate(mix, sr, dictionaries=[a, b], max_iter=30,
                        harmonic="on" if shift else "off", relearn="off")
    for name in ("a", "b"):
        np.testing.assert_array_equal(auto.stems[name], same.stems[name])
    assert auto.settings["harmonic_left_out"] == ([] if shift else ["a", "b"])
    monkeypatch.setattr(sep, "HARMONIC_CHOICE_SECONDS", 1e3)  # short: both fits whole
    frames.clear()
    short = sep.separate(mix, sr, dictionaries=[a, b], max_iter=30,
                        relearn="off")
    assert frames == [whole.W.shape[0]] * 2
    assert short.settings["harmonic_fit_ratio"] == whole.settings["harmonic_fit_ratio"]


@pytest.mark.parametrize("seconds", [None, 1.0])
def test_a_phased_callback_sees_every_fit_of_the_harmonic_choice(pair, monkeypatch, seconds):
    """A callback with ``phase`` hears of the choice's fits (on the first ``seconds`` of a
    longer mixture, then the final fit); a plain one sees one fit; the stems are the same."""
    import importlib

    sep = importlib.import_module("nmfsep.separate")  # the module, not the function
    a, b, _, mix, sr = pair
    if seconds is not None:
        assert mix.shape[-1] > 2 * seconds * sr
        monkeypatch.setattr(sep, "HARMONIC_CHOICE_SECONDS", seconds)
    seen: list = []

    class Phased:
        def __call__(self, iteration, loss=None):
            seen.append(iteration)

        def phase(self, name):
            seen.append(name)

    plain_seen: list = []
    kwargs = {"dictionaries": [a, b], "max_iter": 12, "tol": 0}
    phased = sep.separate(mix, sr, callback=Phased(), **kwargs)
    plain = sep.separate(mix, sr, callback=lambda i, loss=None: plain_seen.append(i), **kwargs)
    silent = sep.separate(mix, sr, **kwargs)
    where = "" if seconds is None else f", first {seconds:g} s"
    expected = [f"harmonic choice 1/2: plain atoms{where}",
                f"harmonic choice 2/2: harmonic atoms{where}", *([""] if seconds else [])]
    assert [x for x in seen if isinstance(x, str)] == expected
    runs: list[list[int]] = []
    for x in seen:  # the iterations after each phase
        if isinstance(x, str):
            runs.append([])
        else:
            runs[-1].append(x)
    assert runs == [list(range(1, 13))] * len(expected)
    assert plain_seen == list(range(1, 13))
    for name in phased.stems:
        np.testing.assert_array_equal(phased.stems[name], silent.stems[name])
        np.testing.assert_array_equal(plain.stems[name], silent.stems[name])


def test_cli_progress_bar_names_each_fit():
    import io as stdio

    from rich.console import Console
    from rich.progress import Progress

    from nmfsep.cli import _file_progress_callback

    with Progress(console=Console(file=stdio.StringIO()), disable=False) as progress:
        task = progress.add_task("NMF mix.wav", total=10)
        callback = _file_progress_callback(progress, task, stream=False)
        callback.phase("harmonic choice 1/2: plain atoms, first 30 s")
        callback(4)
        shown = progress.tasks[0]
        assert shown.description == "NMF mix.wav (harmonic choice 1/2: plain atoms, first 30 s)"
        assert shown.completed == 4
        callback.phase("")
        assert progress.tasks[0].description == "NMF mix.wav" and progress.tasks[0].completed == 0
        progress.reset(task, description="NMF other.wav")  # the next file
        callback.phase("harmonic choice 2/2: harmonic atoms")
        assert progress.tasks[0].description == (
            "NMF other.wav (harmonic choice 2/2: harmonic atoms)")
