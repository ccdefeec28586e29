"""Tests of nmfsep.separate: the pipeline, its invariants, files and saved models."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _audio import CFG, SR, low_high_dicts, notes, sdr

from nmfsep import io
from nmfsep.dictionary import Dictionary, learn_dictionary
from nmfsep.exceptions import AudioFormatError, DictionaryError, OutputError, ParameterError
from nmfsep.files import separate_file
from nmfsep.model import load_model
from nmfsep.plan import stem_names
from nmfsep.separate import SeparationResult, separate
from nmfsep.spectral import STFTConfig

SAMPLES = Path(__file__).resolve().parent.parent / "audio_samples"


@pytest.fixture(scope="module")
def sources() -> dict[str, np.ndarray]:
    low = notes([200, 250, 300, 225], 1.0, decay=2.0, seed=1)
    high = notes([1300, 1000, 1500, 1100], 1.0, decay=0.5, seed=2)
    low[: len(low) // 8] = 0  # the sources do not always overlap
    return {
        "low": (0.3 * low).astype(np.float32)[None],
        "high": (0.2 * high).astype(np.float32)[None],
    }


@pytest.fixture(scope="module")
def mix(sources) -> np.ndarray:
    return sources["low"] + sources["high"]


@pytest.fixture(scope="module")
def dicts() -> list[Dictionary]:
    return low_high_dicts(6, 80)


def check_result(res: SeparationResult, y: np.ndarray, atol: float = 1e-4) -> None:
    assert isinstance(res, SeparationResult)
    for stem in res.stems.values():
        assert stem.shape == y.shape
        assert stem.dtype == np.float32
        assert np.isfinite(stem).all()
    total = np.sum([s.astype(np.float64) for s in res.stems.values()], axis=0)
    assert np.abs(total - y).max() <= atol
    M = res.masks
    assert M.dtype == np.float32 and M.shape[0] == len(res.stems)
    assert np.isfinite(M).all() and (M >= 0).all() and (M <= 1).all()
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-5)
    assert list(res.groups) == list(res.stems)
    assert sorted(i for v in res.groups.values() for i in v) == list(range(res.H.shape[0]))
    json.dumps(res.summary())  # JSON-serializable


# --------------------------------------------------------------------------- modes


def test_blind_components(mix: np.ndarray) -> None:
    res = separate(mix, SR, n_components=3, stft=CFG, max_iter=30)
    check_result(res, mix)
    assert list(res.stems) == ["component_01", "component_02", "component_03"]
    assert res.W.shape == (res.masks.shape[1], 3) and res.H.shape == (3, CFG.n_bins)
    assert res.settings["mode"] == "blind" and res.settings["n_components"] == 3
    assert res.settings["power"] == 1.0 and res.settings["beta"] == 1.0
    assert res.sr == SR and res.stft == CFG
    assert res.warnings == []


def test_blind_sources(mix: np.ndarray) -> None:
    res = separate(mix, SR, n_components=6, n_sources=2, stft=CFG, max_iter=30)
    check_result(res, mix)
    assert list(res.stems) == ["source_1", "source_2"]
    assert res.settings["grouping"] == "timbre"
    res = separate(mix, SR, n_sources=2, stft=CFG, max_iter=30, grouping="activations")
    check_result(res, mix)
    assert res.settings["n_components"] >= 2


@pytest.mark.parametrize(("n_sources", "percussive", "k", "grouping"), [
    (2, False, 16, "timbre"), (3, False, 36, "kmeans"), (4, False, 48, "kmeans"),
    (3, True, 24, "register")])
def test_blind_defaults_by_number_of_sources(n_sources, percussive, k, grouping) -> None:
    """8 components per source and "timbre" for two sources; 12 and "kmeans" from
    three on (nmfsep.plan.MANY_SOURCES); a percussion-aware run keeps its own."""
    from nmfsep.plan import SeparationParams, components_per_source, make_plan

    plan = make_plan(None, n_sources, [], 0, percussive)
    assert plan.k == k == components_per_source(n_sources, percussive) * n_sources
    assert SeparationParams().grouping_for(plan) == grouping
    assert SeparationParams(grouping="timbre").grouping_for(plan) == "timbre"


def test_three_blind_sources_are_grouped_by_kmeans(mix: np.ndarray) -> None:
    res = separate(mix, SR, n_sources=3, stft=CFG, max_iter=20)
    check_result(res, mix)
    assert res.settings["grouping"] == "kmeans" and res.settings["n_components"] == 36


def test_supervised(mix: np.ndarray, sources, dicts) -> None:
    res = separate(mix, SR, dictionaries=dicts, max_iter=60)
    check_result(res, mix)
    assert list(res.stems) == ["low", "high"]
    # default dictionaries span 3 frames: each atom comes back as 3 single-frame atoms
    T = dicts[0].context_frames
    assert T == 3 and res.settings["context_frames"] == 3
    assert res.groups == {"low": list(range(6 * T)), "high": list(range(6 * T, 12 * T))}
    np.testing.assert_array_equal(
        res.H, np.concatenate([d.atoms for d in dicts]).reshape(12 * T, CFG.n_bins))
    assert res.settings["mode"] == "supervised"
    assert res.settings["dictionaries"][0]["names"] == ["low"]
    for name in ("low", "high"):
        assert sdr(sources[name][0], res.stems[name][0]) > 8.0


def test_semi_supervised(mix: np.ndarray, dicts) -> None:
    res = separate(mix, SR, dictionaries=dicts[:1], n_free=3, max_iter=40)
    check_result(res, mix)
    assert list(res.stems) == ["low", "residual"]
    assert res.groups["residual"] == list(range(18, 27))  # 3 free atoms x 3 frames
    assert res.settings["mode"] == "semi-supervised" and res.settings["n_free"] == 3
    res = separate(mix, SR, dictionaries=dicts[:1], n_free=2, alpha_W=0.01, l1_ratio=1.0,
                   max_iter=20)
    check_result(res, mix)


def test_itakura_saito_and_binary_masks(mix: np.ndarray) -> None:
    res = separate(mix, SR, n_components=4, beta="itakura-saito", stft=CFG, max_iter=20,
                   mask="binary")
    check_result(res, mix)
    assert res.settings["power"] == 2.0 and res.settings["beta"] == 0.0
    assert set(np.unique(res.masks)) <= {0.0, 1.0}


def test_callback_is_called(mix: np.ndarray) -> None:
    seen = []
    separate(mix, SR, n_components=2, stft=CFG, max_iter=5, tol=0,
             callback=lambda i, loss: seen.append((i, loss)))
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5]
    assert seen[-1][1] is not None


# --------------------------------------------------------------------------- invariants


def test_inputs_never_modified_and_level_independent(mix: np.ndarray, dicts) -> None:
    loud = mix * 20000.0  # int16-scale magnitudes
    loud0 = loud.copy()
    res = separate(loud, SR, dictionaries=dicts, max_iter=30)
    np.testing.assert_array_equal(loud, loud0)
    check_result(res, loud, atol=1e-6 * 20000 * 10)
    quiet = separate(mix, SR, dictionaries=dicts, max_iter=30)
    np.testing.assert_allclose(res.masks, quiet.masks, atol=1e-3)


def test_float64_input_gives_float32_stems(mix: np.ndarray) -> None:
    y = mix.astype(np.float64)
    res = separate(y, SR, n_components=2, stft=CFG, max_iter=10)
    check_result(res, y)


def test_same_seed_bit_identical(mix: np.ndarray) -> None:
    a = separate(mix, SR, n_components=4, stft=CFG, max_iter=20, random_state=7)
    b = separate(mix, SR, n_components=4, stft=CFG, max_iter=20, random_state=7)
    for name in a.stems:
        np.testing.assert_array_equal(a.stems[name], b.stems[name])
    np.testing.assert_array_equal(a.W, b.W)


def test_stereo_channels_share_masks(sources, dicts) -> None:
    left = sources["low"][0] + 0.3 * sources["high"][0]
    right = 0.4 * sources["low"][0] + sources["high"][0]
    same = np.stack([left, left])
    res = separate(same, SR, dictionaries=dicts, max_iter=20, spatial="shared")
    check_result(res, same)
    for stem in res.stems.values():
        np.testing.assert_array_equal(stem[0], stem[1])
    lr = np.stack([left, right])
    rl = np.stack([right, left])
    a = separate(lr, SR, dictionaries=dicts, max_iter=20, spatial="shared")
    b = separate(rl, SR, dictionaries=dicts, max_iter=20, spatial="shared")
    check_result(a, lr)
    for name in a.stems:
        np.testing.assert_array_equal(a.stems[name], b.stems[name][::-1])


def test_silent_mixture(dicts) -> None:
    y = np.zeros((2, 3000), dtype=np.float32)
    for kwargs in ({"n_components": 3, "stft": CFG}, {"n_components": 4, "n_sources": 2,
                                                      "stft": CFG},
                   {"dictionaries": dicts, "n_free": 1}):
        res = separate(y, SR, max_iter=10, **kwargs)
        check_result(res, y, atol=0.0)
        assert all(not s.any() for s in res.stems.values())
        assert len(res.warnings) == 1 and "silent" in res.warnings[0]
        np.testing.assert_allclose(res.masks, 1.0 / len(res.stems))


def test_tiny_values_do_not_break(mix: np.ndarray) -> None:
    y = mix * 1e-30
    res = separate(y, SR, n_components=2, stft=CFG, max_iter=10)
    check_result(res, y, atol=1e-34)


def test_clip_shorter_than_one_frame(dicts) -> None:
    y = (0.1 * np.sin(np.arange(100) / 3.0)).astype(np.float32)[None]
    res = separate(y, SR, dictionaries=dicts, max_iter=10)
    check_result(res, y)
    assert any("shorter than one STFT frame" in w for w in res.warnings)
    res = separate(y, SR, n_components=2, stft=CFG, max_iter=10)
    check_result(res, y)
    assert any(f"give at least {CFG.n_fft} samples" in w for w in res.warnings)
    one = np.array([[0.5]], dtype=np.float32)
    check_result(separate(one, SR, n_components=1, stft=CFG, max_iter=5), one)


def test_a_clip_of_few_frames_gets_fewer_default_components(dicts) -> None:
    # 10 samples: a few frames of CFG. Default counts shrink (with a warning), given ones don't
    y = (0.1 * np.sin(np.arange(10) / 3.0)).astype(np.float32)[None]
    res = separate(y, SR, n_sources=2, stft=CFG, max_iter=10)
    check_result(res, y)
    assert list(res.stems) == ["source_1", "source_2"]
    n = res.settings["n_components"]
    assert 2 <= n < 16
    assert any(f"{n} components instead of the default 16" in w for w in res.warnings)
    with pytest.raises(ParameterError, match=f"n_components=16 is more than the {n} STFT"):
        separate(y, SR, n_components=16, n_sources=2, stft=CFG, max_iter=10)
    with pytest.raises(ParameterError, match=f"n_sources={n + 1} is more than the {n} STFT"):
        separate(y, SR, n_sources=n + 1, stft=CFG, max_iter=10)
    with pytest.raises(ParameterError, match="n_free=100 is more than the"):
        separate(y, SR, dictionaries=dicts, n_free=100, max_iter=10)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_components": 0}, ParameterError, "n_components"),
        ({"n_components": 2.0}, ParameterError, "n_components"),
        ({"n_components": 500}, ParameterError, "frames"),
        ({"n_components": 2, "n_sources": 3}, ParameterError, "n_sources"),
        ({"n_components": 3, "n_sources": 0}, ParameterError, "n_sources"),
        ({"n_free": 2}, ParameterError, "n_free needs dictionaries"),
        ({}, ParameterError, "n_components"),
        ({"n_components": 2, "mask": "hard"}, ParameterError, "mask"),
        ({"n_components": 2, "mask_power": 0}, ParameterError, "mask_power"),
        ({"n_components": 2, "n_sources": 2, "grouping": "spectral"}, ParameterError, "grouping"),
        ({"n_components": 2, "power": -1}, ParameterError, "power"),
        ({"n_components": 2, "beta": "euclid"}, ParameterError, "beta"),
        ({"n_components": 2, "stft": {"n_fft": 256}}, ParameterError, "STFTConfig"),
        ({"n_components": 2, "alpha_W": "big"}, ParameterError, "alpha_W"),
        ({"n_components": 2, "l1_ratio": 2}, ParameterError, "l1_ratio"),
        ({"n_components": 2, "solver": "als"}, ParameterError, "solver"),
        ({"n_components": 2, "max_iter": -1}, ParameterError, "max_iter"),
        ({"n_components": 2, "tol": -1}, ParameterError, "tol"),
    ],
)
def test_parameter_errors(mix: np.ndarray, kwargs: dict, error: type, match: str) -> None:
    kwargs.setdefault("stft", CFG)
    kwargs.setdefault("max_iter", 5)
    with pytest.raises(error, match=match):
        separate(mix, SR, **kwargs)
    with pytest.raises(error, match=match):  # validated before anything else, even for silence
        separate(np.zeros_like(mix), SR, **kwargs)


def test_dictionary_mode_errors(mix: np.ndarray, dicts) -> None:
    with pytest.raises(ParameterError, match="n_free"):
        separate(mix, SR, dictionaries=dicts, n_free=-1)
    with pytest.raises(ParameterError, match="n_free"):
        separate(mix, SR, dictionaries=dicts, n_free=500)
    with pytest.raises(ParameterError, match="n_free"):
        separate(mix, SR, dictionaries=dicts, n_components=4)
    with pytest.raises(ParameterError, match="n_sources"):
        separate(mix, SR, dictionaries=dicts, n_sources=2)
    with pytest.raises(DictionaryError, match="n_fft"):
        separate(mix, SR, dictionaries=dicts, stft=STFTConfig(n_fft=512, hop_length=128))
    with pytest.raises(DictionaryError, match="power"):
        separate(mix, SR, dictionaries=dicts, power=2.0)
    with pytest.raises(DictionaryError, match="'low'"):
        separate(mix, SR, dictionaries=[dicts[0], dicts[0]])
    residual = Dictionary(dicts[0].atoms, ("residual",) * 6, SR, CFG,
                          context_frames=dicts[0].context_frames)
    with pytest.raises(DictionaryError, match="residual"):
        separate(mix, SR, dictionaries=[residual], n_free=1)
    with pytest.raises(ParameterError, match="Dictionary"):
        separate(mix, SR, dictionaries=[42])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_audio(mix: np.ndarray, bad: float) -> None:
    y = mix.copy()
    y[0, 100] = bad
    with pytest.raises(AudioFormatError, match="NaN or Inf"):
        separate(y, SR, n_components=2, stft=CFG)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.zeros((3, 100, 2), np.float32), "n_channels"),
        (np.zeros((1, 100), np.int16), "float32"),
        (np.zeros((1, 0), np.float32), "at least one"),
        (np.zeros((0,), np.float32), "at least one"),
        ([[0, 1]], "float32"),
        ({"a": 1}, "n_channels"),
        (np.zeros((5000, 2), np.float32), r"pass y\.T"),
        (np.zeros((65, 5000), np.float32), "at most 64 channels"),
    ],
)
def test_bad_audio(y, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        separate(y, SR, n_components=1, stft=CFG)


def test_a_stereo_file_of_one_sample_is_stereo_not_transposed() -> None:
    """(2, 1) is 2 channels of 1 sample (a file of one stereo frame), separated as a
    1-sample mono clip is; (5000, 2) stays the transposed layout (test_bad_audio)."""
    y = np.array([[0.5], [-0.5]], np.float32)
    res = separate(y, SR, n_components=2, stft=CFG, max_iter=2)
    assert any("shorter than one STFT frame" in w for w in res.warnings), res.warnings
    assert all(s.shape == (2, 1) for s in res.stems.values())
    np.testing.assert_allclose(sum(res.stems.values()), y, atol=1e-6)


def test_bad_rate(mix: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="sr"):
        separate(mix, 0, n_components=1, stft=CFG)


def test_stem_names(dicts) -> None:
    assert stem_names(n_components=3) == ["component_01", "component_02", "component_03"]
    assert stem_names(n_components=8, n_sources=2) == ["source_1", "source_2"]
    assert stem_names(dictionaries=dicts) == ["low", "high"]
    assert stem_names(dictionaries=dicts, n_free=2) == ["low", "high", "residual"]


# --------------------------------------------------------------------------- resampling


def test_mixture_at_another_rate(sources, dicts) -> None:
    y8 = sources["low"] + sources["high"]
    y16 = io.resample(y8, SR, 16000)
    res = separate(y16, 16000, dictionaries=dicts, max_iter=40)
    check_result(res, y16)
    assert res.sr == 16000
    assert res.stft.n_fft == 512 and res.stft.hop_length == 128  # same durations
    assert res.masks.shape[2] == res.stft.n_bins
    assert res.settings["analysis_sr"] == SR
    # Quality comparable with separating at the dictionaries' rate.
    low16 = io.resample(sources["low"], SR, 16000)
    assert sdr(low16[0], res.stems["low"][0]) > 6.0
    # Bins above the dictionaries' Nyquist share the top bin's masks.
    top = res.masks[:, :, res.stft.n_bins // 2 + 2 :]
    np.testing.assert_allclose(top, top[:, :, :1].repeat(top.shape[2], axis=2), atol=1e-6)


def test_masks_at_another_rate_are_interpolated_block_by_block(sources, dicts) -> None:
    """Native-grid masks (several blocks of frames) = np.interp of the analysis masks."""
    from nmfsep.masks import group_models, masks
    from nmfsep.spectral import fft_frequencies, frame_times

    y = np.tile(io.resample(sources["low"] + sources["high"], SR, 16000), 70)  # 70 s
    res = separate(y, 16000, dictionaries=dicts, max_iter=3)
    M_a = masks(group_models(res.W, res.H, res.groups), power=res.settings["mask_power"])
    f_a, f_n = fft_frequencies(SR, CFG), fft_frequencies(16000, res.stft)
    t_a = frame_times(M_a.shape[1], SR, CFG)
    t_n = frame_times(res.masks.shape[1], 16000, res.stft)
    assert res.masks.shape[1] * res.stft.n_bins > 2 * (1 << 20)  # three blocks or more
    expect = []
    for M in M_a.astype(np.float64):
        over_f = np.stack([np.interp(f_n, f_a, row) for row in M])
        expect.append(np.stack([np.interp(t_n, t_a, col) for col in over_f.T], axis=1))
    expect = np.clip(expect, 0.0, 1.0)
    expect /= expect.sum(axis=0)
    np.testing.assert_allclose(res.masks, expect, atol=1e-6)


def test_mixture_at_odd_rate_and_stereo(sources, dicts) -> None:
    y = io.resample(np.concatenate([sources["low"], sources["high"]]), SR, 11025)
    res = separate(y, 11025, dictionaries=dicts, max_iter=20)
    check_result(res, y)


# --------------------------------------------------------------------------- models


def test_save_and_load_model(mix: np.ndarray, dicts, tmp_path: Path) -> None:
    res = separate(mix, SR, dictionaries=dicts, n_free=2, max_iter=20)
    path = res.save_model(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]
    model = load_model(path)
    np.testing.assert_array_equal(model.W, res.W)
    np.testing.assert_array_equal(model.H, res.H)
    assert model.groups == res.groups
    assert model.sr == SR and model.stft == res.stft and model.analysis_stft == CFG
    assert model.settings == json.loads(json.dumps(res.settings))
    np.testing.assert_array_equal(model.loss_history, res.loss_history)
    np.testing.assert_allclose(model.masks(), res.masks, atol=1e-6)
    with pytest.raises(OutputError, match="exists"):
        res.save_model(path)
    with pytest.raises(DictionaryError, match="not a dictionary"):
        Dictionary.load(path)
    dpath = dicts[0].save(tmp_path / "d.npz")
    with pytest.raises(DictionaryError, match="dictionary file, not a model"):
        load_model(dpath)


def test_load_model_refuses_unsafe_groups(mix: np.ndarray, tmp_path: Path) -> None:
    res = separate(mix, SR, n_components=2, stft=CFG, max_iter=5)
    path = res.save_model(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    meta["groups"] = {"../evil": [0], "ok": [1]}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DictionaryError, match="unsafe"):
        load_model(tmp_path / "bad.npz")
    meta["groups"] = {"a": [0], "b": [0]}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(DictionaryError, match="distinct"):
        load_model(tmp_path / "bad2.npz")


# --------------------------------------------------------------------------- files


@pytest.fixture
def mix_file(mix: np.ndarray, tmp_path: Path) -> Path:
    path = tmp_path / "song.wav"
    sf.write(path, mix.T, SR, subtype="FLOAT")
    return path


def test_separate_file(mix_file: Path, mix: np.ndarray, dicts, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = separate_file(mix_file, out, dictionaries=dicts, max_iter=20, save_model=True)
    json.dumps(summary)
    folder = out / "song"
    assert summary["stems"] == {"low": str(folder / "low.wav"), "high": str(folder / "high.wav")}
    assert summary["model"] == str(folder / "model.npz")
    assert summary["mode"] == "supervised" and summary["warnings"] == []
    assert summary["duration"] == pytest.approx(1.0) and summary["sr"] == SR
    assert sorted(os.listdir(folder)) == ["high.wav", "low.wav", "model.npz"]
    stems = [io.load(folder / f"{n}.wav") for n in ("low", "high")]
    assert all(s[1] == SR and s[0].shape == mix.shape for s in stems)
    assert np.abs(stems[0][0] + stems[1][0] - mix).max() < 1e-4
    load_model(folder / "model.npz")

    before = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(OutputError, match="exists"):
        separate_file(mix_file, out, dictionaries=dicts, max_iter=20)
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    summary = separate_file(mix_file, out, dictionaries=dicts, max_iter=20, force=True)
    assert sorted(os.listdir(folder)) == ["high.wav", "low.wav", "model.npz"]


@pytest.mark.parametrize("case", ["blind", "supervised-16k"])
def test_separate_file_writes_the_stems_of_separate(
    case: str, mix: np.ndarray, dicts, tmp_path: Path
) -> None:
    """Block by block to files or whole in memory: the same stems, bit for bit."""
    y, sr, kw = mix, SR, {"n_components": 3, "stft": CFG, "max_iter": 15}
    if case == "supervised-16k":  # masks regridded from the dictionaries' rate
        y, sr, kw = io.resample(np.concatenate([mix, 0.5 * mix]), SR, 16000), 16000, {
            "dictionaries": dicts, "max_iter": 15}
    path = tmp_path / "song.wav"
    io.save(path, y, sr)
    y_file, _ = io.load(path)
    res = separate(y_file, sr, **kw)
    check_result(res, y_file)
    summary = separate_file(path, tmp_path / "out", save_model=True, **kw)
    assert list(summary["stems"]) == list(res.stems)
    assert summary["n_channels"] == y.shape[0] and summary["duration"] == y.shape[1] / sr
    for name, stem_path in summary["stems"].items():
        stem, stem_sr = io.load(stem_path)
        assert stem_sr == sr
        np.testing.assert_array_equal(stem, res.stems[name])
    model = load_model(summary["model"])
    np.testing.assert_array_equal(model.W, res.W)
    assert model.groups == res.groups and model.settings["mode"] == res.settings["mode"]


def test_float64_mixture(mix: np.ndarray) -> None:
    y = mix.astype(np.float64)
    res = separate(y, SR, n_components=3, stft=CFG, max_iter=15)
    check_result(res, y, atol=1e-6)
    ref = separate(mix, SR, n_components=3, stft=CFG, max_iter=15)
    for name in res.stems:
        assert sdr(ref.stems[name][0], res.stems[name][0]) > 60


def test_stems_are_the_masked_mixture(mix: np.ndarray) -> None:
    """Block by block equals applying the result's masks to the whole STFT at once (with
    per-channel masks; the spatial Wiener filter's are in tests/test_spatial_wiener.py)."""
    from nmfsep.masks import apply_masks
    from nmfsep.spectral import istft, stft

    y = np.concatenate([mix, 0.3 * mix[:, ::-1]])
    res = separate(y, SR, n_components=4, stft=CFG, max_iter=20, wiener_iter=0)
    S = apply_masks(stft(y, CFG), res.masks)
    raw = [istft(S[g], CFG, y.shape[1]) for g in range(S.shape[0])]
    share = (y - np.sum(raw, axis=0, dtype=np.float64)) / len(raw)
    for name, r in zip(res.stems, raw, strict=True):
        np.testing.assert_allclose(res.stems[name], r + share, atol=2e-7)


def test_separate_file_stems_phase_memory(
    mix: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the factorization, memory grows by some blocks, not by masks or stems."""
    import importlib
    import tracemalloc

    from nmfsep import spectral

    module = importlib.import_module("nmfsep.files")
    y = np.tile(mix, (2, 20))  # 20 s stereo: one stem is 1.3 MB, the masks 3.3 MB
    path = tmp_path / "long.wav"
    io.save(path, y, SR)
    monkeypatch.setattr(spectral, "_BLOCK_BYTES", 1 << 16)
    after_analysis = []
    real_analyse = module.analyse

    def analyse(*args, **kwargs):
        fit = real_analyse(*args, **kwargs)
        after_analysis.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.reset_peak()
        return fit

    monkeypatch.setattr(module, "analyse", analyse)
    tracemalloc.start()
    try:
        separate_file(path, tmp_path / "out", n_components=8, stft=CFG, max_iter=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    stem_bytes = 4 * y.size
    assert peak - after_analysis[0] < stem_bytes / 2, (peak - after_analysis[0], stem_bytes)


def test_separate_file_with_dictionary_paths(mix_file: Path, dicts, tmp_path: Path) -> None:
    paths = [d.save(tmp_path / f"{d.names[0]}.npz") for d in dicts]
    summary = separate_file(mix_file, tmp_path / "o", dictionaries=paths, n_free=1, max_iter=10)
    assert list(summary["stems"]) == ["low", "high", "residual"]


def test_separate_file_leaves_nothing_on_failure(
    mix_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_write = io.WavWriter.write

    def failing_write(self, y):
        calls.append(self.path)
        if len(calls) == 2:  # the second stem's first block
            raise OutputError(f"{self.path}: disk full")
        return real_write(self, y)

    monkeypatch.setattr(io.WavWriter, "write", failing_write)
    out = tmp_path / "deep" / "out"
    with pytest.raises(OutputError, match="disk full"):
        separate_file(mix_file, out, n_components=3, stft=CFG, max_iter=5)
    assert len(calls) == 2 and calls[0] != calls[1]
    assert not (tmp_path / "deep").exists()  # created folders removed again

    # An existing folder stays, and holds nothing new.
    (out / "song").mkdir(parents=True)
    calls.clear()
    with pytest.raises(OutputError):
        separate_file(mix_file, out, n_components=3, stft=CFG, max_iter=5)
    assert os.listdir(out / "song") == []


def test_separate_file_cleans_up_when_writing_fails_late(
    mix_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after some blocks of every stem were written (e.g. disk full)."""
    from nmfsep import spectral

    monkeypatch.setattr(spectral, "_BLOCK_BYTES", 1)  # one frame per block: many writes
    calls = []
    real_write = io.WavWriter.write

    def failing_write(self, y):
        calls.append(self.path)
        if len(calls) == 20:
            raise OSError(28, "No space left on device")
        return real_write(self, y)

    monkeypatch.setattr(io.WavWriter, "write", failing_write)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError, match="no space left on"):
        separate_file(mix_file, out, n_components=3, stft=CFG, max_iter=5)
    assert len(set(calls)) == 3
    assert os.listdir(out) == []


def test_separate_file_checks_before_computing(
    mix_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    module = importlib.import_module("nmfsep.files")

    def boom(*args, **kwargs):
        raise AssertionError("the separation must not run")

    out = tmp_path / "out"
    (out / "song").mkdir(parents=True)
    (out / "song" / "component_02.wav").write_bytes(b"old")
    monkeypatch.setattr(module, "analyse", boom)
    with pytest.raises(OutputError, match="component_02.wav: exists"):
        separate_file(mix_file, out, n_components=3, stft=CFG)
    (out / "song" / "component_01.wav").mkdir()
    with pytest.raises(OutputError, match="folder"):
        separate_file(mix_file, out, n_components=3, stft=CFG, force=True)
    with pytest.raises(ParameterError, match="n_free"):
        separate_file(mix_file, out, n_components=3, n_free=1)
    assert (out / "song" / "component_02.wav").read_bytes() == b"old"


def test_separate_file_names_folders_after_any_mixture(mix: np.ndarray, tmp_path: Path) -> None:
    # a hidden mixture's stems go to a visible folder; a long name is a file name still
    hidden = tmp_path / ".hidden.wav"
    sf.write(hidden, mix.T, SR, subtype="FLOAT")
    s = separate_file(hidden, tmp_path / "out", n_components=2, stft=CFG, max_iter=5)
    assert Path(s["output_dir"]) == tmp_path / "out" / "hidden"
    long = tmp_path / ("x" * 240 + ".wav")
    sf.write(long, mix.T, SR, subtype="FLOAT")
    s = separate_file(long, tmp_path / "out", n_components=2, stft=CFG, max_iter=5)
    assert Path(s["output_dir"]).name == "x" * 240


def test_separate_file_warns_of_an_earlier_runs_stems(mix_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kw = {"stft": CFG, "max_iter": 5}
    first = separate_file(mix_file, out, n_components=4, **kw)
    assert not any("earlier run" in w for w in first["warnings"])
    (Path(first["output_dir"]) / ".partial.wav").write_bytes(b"")  # hidden: not a stem
    again = separate_file(mix_file, out, n_components=2, force=True, **kw)
    left = [w for w in again["warnings"] if "earlier run" in w]
    assert len(left) == 1 and "component_03.wav, component_04.wav" in left[0], left
    same = separate_file(mix_file, out, n_components=4, force=True, **kw)
    assert not any("earlier run" in w for w in same["warnings"])


def test_separate_file_refuses_unsafe_names(mix_file: Path, tmp_path: Path) -> None:
    for name in (".hidden", "../escape", "x" * 256):
        with pytest.raises(ParameterError, match="name"):
            separate_file(mix_file, tmp_path / "out", n_components=2, name=name)
    assert not (tmp_path / "out").exists()


def test_separate_file_bad_audio(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioFormatError):
        separate_file(bad, tmp_path / "out", n_components=2)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_separate_file_unwritable_folder(mix_file: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            separate_file(mix_file, locked, n_components=2, stft=CFG)
    finally:
        locked.chmod(0o700)


# --------------------------------------------------------------------------- real music


@pytest.fixture(scope="module")
def sample_dicts() -> list[Dictionary]:
    """Small, quickly learned dictionaries from audio_samples/train (22.05 kHz)."""
    dicts = []
    for name in ("piano", "flute"):
        y, sr = io.load(SAMPLES / "train" / f"{name}.flac")
        dicts.append(learn_dictionary([(y[:, : 10 * sr], sr)], name, 16, max_iter=60,
                                      harmonic="off"))
    return dicts


def bss_sdr(task: str, res: SeparationResult, names: tuple[str, ...]) -> np.ndarray:
    import mir_eval

    refs = np.stack([io.load(SAMPLES / task / f"{n}.flac")[0].mean(axis=0) for n in names])
    ests = np.stack([res.stems[n].mean(axis=0) for n in names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mir_eval.separation.bss_eval_sources(
            refs.astype(np.float64), ests.astype(np.float64), compute_permutation=False
        )[0]


# Measured with these settings: piano_flute 11.8 / 11.6 dB, piano_flute_44k 22.9 / 15.6 dB
# (piano / flute). The training clips start with a sweep over each instrument's whole
# register (benchmarks/render.py), so the first 10 s used here cover every note the
# mixtures play; with the old clips (a melody only, flute 77-92 vs 74-89 in piano_flute)
# the piano reached only 1.1 dB on piano_flute.
@pytest.mark.slow
@pytest.mark.parametrize(("task", "margin"), [("piano_flute", 8.0), ("piano_flute_44k", 12.0)])
def test_supervised_piano_flute_quality(task: str, margin: float, sample_dicts) -> None:
    """Dictionaries from audio_samples/train separate the piano + flute samples."""
    mix, sr = io.load(SAMPLES / task / "mix.flac")
    res = separate(mix, sr, dictionaries=sample_dicts, max_iter=60)
    check_result(res, mix)
    assert res.settings["analysis_sr"] == 22050 and res.sr == sr
    sdr_values = bss_sdr(task, res, ("piano", "flute"))
    assert sdr_values.min() > margin, sdr_values


def test_temporal_context_separates_at_least_as_well_as_single_frames(
    mix: np.ndarray, sources
) -> None:
    from nmfsep.dictionary import learn_dictionary

    scores = {}
    for T in (1, 3):
        ds = [learn_dictionary([(sources[n], SR)], n, 6, stft=CFG, max_iter=60, harmonic="off",
                               context_frames=T) for n in ("low", "high")]
        res = separate(mix, SR, dictionaries=ds, max_iter=60)
        check_result(res, mix)
        assert res.H.shape == (12 * T, CFG.n_bins) and res.W.shape[1] == 12 * T
        scores[T] = min(sdr(sources[n][0], res.stems[n][0]) for n in ("low", "high"))
    assert scores[3] > scores[1] - 1.0, scores


def test_threads_do_not_change_the_stems(mix: np.ndarray, dicts) -> None:
    one = separate(mix, SR, dictionaries=dicts, max_iter=20, n_threads=1)
    two = separate(mix, SR, dictionaries=dicts, max_iter=20, n_threads=2)
    for name in one.stems:
        np.testing.assert_array_equal(one.stems[name], two.stems[name])
    with pytest.raises(ParameterError, match="n_threads"):
        separate(mix, SR, dictionaries=dicts, n_threads=0)


# --------------------------------------------------------------------------- adapted atoms


def test_adapted_atoms_separate_and_are_recorded(mix: np.ndarray, sources, dicts) -> None:
    fixed = separate(mix, SR, dictionaries=dicts, max_iter=60)
    same = separate(mix, SR, dictionaries=dicts, max_iter=60, adapt=None)
    assert np.array_equal(fixed.H, same.H) and same.settings["adapt"] is None
    res = separate(mix, SR, dictionaries=dicts, max_iter=60, adapt=0.5)
    check_result(res, mix)
    assert res.settings["adapt"] == 0.5 and res.groups == fixed.groups
    assert not np.array_equal(res.H, fixed.H)  # the atoms moved, less under a larger mu
    near = separate(mix, SR, dictionaries=dicts, max_iter=60, adapt=1e4)
    assert 0 < np.abs(near.H - fixed.H).max() < 1e-2 * np.abs(res.H - fixed.H).max()
    for name in ("low", "high"):
        assert sdr(sources[name][0], res.stems[name][0]) > 8.0


def test_adapt_errors(mix: np.ndarray, dicts) -> None:
    with pytest.raises(ParameterError, match="adapt needs dictionaries"):
        separate(mix, SR, n_components=2, stft=CFG, adapt=0.5)
    with pytest.raises(ParameterError, match="adapt must be None or a finite number >= 0"):
        separate(mix, SR, dictionaries=dicts, adapt=-1.0)
    with pytest.raises(ParameterError, match="adapt must be None or a finite number >= 0"):
        separate(mix, SR, dictionaries=dicts, adapt=float("inf"))
    is_dicts = [Dictionary(d.atoms, d.labels, SR, CFG, context_frames=d.context_frames,
                           beta=0.0, power=2.0) for d in dicts]
    with pytest.raises(ParameterError, match="adapt supports Kullback-Leibler"):
        separate(mix, SR, dictionaries=is_dicts, adapt=0.5)


def test_free_atoms_per_source_join_their_source(mix: np.ndarray, dicts) -> None:
    T = dicts[0].context_frames
    res = separate(mix, SR, dictionaries=dicts, n_free=1, free_per_source=2, max_iter=40)
    check_result(res, mix)
    assert res.settings["free_per_source"] == 2
    # 12 atoms, 2 copies per source, then the free atom, each of T frames
    assert res.groups["low"] == list(range(6 * T)) + list(range(12 * T, 14 * T))
    assert res.groups["high"] == list(range(6 * T, 12 * T)) + list(range(14 * T, 16 * T))
    assert res.groups["residual"] == list(range(16 * T, 17 * T))
    learned = np.concatenate([d.atoms for d in dicts]).reshape(12 * T, CFG.n_bins)
    np.testing.assert_array_equal(res.H[: 12 * T], learned)  # adapt=None: the rest fixed
    assert not np.array_equal(res.H[12 * T: 13 * T], learned[:T])  # the copy moved
    with pytest.raises(ParameterError, match="free_per_source needs dictionaries"):
        separate(mix, SR, n_components=2, stft=CFG, free_per_source=1)
    with pytest.raises(ParameterError, match="free_per_source"):
        separate(mix, SR, dictionaries=dicts, free_per_source=-1)


@pytest.mark.parametrize("sr_n", [44100, 48000, 16000])
def test_regridded_masks_picked_where_the_grids_meet_equal_the_blend(
    sr_n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """22.05 kHz masks on a native grid: picked (44.1 kHz) or blended, the same masks."""
    import sys

    from nmfsep.masks import masks

    mod = sys.modules["nmfsep.separate"]
    stft_a = STFTConfig.for_sample_rate(22050)
    stft_n = mod._scaled_stft(stft_a, sr_n / 22050)
    rng = np.random.default_rng(sr_n)
    M = masks(rng.random((3, 40, stft_a.n_bins)) ** 4, power=1.5)
    n_frames = 41  # at 44.1 kHz, one frame beyond the last analysis one
    fast = mod._regrid_masks(M, 22050, stft_a, sr_n, stft_n, n_frames)
    monkeypatch.setattr(mod, "_picks", lambda weights: None)
    blend = mod._regrid_masks(M, 22050, stft_a, sr_n, stft_n, n_frames)
    assert fast.shape == blend.shape == (3, n_frames, stft_n.n_bins)
    np.testing.assert_allclose(fast, blend, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.sum(axis=0), 1.0, atol=1e-6)
    if sr_n == 44100:  # the grids meet: every native value is an analysis value
        np.testing.assert_array_equal(fast[:, :40, : stft_a.n_bins], M)
        np.testing.assert_array_equal(fast[:, 40, : stft_a.n_bins], M[:, 39])
        np.testing.assert_array_equal(fast[:, :40, -1], M[:, :, -1])  # above its Nyquist
