"""Tests of nmfsep.dictionary: learning, combining, saving and loading dictionaries."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _audio import CFG, SR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmfsep import io
from nmfsep.dictionary import (
    DEFAULT_CONTEXT_FRAMES,
    FORMAT_VERSION,
    Dictionary,
    combine,
    default_learning_stft,
    fit_mismatch,
)
from nmfsep.dictionary import learn_dictionary as _learn_dictionary
from nmfsep.exceptions import DictionaryError, OutputError, ParameterError
from nmfsep.spectral import STFTConfig


def learn_dictionary(*args, **kwargs) -> Dictionary:
    """Plain atoms unless asked: these tests are about them (harmonic ones: test_harmonic)."""
    kwargs.setdefault("harmonic", "off")
    return _learn_dictionary(*args, **kwargs)


def tone(f0: float, seconds: float = 0.5, sr: int = SR, n_harm: int = 4, seed: int = 0):
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, n_harm + 1))
    y = y + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * y).astype(np.float32)[None]


@pytest.fixture(scope="module")
def piano() -> Dictionary:
    clips = [(tone(220), SR), (tone(330, seed=1), SR)]
    return learn_dictionary(clips, "piano", 4, stft=CFG, max_iter=60, clip_names=["a", "b"],
                            context_frames=1)


@pytest.fixture(scope="module")
def flute() -> Dictionary:
    return learn_dictionary([(tone(880, n_harm=2), SR)], "flute", 3, stft=CFG, max_iter=60,
                            context_frames=1)


# --------------------------------------------------------------------------- learning


def test_learn_default_context(piano: Dictionary) -> None:
    # default temporal context: every atom spans 3 frames, laid out frame after frame
    d = learn_dictionary([(tone(220), SR)], "piano", 4, stft=CFG, max_iter=30)
    assert d.context_frames == DEFAULT_CONTEXT_FRAMES == 3
    assert d.atoms.shape == (4, 3 * CFG.n_bins) and d.n_bins == CFG.n_bins
    assert d.meta()["context_frames"] == 3


def test_learn_shapes_and_metadata(piano: Dictionary) -> None:
    assert piano.atoms.shape == (4, CFG.n_bins) and piano.context_frames == 1
    assert piano.atoms.dtype == np.float32
    assert not piano.atoms.flags.writeable
    np.testing.assert_allclose(np.linalg.norm(piano.atoms, axis=1), 1.0, rtol=1e-5)
    assert (piano.atoms >= 0).all()
    assert piano.labels == ("piano",) * 4
    assert piano.names == ("piano",)
    assert piano.groups == {"piano": [0, 1, 2, 3]}
    assert piano.sr == SR and piano.stft == CFG
    assert piano.power == 1.0 and piano.beta == 1.0  # Kullback-Leibler on magnitude
    assert piano.normalization == "l2"
    assert piano.clips == ({"name": "a", "duration": 0.5}, {"name": "b", "duration": 0.5})
    assert piano.training["n_iter"] >= 1
    assert "piano" in repr(piano)


def test_learn_power_follows_beta() -> None:
    d = learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, beta="itakura-saito", max_iter=20)
    assert d.power == 2.0 and d.beta == 0.0
    d = learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, beta="frobenius", max_iter=20)
    assert d.power == 1.0 and d.beta == 2.0
    d = learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, beta=1, power=2.0, max_iter=20)
    assert d.power == 2.0 and d.beta == 1.0


def test_learn_is_deterministic_and_pure() -> None:
    y = tone(220) * 20000  # int16-scale magnitudes
    y0 = y.copy()
    a = learn_dictionary([(y, SR)], "x", 3, stft=CFG, max_iter=30, random_state=3)
    b = learn_dictionary([(y, SR)], "x", 3, stft=CFG, max_iter=30, random_state=3)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(a.atoms, b.atoms)
    # The level of the clips does not matter.
    c = learn_dictionary([(y / 20000, SR)], "x", 3, stft=CFG, max_iter=30, random_state=3)
    np.testing.assert_allclose(a.atoms, c.atoms, atol=1e-4)


def test_learn_resamples_to_first_rate_or_given_rate() -> None:
    clips = [(tone(220), SR), (tone(220, sr=16000), 16000)]
    d = learn_dictionary(clips, "x", 2, max_iter=20)
    # default window: twice STFTConfig.for_sample_rate's
    base = STFTConfig.for_sample_rate(SR)
    assert d.sr == SR and d.stft == default_learning_stft(SR)
    assert (d.stft.n_fft, d.stft.hop_length) == (2 * base.n_fft, 2 * base.hop_length)
    assert [c["duration"] for c in d.clips] == [0.5, 0.5]
    d = learn_dictionary(clips, "x", 2, sr=16000, max_iter=20)
    assert d.sr == 16000 and d.n_bins == default_learning_stft(16000).n_bins


def test_learn_callback_and_sparsity() -> None:
    seen = []
    d = learn_dictionary(
        [(tone(220), SR)], "x", 3, stft=CFG, max_iter=10, tol=0, alpha_W=0.01,
        callback=lambda i, loss: seen.append(i),
    )
    assert seen == list(range(1, 11))
    assert d.training["normalize_atoms"] is True  # automatic with sparsity
    d = learn_dictionary([(tone(220), SR)], "x", 3, stft=CFG, max_iter=10)
    assert d.training["normalize_atoms"] is False
    np.testing.assert_allclose(np.linalg.norm(d.atoms, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "../evil"}, "path separator"),
        ({"name": "a/b"}, "path separator"),
        ({"name": ""}, "empty"),
        ({"name": "bad\x00name"}, "control"),
        ({"name": ".."}, "special"),
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.5}, "n_components"),
        ({"n_components": 10_000}, "frames"),
        ({"clips": []}, "no training clips"),
        ({"clips": [(np.zeros((1, 4000), np.float32), SR)]}, "silent"),
        ({"clips": [(np.full((1, 100), np.nan, np.float32), SR)]}, "NaN"),
        ({"clips": [(np.zeros(100, np.float32), SR)]}, "n_channels"),
        ({"clips": [(np.zeros((1, 100), np.int16), SR)]}, "float32"),
        ({"clips": [(tone(220), 0)]}, "sample rate"),
        ({"clips": [tone(220)]}, "pair"),
        ({"clips": (tone(220), SR)}, "pairs"),
        ({"power": -1.0}, "power"),
        ({"clip_names": ["a", "b"]}, "clip name"),
    ],
)
def test_learn_validation(kwargs: dict, match: str) -> None:
    args = {"clips": [(tone(220), SR)], "name": "piano", "n_components": 2}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match):
        learn_dictionary(args.pop("clips"), args.pop("name"), args.pop("n_components"),
                         stft=CFG, max_iter=5, **args)


# --------------------------------------------------------------------------- the dataclass


def test_dictionary_validates_fields(piano: Dictionary) -> None:
    atoms = np.array(piano.atoms)
    with pytest.raises(ParameterError, match="labels"):
        Dictionary(atoms, ("a",) * 3, SR, CFG)
    with pytest.raises(ParameterError, match="path separator"):
        Dictionary(atoms, ("../x",) * 4, SR, CFG)
    with pytest.raises(ParameterError, match="bins"):
        Dictionary(atoms[:, :10], ("a",) * 4, SR, CFG)
    with pytest.raises(ParameterError, match="non-negative"):
        Dictionary(-atoms, ("a",) * 4, SR, CFG)
    with pytest.raises(ParameterError, match="normalization"):
        Dictionary(atoms, ("a",) * 4, SR, CFG, normalization="max")
    with pytest.raises(ParameterError, match="sr"):
        Dictionary(atoms, ("a",) * 4, 0, CFG)
    d = Dictionary(atoms, ("a",) * 4, SR, CFG)
    atoms[0, 0] = 123.0  # the dictionary holds its own copy
    assert d.atoms[0, 0] != 123.0


# --------------------------------------------------------------------------- files


def test_save_load_round_trip(piano: Dictionary, tmp_path: Path) -> None:
    path = piano.save(tmp_path / "piano.npz")
    assert path == tmp_path / "piano.npz"
    assert sorted(os.listdir(tmp_path)) == ["piano.npz"]  # no temporary left behind
    loaded = Dictionary.load(path)
    assert loaded == piano
    assert loaded.atoms.dtype == np.float32
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {"atoms", "labels", "meta"}
        assert npz["labels"].dtype.kind == "U"
        meta = json.loads(str(npz["meta"]))
    assert meta["format_version"] == FORMAT_VERSION
    for key in ("nmfsep_version", "sample_rate", "n_fft", "hop_length", "win_length",
                "window", "center", "power", "beta", "normalization", "clips"):
        assert key in meta


def test_save_refuses_to_overwrite(piano: Dictionary, flute: Dictionary, tmp_path: Path) -> None:
    path = piano.save(tmp_path / "d.npz")
    with pytest.raises(OutputError, match="exists"):
        flute.save(path)
    assert Dictionary.load(path) == piano
    flute.save(path, force=True)
    assert Dictionary.load(path) == flute
    with pytest.raises(OutputError, match="folder"):
        flute.save(tmp_path)


def _arrays(d: Dictionary) -> dict[str, np.ndarray]:
    return {
        "atoms": np.array(d.atoms),
        "labels": np.array(d.labels),
        "meta": np.array(json.dumps(d.meta())),
    }


def _tamper_meta(**changes):
    def f(arrays):
        meta = json.loads(str(arrays["meta"]))
        for key, value in changes.items():
            if value is _DROP:
                meta.pop(key)
            else:
                meta[key] = value
        arrays["meta"] = np.array(json.dumps(meta))
        return arrays

    return f


_DROP = object()


def _set(key, value):
    def f(arrays):
        arrays[key] = value(arrays[key]) if callable(value) else value
        return arrays

    return f


def _drop(key):
    def f(arrays):
        del arrays[key]
        return arrays

    return f


TAMPERS = {
    "missing atoms": (_drop("atoms"), "missing"),
    "missing meta": (_drop("meta"), "missing"),
    "float64 atoms": (_set("atoms", lambda a: a.astype(np.float64)), "float32"),
    "1-D atoms": (_set("atoms", lambda a: a[0]), "shape"),
    "NaN atoms": (_set("atoms", lambda a: np.where(a > -1, np.nan, a).astype(np.float32)), "NaN"),
    "negative atoms": (_set("atoms", lambda a: -a), "negative"),
    "label count": (_set("labels", lambda lab: lab[:-1]), "labels for"),
    "numeric labels": (_set("labels", lambda lab: np.arange(lab.size)), "strings"),
    "traversal label": (_set("labels", lambda lab: np.array(["../../evil"] * lab.size)), "unsafe"),
    "control label": (_set("labels", lambda lab: np.array(["a\nb"] * lab.size)), "unsafe"),
    "bad json": (_set("meta", np.array("{not json")), "JSON"),
    "json list": (_set("meta", np.array("[1, 2]")), "object"),
    "json NaN": (_set("meta", np.array('{"power": NaN}')), "JSON"),
    "meta array": (_set("meta", np.array(["{}", "{}"])), "one JSON string"),
    "format 2": (_tamper_meta(format_version=2), "format_version"),
    "format str": (_tamper_meta(format_version="1"), "format_version"),
    "no sample_rate": (_tamper_meta(sample_rate=_DROP), "lacks"),
    "no power": (_tamper_meta(power=_DROP), "lacks"),
    "bad sample_rate": (_tamper_meta(sample_rate=-3), "sample_rate"),
    "bad n_fft": (_tamper_meta(n_fft=512), "bins"),
    "bad window": (_tamper_meta(window="nope"), "STFT"),
    "bad power": (_tamper_meta(power="x"), "power"),
    "bad normalization": (_tamper_meta(normalization="max"), "normalization"),
    "not unit norm": (_set("atoms", lambda a: a * 2), "unit norm"),
    "bad clips": (_tamper_meta(clips=[{"name": 1}]), "clips"),
    "model kind": (_tamper_meta(kind="model"), "not a dictionary"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_load_refuses_tampered_files(case: str, piano: Dictionary, tmp_path: Path) -> None:
    tamper, match = TAMPERS[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **tamper(_arrays(piano)))
    with pytest.raises(DictionaryError, match=match) as info:
        Dictionary.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_load_refuses_pickled_object_arrays(piano: Dictionary, tmp_path: Path) -> None:
    arrays = _arrays(piano)
    arrays["labels"] = np.array(list(piano.labels), dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays)  # np.savez pickles object arrays
    with pytest.raises(DictionaryError, match="pickle"):
        Dictionary.load(path)


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "npy", "truncated", "empty"])
def test_load_refuses_non_dictionaries(kind: str, piano: Dictionary, tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("hello")
    elif kind == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(3))
    elif kind == "truncated":
        piano.save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(DictionaryError) as info:
        Dictionary.load(path)
    assert str(path) in str(info.value)


safe_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(1, 6),
    label=safe_names,
    power=st.sampled_from([1.0, 2.0, 0.5]),
    beta=st.floats(-1, 2, allow_nan=False),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(k: int, label: str, power: float, beta: float, seed: int) -> None:
    cfg = STFTConfig(n_fft=32, hop_length=8, window="hamming", center=False)
    atoms = np.random.default_rng(seed).random((k, cfg.n_bins)).astype(np.float32)
    d = Dictionary(atoms, (label,) * k, 16000, cfg, power=power, beta=beta,
                   normalization="none", clips=({"name": "clip é.wav", "duration": 1.5},))
    with tempfile.TemporaryDirectory() as tmp:
        loaded = Dictionary.load(d.save(Path(tmp) / "d.npz"))
    assert loaded == d
    np.testing.assert_array_equal(loaded.atoms, atoms)


# --------------------------------------------------------------------------- combining


def test_combine(piano: Dictionary, flute: Dictionary) -> None:
    both = combine([piano, flute])
    assert both.n_atoms == 7
    assert both.names == ("piano", "flute")
    assert both.groups == {"piano": [0, 1, 2, 3], "flute": [4, 5, 6]}
    np.testing.assert_array_equal(both.atoms[4:], flute.atoms)
    assert both.clips == piano.clips + flute.clips
    assert combine([piano]) is piano
    with pytest.raises(ParameterError, match="no dictionaries"):
        combine([])


def test_combine_refuses_duplicate_names(piano: Dictionary) -> None:
    with pytest.raises(DictionaryError, match="'piano'"):
        combine([piano, piano])


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"sr": 16000}, "sample rate"),
        ({"stft": STFTConfig(n_fft=256, hop_length=128)}, "hop_length"),
        ({"stft": STFTConfig(n_fft=256, hop_length=64, window="hamming")}, "window"),
        ({"power": 2.0}, "power"),
        ({"beta": 0.0}, "beta"),
    ],
)
def test_combine_refuses_different_settings(
    piano: Dictionary, flute: Dictionary, change: dict, setting: str
) -> None:
    fields = {"atoms": flute.atoms, "labels": flute.labels, "sr": flute.sr, "stft": flute.stft,
              "power": flute.power, "beta": flute.beta}
    fields.update(change)
    other = Dictionary(**fields)
    with pytest.raises(DictionaryError, match=setting) as info:
        combine([piano, other])
    assert "vs" in str(info.value)


def test_combine_refuses_different_n_fft(piano: Dictionary) -> None:
    cfg = STFTConfig(n_fft=128, hop_length=64)
    other = learn_dictionary([(tone(500), SR)], "flute", 2, stft=cfg, max_iter=5)
    with pytest.raises(DictionaryError, match="n_fft"):
        combine([piano, other])


def test_fit_mismatch(piano: Dictionary) -> None:
    assert fit_mismatch(piano, SR, CFG, 1.0) is None
    assert fit_mismatch(piano, None, None, None) is None
    assert "16000" in fit_mismatch(piano, 16000, CFG, 1.0)
    assert "n_fft" in fit_mismatch(piano, SR, STFTConfig(n_fft=512, hop_length=64), 1.0)
    assert "hop_length" in fit_mismatch(piano, SR, STFTConfig(n_fft=256, hop_length=32), None)
    assert "win_length" in fit_mismatch(
        piano, SR, STFTConfig(n_fft=256, hop_length=64, win_length=128), None
    )
    assert "power" in fit_mismatch(piano, SR, CFG, 2.0)


# --------------------------------------------------------------------------- online learning


def _notes(f0s, seconds_each: float, n_harm: int, seed: int) -> np.ndarray:
    """A melody of harmonic notes with decaying envelopes, ``(1, n)`` float32."""
    parts = []
    for i, f0 in enumerate(f0s):
        y = tone(f0, seconds_each, n_harm=n_harm, seed=seed + i)[0]
        env = np.exp(-np.arange(y.size) / (0.6 * seconds_each * SR))
        parts.append(y * env)
    return np.concatenate(parts).astype(np.float32)[None]


def _write(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    import soundfile as sf

    sf.write(str(path), y.T, sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory):
    """Training files of two synthetic sources and a mixture of new melodies of both."""
    folder = tmp_path_factory.mktemp("online")
    low = _notes([220, 277, 330, 247, 294, 220, 330, 277], 0.5, 5, seed=0)
    high = _notes([523, 659, 784, 587, 698, 523, 784, 659], 0.5, 2, seed=10)
    a = _notes([247, 330, 220, 294], 0.5, 5, seed=20)
    b = _notes([784, 523, 698, 659], 0.5, 2, seed=30)
    return {
        "low": _write(folder / "low.wav", low),
        "high": _write(folder / "high.wav", high),
        "refs": np.concatenate([a, b]),
        "mix": a + b,
        "low_y": low,
        "high_y": high,
    }


def _sdr(dicts, two_sources) -> np.ndarray:
    import warnings

    import mir_eval

    from nmfsep.separate import separate

    res = separate(two_sources["mix"], SR, dictionaries=dicts)
    est = np.concatenate([res.stems["low"], res.stems["high"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(two_sources["refs"], est)
    return sdr


def test_online_separates_about_as_well_as_batch(two_sources) -> None:
    from nmfsep.dictionary import learn_dictionary_online

    k = 6
    batch = [
        learn_dictionary([(two_sources[f"{n}_y"], SR)], n, k, stft=CFG, context_frames=1)
        for n in ("low", "high")
    ]
    online = [
        learn_dictionary_online([two_sources[n]], n, k, stft=CFG, block_seconds=0.5, passes=30)
        for n in ("low", "high")
    ]
    # measured: batch 18.9 / 18.3 dB, online (30 passes of 0.5 s blocks) 18.9 / 18.3 dB
    sdr_batch, sdr_online = _sdr(batch, two_sources), _sdr(online, two_sources)
    assert (sdr_batch > 5).all(), sdr_batch
    assert (sdr_online > sdr_batch - 1.5).all(), (sdr_online, sdr_batch)


def test_online_metadata_round_trip_and_progress(two_sources, tmp_path: Path) -> None:
    from nmfsep.dictionary import learn_dictionary_online

    calls: list[tuple[float, float]] = []
    d = learn_dictionary_online(
        [two_sources["low"], two_sources["high"]], "mix", 4, stft=CFG, block_seconds=1.0,
        passes=2, callback=lambda done, total: calls.append((done, total)),
    )
    assert d.atoms.shape == (4, CFG.n_bins) and d.labels == ("mix",) * 4
    assert np.allclose(np.linalg.norm(d.atoms, axis=1), 1, atol=1e-5)
    assert d.sr == SR and d.stft == CFG and d.power == 1.0 and d.beta == 1.0
    assert d.clips == ({"name": "low.wav", "duration": 4.0}, {"name": "high.wav", "duration": 4.0})
    assert d.training["algorithm"] == "online" and d.training["passes"] == 2
    assert d.training["n_frames_seen"] == 2 * d.training["n_frames"]
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1] == (24.0, 24.0)  # (1 scan + 2 passes) x 8 s
    again = learn_dictionary_online(
        [two_sources["low"], two_sources["high"]], "mix", 4, stft=CFG, block_seconds=1.0,
        passes=2,
    )
    assert np.array_equal(d.atoms, again.atoms)  # deterministic
    loaded = Dictionary.load(d.save(tmp_path / "d.npz"))
    assert loaded == d and loaded.meta()["training"]["algorithm"] == "online"


def test_online_one_block_pass_matches_the_batch_spectrogram(two_sources) -> None:
    """Same frames and levels as learn_dictionary: one whole-file block, then one MU update."""
    from nmfsep.dictionary import learn_dictionary_online
    from nmfsep.online import online_nmf
    from nmfsep.spectral import model_spectrogram, stft

    y = two_sources["low_y"]
    X = stft(y, CFG)
    V = model_spectrogram(X / np.abs(X).max(), 1.0)
    V = V / np.float32(V.mean(dtype=np.float64))
    ref = online_nmf([V], 5, random_state=0).H
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    d = learn_dictionary_online([two_sources["low"]], "low", 5, stft=CFG, block_seconds=100)
    np.testing.assert_allclose(d.atoms, ref, rtol=1e-3, atol=1e-5)


def test_online_resamples_other_rates(two_sources, tmp_path: Path) -> None:
    from nmfsep.dictionary import learn_dictionary_online
    from nmfsep.io import resample

    y16 = resample(two_sources["low_y"], SR, 16000)
    path16 = _write(tmp_path / "low16.wav", y16, 16000)
    d = learn_dictionary_online([two_sources["low"], path16], "low", 4, stft=CFG,
                                block_seconds=0.3)
    assert d.sr == SR and d.clips[1] == {"name": "low16.wav", "duration": 4.0}
    assert d.training["n_frames"] == 2 * (1 + y16.shape[1] // 2 // CFG.hop_length)
    d16 = learn_dictionary_online([path16], "low", 4, stft=STFTConfig(n_fft=512, hop_length=128))
    assert d16.sr == 16000


def test_online_memory_does_not_grow_with_duration(two_sources) -> None:
    import tracemalloc

    from nmfsep.dictionary import learn_dictionary_online

    def peak(copies: int) -> int:
        tracemalloc.start()
        try:
            learn_dictionary_online([two_sources["low"]] * copies, "low", 4, stft=CFG,
                                    block_seconds=1.0)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(1)  # warm imports and caches
    p2, p8 = peak(2), peak(8)
    assert p8 <= p2 * 1.1 + 64 * 1024, (p2, p8)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"paths": []}, ParameterError, "no training files"),
        ({"paths": ["missing.wav"]}, "AudioFormatError", "missing.wav: file not found"),
        ({"n_components": 0}, ParameterError, "n_components"),
        ({"n_components": 10_000}, ParameterError, "more than the"),
        ({"block_seconds": 0}, ParameterError, "block_seconds"),
        ({"passes": 0}, ParameterError, "passes"),
        ({"name": "../x"}, ParameterError, "path separator"),
        ({"sr": -1}, ParameterError, "sr"),
        ({"silent": True}, ParameterError, "silent"),
    ],
)
def test_online_validation(two_sources, tmp_path: Path, kwargs, exc, match) -> None:
    from nmfsep import exceptions
    from nmfsep.dictionary import learn_dictionary_online

    if isinstance(exc, str):
        exc = getattr(exceptions, exc)
    args = {"paths": [two_sources["low"]], "name": "low", "n_components": 4}
    if kwargs.pop("silent", False):
        kwargs["paths"] = [_write(tmp_path / "silent.wav", np.zeros((1, SR), np.float32))]
    if kwargs.get("paths") == ["missing.wav"]:
        kwargs["paths"] = [tmp_path / "missing.wav"]
    args.update(kwargs)
    with pytest.raises(exc, match=match) as info:
        learn_dictionary_online(stft=CFG, **args)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- context


def test_context_atoms_stack_each_clip_separately_and_plain_atoms_are_one_frame() -> None:
    from nmfsep.context import stack_frames

    clips = [(tone(220), SR), (tone(330, seed=1), SR)]
    plain = learn_dictionary(clips, "x", 3, stft=CFG, max_iter=30, context_frames=1)
    assert plain.context_frames == 1 and plain.atoms.shape == (3, CFG.n_bins)
    d = learn_dictionary(clips, "x", 3, stft=CFG, max_iter=30, context_frames=5)
    assert d.atoms.shape == (3, 5 * CFG.n_bins) and d.n_bins == CFG.n_bins
    # a steady tone: every frame of an atom carries (nearly) the same spectrum
    frames = d.atoms.reshape(3, 5, CFG.n_bins).astype(np.float64)
    centre = frames[:, 2]
    for j in range(5):
        cos = (frames[:, j] * centre).sum(1) / (
            np.linalg.norm(frames[:, j], axis=1) * np.linalg.norm(centre, axis=1))
        assert (cos > 0.9).all(), cos
    assert d.training["n_frames"] == plain.training["n_frames"]  # stacking adds no frames
    V = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(stack_frames(V, 3)[0], [0, 1, 2, 0, 1, 2, 3, 4, 5])


def test_context_round_trips_and_old_files_load_as_single_frames(tmp_path: Path) -> None:
    d = learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, max_iter=20, context_frames=3)
    path = d.save(tmp_path / "c.npz")
    assert Dictionary.load(path) == d
    # the file keeps the (k, n_bins) layout: one row per frame of every atom
    with np.load(path, allow_pickle=False) as raw:
        assert raw["atoms"].shape == (6, CFG.n_bins)
        np.testing.assert_array_equal(raw["atoms"][3:6].ravel(), d.atoms[1])
        assert raw["labels"].tolist() == ["x"] * 6
    # a file written before context existed has no context_frames: one frame
    plain = learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, max_iter=20, context_frames=1)
    meta = plain.meta()
    del meta["context_frames"]
    path = tmp_path / "old.npz"
    np.savez(path, atoms=plain.atoms, labels=np.array(plain.labels),
             meta=np.array(json.dumps(meta)))
    assert Dictionary.load(path).context_frames == 1


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", True, 1000])
def test_crafted_context_frames_are_refused(tmp_path: Path, value) -> None:
    d = learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, max_iter=20, context_frames=1)
    meta = d.meta()
    meta["context_frames"] = value
    path = tmp_path / "bad.npz"
    np.savez(path, atoms=d.atoms, labels=np.array(d.labels), meta=np.array(json.dumps(meta)))
    with pytest.raises(DictionaryError, match="context_frames"):
        Dictionary.load(path)


def test_context_rows_must_make_whole_atoms_of_one_source(tmp_path: Path) -> None:
    d = learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, max_iter=20, context_frames=3)
    path = d.save(tmp_path / "ok.npz")
    with np.load(path, allow_pickle=False) as raw:
        arrays = {key: raw[key] for key in raw.files}
    meta = json.loads(str(arrays["meta"]))
    meta["context_frames"] = 4  # 6 rows are not whole atoms of 4 frames
    np.savez(tmp_path / "a.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(DictionaryError, match="whole atoms"):
        Dictionary.load(tmp_path / "a.npz")
    labels = np.array(["x", "x", "y", "y", "y", "y"])  # an atom's frames from two sources
    np.savez(tmp_path / "b.npz", **{**arrays, "labels": labels})
    with pytest.raises(DictionaryError, match="share one label"):
        Dictionary.load(tmp_path / "b.npz")
    for bad in (0, 65, 1.5):
        with pytest.raises(ParameterError, match="context_frames"):
            learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, context_frames=bad)
    with pytest.raises(ParameterError, match="context_frames"):
        learn_dictionary([(tone(220), SR)], "x", 2, stft=CFG, context_frames=0)


def test_combine_refuses_different_context() -> None:
    a = learn_dictionary([(tone(220), SR)], "a", 2, stft=CFG, max_iter=20, context_frames=3)
    b = learn_dictionary([(tone(880), SR)], "b", 2, stft=CFG, max_iter=20, context_frames=1)
    with pytest.raises(DictionaryError, match="context_frames"):
        combine([a, b])
    c = learn_dictionary([(tone(880), SR)], "c", 2, stft=CFG, max_iter=20, context_frames=3)
    both = combine([a, c])
    assert both.context_frames == 3 and both.atoms.shape == (4, 3 * CFG.n_bins)


def test_online_default_stft_is_learn_dictionarys(two_sources) -> None:
    # a dictionary learned online fits the same mixtures as one learned in memory
    from nmfsep.dictionary import default_learning_stft, learn_dictionary_online

    d = learn_dictionary_online([two_sources["low"]], "low", 3, block_seconds=1.0)
    batch = learn_dictionary([(two_sources["low_y"], SR)], "low", 3, max_iter=5, context_frames=1)
    assert d.stft == batch.stft == default_learning_stft(SR)


# --------------------------------------------------------------------------- from files


def test_learn_dictionary_files_loads_or_streams(two_sources) -> None:
    from nmfsep import io
    from nmfsep.dictionary import learn_dictionary_files, learn_dictionary_online

    path = two_sources["low"]
    loaded = []
    d = learn_dictionary_files([path], "low", 3, stft=CFG, max_iter=10, context_frames=1,
                               harmonic="off",
                               load_callback=lambda done, total: loaded.append((done, total)))
    assert loaded == [(1, 1)]
    same = learn_dictionary([io.load(path)], "low", 3, stft=CFG, max_iter=10, context_frames=1,
                            clip_names=[path.name])
    assert d == same  # bit for bit
    online = learn_dictionary_files(path, "low", 3, stft=CFG, online=True)
    assert online == learn_dictionary_online([path], "low", 3, stft=CFG)
    with pytest.raises(ParameterError, match="context_frames=3 does not apply"):
        learn_dictionary_files([path], "low", 3, online=True, context_frames=3)
    with pytest.raises(ParameterError, match="no training files"):
        learn_dictionary_files([], "low", 3)


def test_pitch_shift_augmentation_covers_neighbouring_notes() -> None:
    """Atoms learned from A4 with +-2 semitones also model B4 and G4; without, they do not."""
    from nmfsep.nmf import nmf

    def note(f0: float) -> np.ndarray:
        return tone(f0, seconds=1.0)

    plain = learn_dictionary([(note(440), SR)], "a", 4, stft=CFG, context_frames=1,
                             max_iter=100, pitch_shifts=())
    shifted = learn_dictionary([(note(440), SR)], "a", 4, stft=CFG, context_frames=1,
                               max_iter=100, pitch_shifts=(-2, 2))
    assert shifted.training["augmentation"]["pitch_shifts"] == [-2.0, 2.0]
    assert "augmentation" not in plain.training
    assert shifted.training["n_frames"] == 3 * plain.training["n_frames"]
    from nmfsep.spectral import model_spectrogram, stft

    for f0 in (440 * 2 ** (2 / 12), 440 * 2 ** (-2 / 12)):
        X = stft(note(f0), CFG)
        V = model_spectrogram(X / np.abs(X).max())
        err = {d.training.get("augmentation") is not None: nmf(
            V, 4, fixed_atoms=d.atoms, max_iter=100, random_state=0).loss
            for d in (plain, shifted)}
        assert err[True] < 0.5 * err[False]
    loaded = Dictionary.load(shifted.save(Path(tempfile.mkdtemp()) / "s.npz"))
    assert loaded.training["augmentation"] == shifted.training["augmentation"]


@pytest.mark.parametrize("shifts", [(0,), (1, 1), (13,), "12", (float("nan"),)])
def test_pitch_shifts_are_checked(shifts) -> None:
    with pytest.raises(ParameterError, match="^pitch_shifts must be .auto. or a sequence of dist"):
        learn_dictionary([(tone(440), SR)], "a", 2, stft=CFG, pitch_shifts=shifts)


def test_dictionary_fit_is_higher_on_the_source_than_on_another(tmp_path: Path) -> None:
    from nmfsep.dictionary import dictionary_fit, learn_dictionary_files

    low = np.concatenate([tone(f, seconds=0.6) for f in (220, 247, 262, 294, 330) * 2], axis=1)
    high = np.concatenate([tone(f, n_harm=1, seconds=0.6) for f in (1500, 1700)], axis=1)
    d = learn_dictionary([(low[:, : -SR // 2], SR)], "low", 6, stft=CFG, max_iter=80)
    same = dictionary_fit(d, [(low[:, -SR // 2 :], SR)])
    other = dictionary_fit(d, [(high, SR)])
    assert same["fit_db"] > other["fit_db"] + 10 and same["seconds"] == 0.5
    # notes it never heard (294 and 330 Hz, learned from 220-262 Hz) fit worse, unless the
    # training is augmented with pitch shifts (the default)
    first, rest = [(low[:, : 2 * SR], SR)], [(low[:, 2 * SR : 3 * SR], SR)]
    plain = dictionary_fit(learn_dictionary(first, "low", 6, stft=CFG, max_iter=80,
                                            pitch_shifts=()), rest)
    shifted = dictionary_fit(learn_dictionary(first, "low", 6, stft=CFG, max_iter=80), rest)
    assert plain["fit_db"] < same["fit_db"] - 5
    assert shifted["fit_db"] > plain["fit_db"] + 5
    path = tmp_path / "low.wav"
    io.save(path, low, SR)
    v = learn_dictionary_files([path], "low", 6, stft=CFG, max_iter=80, validate=0.2)
    assert v.training["validation"]["fraction"] == 0.2
    assert v.training["validation"]["fit_db"] > 5
    plain = learn_dictionary_files([path], "low", 6, stft=CFG, max_iter=80)
    assert np.array_equal(v.atoms, plain.atoms)  # the saved atoms use all the audio
    assert Dictionary.load(v.save(tmp_path / "v.npz")).training["validation"] == (
        v.training["validation"])
    with pytest.raises(ParameterError, match="^validate must be a number in"):
        learn_dictionary_files([path], "low", 6, stft=CFG, validate=0.9)


def test_auto_pitch_shifts_choose_by_the_held_back_fit() -> None:
    # the same notes over and over: the held-back 20 % holds nothing new, so the plain
    # atoms fit it better and "auto" keeps no shift; the choice is recorded
    y = np.concatenate([tone(f, seconds=0.5) for f in (220, 330, 262) * 4], axis=1)
    d = learn_dictionary([(y, SR)], "a", 4, stft=CFG, context_frames=1, max_iter=60,
                         pitch_shifts="auto")
    aug = d.training["augmentation"]
    assert set(aug["fit_db"]) == {"none", "shifted"}
    chosen = [] if aug["fit_db"]["none"] >= aug["fit_db"]["shifted"] else [-2.0, -1.0, 1.0, 2.0]
    assert aug["pitch_shifts"] == chosen == []
    assert "held-back" in aug["chosen_by"]
    default = learn_dictionary([(y, SR)], "a", 4, stft=CFG, context_frames=1, max_iter=60)
    assert default.training["augmentation"]["pitch_shifts"] == [-2.0, -1.0, 1.0, 2.0]


def test_learn_itakura_saito_on_a_pure_tone_with_pitch_shifts() -> None:
    """The warped power spectra of a noiseless tone had values of -8e-13 (rounding):
    ``nmfsep learn tone.wav --beta is`` failed with nmf's "Negative values" error."""
    t = np.arange(SR) / SR
    y = (0.2 * np.sin(2 * np.pi * 261.6 * t) + 0.2 * np.sin(2 * np.pi * 392.0 * t))[None]
    d = learn_dictionary([(y.astype(np.float32), SR)], "tone", 2, beta="itakura-saito",
                         stft=CFG, pitch_shifts=[-1, 1], max_iter=5)
    assert d.n_atoms == 2 and np.isfinite(d.atoms).all()
