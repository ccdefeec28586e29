"""Tests of nmfsep.stream: block-by-block separation equals whole-file separation."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _audio import CFG, SR, low_high_dicts, notes, sdr

from nmfsep.dictionary import Dictionary
from nmfsep.exceptions import AudioFormatError, DictionaryError, OutputError, ParameterError
from nmfsep.files import separate_file
from nmfsep.separate import separate
from nmfsep.spectral import STFTConfig
from nmfsep.stream import separate_stream


def low_high(seconds: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n2 = max(seconds // 2, 1)
    low = np.concatenate([notes(rng.uniform(190, 320, 8), 2.0, decay=2.0, seed=s)
                          for s in range(n2)])
    high = np.concatenate([notes(rng.uniform(1000, 1500, 5), 2.0, decay=0.5, seed=50 + s)
                           for s in range(n2)])
    return low, high


def make_dicts(cfg: STFTConfig = CFG, sr: int = SR, context: int = 1) -> list[Dictionary]:
    """Single-frame atoms by default: streaming then equals whole-file separation exactly."""
    return low_high_dicts(6, 60, stft=cfg, sr=sr, context_frames=context)


@pytest.fixture(scope="module")
def dicts() -> list[Dictionary]:
    return make_dicts()


@pytest.fixture(scope="module")
def long_mix(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """20 s of stereo at 8 kHz (a silent second at 3-4 s): 11 blocks of 2 s."""
    low, high = low_high(20)
    y = np.stack([0.3 * low + 0.2 * high, 0.25 * low + 0.25 * high]).astype(np.float32)
    y[:, 3 * SR : 4 * SR] = 0
    path = tmp_path_factory.mktemp("mix") / "long.wav"
    sf.write(path, y.T, SR, subtype="FLOAT")
    return path, y


def read(path: str | Path) -> np.ndarray:
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == SR
    return data.T


def check_stems(summary: dict, y: np.ndarray, atol: float = 1e-5) -> dict[str, np.ndarray]:
    stems = {name: read(p) for name, p in summary["stems"].items()}
    for stem in stems.values():
        assert stem.shape == y.shape and np.isfinite(stem).all()
    total = np.sum([s.astype(np.float64) for s in stems.values()], axis=0)
    assert np.abs(total - y).max() <= atol
    return stems


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize(("block_seconds", "n_blocks"), [(2.0, 11), (5.0, 5)])
def test_stream_equals_whole_file_with_fixed_iterations(
    long_mix, dicts, tmp_path, block_seconds, n_blocks
) -> None:
    """tol=0: every block runs the same iterations as the whole file -> float32 rounding.

    Blocks of 250 frames (2 s) and of 625 frames (5 s: several 256-frame chunks inside).
    """
    path, y = long_mix
    kw = {"max_iter": 60, "tol": 0}
    whole = separate(y, SR, spatial="shared", dictionaries=dicts, **kw)
    summary = separate_stream(path, tmp_path, spatial="shared",
                              dictionaries=dicts, block_seconds=block_seconds,
                              **kw)
    assert summary["n_blocks"] == n_blocks
    stems = check_stems(summary, y)
    peak = np.abs(y).max()
    for name, stem in stems.items():
        assert np.abs(stem - whole.stems[name]).max() < 1e-5 * peak
    # The summary has separate_file's shape (and is JSON).
    json.dumps(summary)
    ref = separate_file(path, tmp_path / "whole", spatial="shared", dictionaries=dicts, **kw)
    assert set(ref) <= set(summary)
    assert summary["mode"] == ref["mode"] == "supervised"
    assert summary["duration"] == pytest.approx(20.0) and summary["n_channels"] == 2
    assert summary["n_iter"] == 60 and summary["model"] is None
    info = sf.info(summary["stems"]["low"])
    assert (info.subtype, info.format, info.samplerate) == ("FLOAT", "WAV", SR)


def test_stream_with_temporal_context_differs_only_at_block_edges(long_mix, tmp_path) -> None:
    """Context atoms: frames are stacked within blocks, so only block edges differ."""
    path, y = long_mix
    dicts3 = make_dicts(context=3)
    kw = {"max_iter": 60, "tol": 0}
    whole = separate(y, SR, spatial="shared", dictionaries=dicts3, **kw)
    assert whole.settings["context_frames"] == 3
    summary = separate_stream(path, tmp_path, spatial="shared",
                              dictionaries=dicts3, block_seconds=2.0, **kw)
    assert summary["settings"]["context_frames"] == 3
    for name, stem in check_stems(summary, y).items():
        assert sdr(whole.stems[name], stem) > 25


def test_stream_close_to_whole_file_with_default_tol(long_mix, dicts, tmp_path) -> None:
    """Default tol: blocks stop at their own convergence check -> SDR vs whole > 40 dB."""
    path, y = long_mix
    whole = separate(y, SR, spatial="shared", dictionaries=dicts)
    summary = separate_stream(path, tmp_path, spatial="shared",
                              dictionaries=dicts, block_seconds=2.0)
    for name, stem in check_stems(summary, y).items():
        assert sdr(whole.stems[name], stem) > 40


@pytest.mark.parametrize(
    ("cfg", "n_samples", "block_seconds"),
    [
        (STFTConfig(n_fft=256, hop_length=96, win_length=192), 12_345, 0.5),  # hop ∤ n_fft
        (STFTConfig(n_fft=256, hop_length=64, center=False), 12_377, 0.7),
        (STFTConfig(n_fft=255, hop_length=64, window="hamming"), 9_001, 0.3),  # odd n_fft
        (CFG, 8_000 + 64, 1.0),  # ends right after a block boundary
        (CFG, 200, 1.0),  # shorter than one frame
    ],
    ids=["hop-not-dividing", "no-center", "odd-nfft", "block-edge", "shorter-than-nfft"],
)
def test_stream_grids(cfg, n_samples, block_seconds, tmp_path) -> None:
    low, high = low_high(4, seed=3)
    y = (0.3 * low + 0.2 * high)[:n_samples].astype(np.float32)[None]
    path = tmp_path / "mix.wav"
    sf.write(path, y.T, SR, subtype="FLOAT")
    d = make_dicts(cfg)
    whole = separate(y, SR, spatial="shared", dictionaries=d, max_iter=30, tol=0)
    summary = separate_stream(path, tmp_path, spatial="shared", dictionaries=d, max_iter=30, tol=0,
                              block_seconds=block_seconds)
    for name, stem in check_stems(summary, y).items():
        np.testing.assert_allclose(stem, whole.stems[name], rtol=0, atol=2e-6)


@pytest.mark.parametrize("kw", [{"beta": "itakura-saito"}, {"mask": "binary", "mask_power": 2},
                                {"solver": "cd"}, {"alpha_W": 0.1, "l1_ratio": 1.0}])
def test_stream_options_equal_whole_file(kw, dicts, tmp_path) -> None:
    low, high = low_high(6, seed=4)
    y = np.stack([0.3 * low + 0.2 * high, 0.1 * low + 0.3 * high]).astype(np.float32)
    path = tmp_path / "mix.wav"
    sf.write(path, y.T, SR, subtype="FLOAT")
    whole = separate(y, SR, spatial="shared", dictionaries=dicts, max_iter=8, tol=0, **kw)
    summary = separate_stream(path, tmp_path, spatial="shared",
                              dictionaries=dicts, max_iter=8, tol=0,
                              block_seconds=1.5, **kw)
    for name, stem in check_stems(summary, y).items():
        assert np.abs(stem - whole.stems[name]).max() < 1e-5 * np.abs(y).max()


def test_semi_supervised_stream(long_mix, dicts, tmp_path) -> None:
    """Free atoms learned online over the file: not whole-file's, but as good on the sources."""
    path, y = long_mix
    low, high = low_high(20)
    truth = {"low": np.stack([0.3 * low, 0.25 * low]), "high": np.stack([0.2 * high, 0.25 * high])}
    for t in truth.values():
        t[:, 3 * SR : 4 * SR] = 0
    whole = separate(y, SR, spatial="shared", dictionaries=dicts, n_free=3)
    a = separate_stream(path, tmp_path / "a", spatial="shared",
                        dictionaries=dicts, n_free=3, block_seconds=2.0)
    assert a["mode"] == "semi-supervised" and list(a["stems"]) == ["low", "high", "residual"]
    assert a["settings"]["stream"]["free_atoms"] == "online"
    stems = check_stems(a, y)
    for name in truth:
        assert sdr(truth[name], stems[name]) > sdr(truth[name], whole.stems[name]) - 3
    b = separate_stream(path, tmp_path / "b", spatial="shared",
                        dictionaries=dicts, n_free=3, block_seconds=2.0)
    for name in stems:  # reproducible bit for bit
        np.testing.assert_array_equal(stems[name], read(b["stems"][name]))


# --------------------------------------------------------------------------- stereo


@pytest.fixture(scope="module")
def panned(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """12 s of stereo at 8 kHz, low panned to the left and high to the right; the images."""
    low, high = low_high(12, seed=5)
    images = {"low": np.stack([np.cos(0.2) * 0.3 * low, np.sin(0.2) * 0.3 * low]),
              "high": np.stack([np.cos(1.35) * 0.2 * high, np.sin(1.35) * 0.2 * high])}
    images = {k: v.astype(np.float32) for k, v in images.items()}
    path = tmp_path_factory.mktemp("panned") / "mix.wav"
    sf.write(path, (images["low"] + images["high"]).T, SR, subtype="FLOAT")
    return path, images


def test_stereo_stream_of_one_block_is_the_whole_file_gains_model(panned, dicts,
                                                                   tmp_path) -> None:
    """One block: the gains model and its filter as separate_file runs them."""
    path, images = panned
    y = images["low"] + images["high"]
    whole = separate_file(path, tmp_path / "whole", dictionaries=dicts)
    one = separate_stream(path, tmp_path / "one", dictionaries=dicts, block_seconds=1e12)
    assert one["n_blocks"] == 1 and not one["warnings"]
    for s in (whole, one):
        assert s["settings"]["spatial"] == "gains" and s["settings"]["wiener_iter"] == 4
    stems = check_stems(one, y)
    for name, stem in stems.items():
        assert sdr(read(whole["stems"][name]), stem) > 60


def test_stereo_stream_separates_by_position_block_by_block(panned, dicts, tmp_path) -> None:
    """Blocks of 2 s, each with its own gains and filter: as good as the whole file and far
    better than one model of the channels combined; wiener_iter=0 keeps per-channel masks."""
    path, images = panned
    y = images["low"] + images["high"]
    whole = separate_file(path, tmp_path / "whole", dictionaries=dicts)
    settings = {"gains": {}, "spatial=shared": {"spatial": "shared"},
                "masks": {"wiener_iter": 0}}
    runs = {name: separate_stream(path, tmp_path / name, dictionaries=dicts,
                                  block_seconds=2.0, **kw)
            for name, kw in settings.items()}
    assert runs["gains"]["n_blocks"] == 7
    assert runs["gains"]["settings"]["spatial"] == runs["masks"]["settings"]["spatial"] == "gains"
    assert runs["masks"]["settings"]["wiener_iter"] == 0
    assert runs["spatial=shared"]["settings"]["spatial"] == "shared"
    scores = {k: {n: sdr(images[n], st) for n, st in check_stems(s, y).items()}
              for k, s in runs.items()}
    for name in images:
        ref = sdr(images[name], read(whole["stems"][name]))
        assert scores["gains"][name] > ref - 1.0, (scores, ref)
        assert scores["gains"][name] > scores["spatial=shared"][name] + 3.0, scores
        assert scores["masks"][name] > scores["spatial=shared"][name], scores


def test_blind_stereo_stream_fits_every_block_s_gains(panned, tmp_path) -> None:
    """Atoms learned online from the channels combined, grouped by timbre and position,
    then a gain per channel and component in every block: each channel its own masks."""
    path, images = panned
    y = images["low"] + images["high"]
    runs = {sp: separate_stream(path, tmp_path / sp, n_sources=2, block_seconds=3.0,
                                spatial=sp, learn_passes=3)
            for sp in ("gains", "shared")}
    assert runs["gains"]["settings"]["spatial"] == "gains"
    assert runs["gains"]["settings"]["wiener_iter"] == 4 and not runs["gains"]["warnings"]
    scores = {}
    for sp, s in runs.items():
        stems = check_stems(s, y)
        # blind stems are unnamed: the better of the two pairings
        a, b = stems["source_1"], stems["source_2"]
        scores[sp] = max(sdr(images["low"], a) + sdr(images["high"], b),
                         sdr(images["low"], b) + sdr(images["high"], a))
    assert scores["gains"] > scores["shared"] + 6.0, scores


def test_stereo_stream_at_one_place_takes_the_shared_model(dicts, tmp_path) -> None:
    """The whole file's pan histogram, added up by the first pass, decides as separate does."""
    low, high = low_high(6, seed=6)
    mono = (0.3 * low + 0.2 * high).astype(np.float32)
    y = np.stack([np.cos(0.6) * mono, np.sin(0.6) * mono])
    path = tmp_path / "one_place.wav"
    sf.write(path, y.T, SR, subtype="FLOAT")
    whole = separate(y, SR, dictionaries=dicts)
    assert whole.settings["spatial"] == "shared"
    a = separate_stream(path, tmp_path / "a", dictionaries=dicts, block_seconds=2.0)
    b = separate_stream(path, tmp_path / "b", spatial="shared", dictionaries=dicts,
                        block_seconds=2.0)
    assert a["settings"]["spatial"] == "shared" and a["settings"]["wiener_iter"] is None
    for name, stem in check_stems(a, y).items():
        np.testing.assert_array_equal(stem, read(b["stems"][name]))


def test_stereo_stream_semi_supervised_and_silent_blocks(long_mix, dicts, tmp_path) -> None:
    """Free atoms learned online, then every block's gains; a silent block stays silent."""
    path, y = long_mix
    a = separate_stream(path, tmp_path / "a", dictionaries=dicts, n_free=3, block_seconds=1.0)
    assert a["settings"]["spatial"] == "gains" and a["n_blocks"] == 21
    assert list(a["stems"]) == ["low", "high", "residual"]
    stems = check_stems(a, y)
    for stem in stems.values():
        assert np.abs(stem[:, 3 * SR + 400 : 4 * SR - 400]).max() == 0
    b = separate_stream(path, tmp_path / "b", dictionaries=dicts, n_free=3, block_seconds=1.0)
    for name in stems:  # reproducible bit for bit
        np.testing.assert_array_equal(stems[name], read(b["stems"][name]))


def test_stereo_stream_memory_does_not_grow_with_duration(dicts, tmp_path) -> None:
    peaks = []
    for seconds in (8, 32):
        low, high = low_high(seconds, seed=9)
        y = np.stack([0.3 * low + 0.05 * high, 0.05 * low + 0.2 * high]).astype(np.float32)
        path = tmp_path / f"m{seconds}.wav"
        sf.write(path, y.T, SR, subtype="FLOAT")
        tracemalloc.start()
        s = separate_stream(path, tmp_path / f"o{seconds}", dictionaries=dicts,
                            block_seconds=2.0, max_iter=5)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert s["settings"]["spatial"] == "gains"
    assert peaks[1] < 1.25 * peaks[0], peaks


def test_stream_relearns_from_excerpts_of_a_long_file(dicts, tmp_path, monkeypatch) -> None:
    """relearn='on': the first pass separates the six excerpts alone, every dictionary
    learns atoms from its stems, then the blocks are separated with them."""
    import importlib

    stream_module = importlib.import_module("nmfsep.stream")  # the module, not the function
    low, high = low_high(40, seed=8)
    y = np.stack([0.3 * low + 0.05 * high, 0.05 * low + 0.2 * high]).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, y.T, SR, subtype="FLOAT")
    lengths = []
    real = stream_module.separate
    monkeypatch.setattr(stream_module, "separate",
                        lambda y, *a, **kw: lengths.append(y.shape[1]) or real(y, *a, **kw))
    s = separate_stream(path, tmp_path / "o", dictionaries=dicts, block_seconds=4.0,
                        relearn="on", max_iter=20)
    record = s["settings"]["relearn"]
    assert record["passes"] == 2 and record["first_pass"] == "excerpts"
    assert lengths == [5 * SR] * 6  # 30 s of excerpts, never the whole 40 s
    assert all(n > 0 for n in record["added_atoms"].values())
    n_atoms = {d["names"][0]: d["n_atoms"] for d in s["settings"]["dictionaries"]}
    for d in dicts:
        assert n_atoms[d.names[0]] == d.n_atoms + record["added_atoms"][d.names[0]]
    check_stems(s, y)
    off = separate_stream(path, tmp_path / "off", dictionaries=dicts, block_seconds=4.0,
                          relearn="off", max_iter=20)
    assert off["settings"]["relearn"] == {"setting": "off", "passes": 1}
    with pytest.raises(ParameterError, match="relearn"):
        separate_stream(path, tmp_path / "blind", n_sources=2, relearn="on")


# --------------------------------------------------------------------------- memory


def test_memory_does_not_grow_with_duration(dicts, tmp_path) -> None:
    peaks = []
    for seconds in (8, 32):
        low, high = low_high(seconds, seed=9)
        y = (0.3 * low + 0.2 * high).astype(np.float32)[None]
        path = tmp_path / f"m{seconds}.wav"
        sf.write(path, y.T, SR, subtype="FLOAT")
        tracemalloc.start()
        separate_stream(path, tmp_path / f"o{seconds}", dictionaries=dicts, block_seconds=2.0,
                        max_iter=5)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 4x the audio: the peak stays that of one block (a whole 32 s file is 1 MB of float32)
    assert peaks[1] < 1.25 * peaks[0], peaks


# --------------------------------------------------------------------------- edge cases


def test_one_block_for_the_whole_file(long_mix, dicts, tmp_path) -> None:
    path, y = long_mix
    summary = separate_stream(path, tmp_path, dictionaries=dicts, block_seconds=1e12,
                              max_iter=3)
    assert summary["n_blocks"] == 1
    check_stems(summary, y)


def test_silent_file(dicts, tmp_path) -> None:
    y = np.zeros((2, 5000), dtype=np.float32)
    path = tmp_path / "quiet.wav"
    sf.write(path, y.T, SR, subtype="FLOAT")
    summary = separate_stream(path, tmp_path, dictionaries=dicts, n_free=1, block_seconds=0.25)
    stems = check_stems(summary, y, atol=0)
    assert all(not s.any() for s in stems.values())
    warned = [w for w in summary["warnings"] if "channels combined" not in w]  # stereo note
    assert len(warned) == 1 and "silent" in warned[0]


def test_progress_callback(long_mix, dicts, tmp_path) -> None:
    path, _ = long_mix
    calls: list[tuple[int, int]] = []
    summary = separate_stream(
        path, tmp_path, dictionaries=dicts, block_seconds=5.0, max_iter=3, n_free=1,
        callback=lambda done, total: calls.append((done, total)),
    )
    # 2501 frames of 625 per block: 5 blocks x (scan + 1 learning pass + separation)
    assert summary["n_blocks"] == 5
    assert [d for d, _ in calls] == list(range(1, 16))
    assert all(d <= t for d, t in calls) and calls[-1] == (15, 15)


def test_errors(long_mix, dicts, tmp_path) -> None:
    path, _ = long_mix
    with pytest.raises(ParameterError, match="dictionaries"):
        separate_stream(path, tmp_path, dictionaries=[])
    with pytest.raises(ParameterError, match="block_seconds"):
        separate_stream(path, tmp_path, dictionaries=dicts, block_seconds=0)
    other = make_dicts(CFG, sr=16000)
    with pytest.raises(DictionaryError, match="resample"):
        separate_stream(path, tmp_path, dictionaries=other)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(AudioFormatError, match="bad.wav"):
        separate_stream(bad, tmp_path, dictionaries=dicts)
    assert not (tmp_path / "bad").exists()


def test_existing_targets_and_force(long_mix, dicts, tmp_path) -> None:
    path, _ = long_mix
    first = separate_stream(path, tmp_path, dictionaries=dicts, max_iter=3)
    before = {p: p.stat().st_mtime_ns for p in Path(first["output_dir"]).iterdir()}
    with pytest.raises(OutputError, match="exists"):
        separate_stream(path, tmp_path, dictionaries=dicts, max_iter=3)
    assert {p: p.stat().st_mtime_ns for p in Path(first["output_dir"]).iterdir()} == before
    separate_stream(path, tmp_path, dictionaries=dicts, max_iter=3, force=True)
    assert sorted(os.listdir(first["output_dir"])) == ["high.wav", "low.wav"]


def test_nothing_left_on_failure(long_mix, dicts, tmp_path, monkeypatch) -> None:
    """A failure after some blocks were written leaves no stem and no temporary."""
    import importlib

    nmf_module = importlib.import_module("nmfsep.stream")  # the name stream calls
    path, _ = long_mix
    real = nmf_module.nmf
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(nmf_module, "nmf", failing)
    out = tmp_path / "deep" / "out"
    with pytest.raises(RuntimeError, match="boom"):
        separate_stream(path, out, spatial="shared", dictionaries=dicts, block_seconds=2.0,
                        max_iter=3)
    assert len(calls) == 4
    assert not (tmp_path / "deep").exists()
    (out / "long").mkdir(parents=True)
    calls.clear()
    with pytest.raises(RuntimeError, match="boom"):
        separate_stream(path, out, spatial="shared", dictionaries=dicts, block_seconds=2.0,
                        max_iter=3)
    assert os.listdir(out / "long") == []


# --------------------------------------------------------------------------- blind


@pytest.mark.parametrize(("kw", "names"), [
    ({"n_sources": 2, "n_components": 6}, ["source_1", "source_2"]),
    ({"n_components": 3}, ["component_01", "component_02", "component_03"]),
    ({"n_sources": 2, "n_components": 6, "grouping": "combined"}, ["source_1", "source_2"]),
])
def test_blind_stream_adds_up(long_mix, tmp_path, kw, names) -> None:
    """Blind: online atoms, block-wise masks; the stems named as separate names them."""
    path, y = long_mix
    summary = separate_stream(path, tmp_path, block_seconds=2.0, max_iter=20, **kw)
    assert summary["mode"] == "blind" and summary["n_blocks"] == 11
    assert list(summary["stems"]) == names
    assert list(summary["stems"]) == list(separate(y, SR, max_iter=2, **kw).stems)
    stems = check_stems(summary, y)
    # every stem carries something: the groups are not empty and the masks not all 0/1
    assert all(np.abs(s).max() > 1e-3 for s in stems.values())
    assert summary["settings"]["stream"]["free_atoms"] == "online"


def test_blind_stream_separates_low_from_high(tmp_path) -> None:
    """Two sources of distinct registers: each blind stream stem is mostly one of them."""
    low, high = low_high(16, seed=3)
    path = tmp_path / "lh.wav"
    sf.write(path, (0.3 * low + 0.3 * high).astype(np.float32), SR, subtype="FLOAT")
    summary = separate_stream(path, tmp_path / "o", n_sources=2, block_seconds=2.0,
                              learn_passes=3)
    s1, s2 = (read(p)[0] for p in summary["stems"].values())

    def centroid(x: np.ndarray) -> float:
        mag = np.abs(np.fft.rfft(x))
        return float(mag @ np.fft.rfftfreq(x.size, 1 / SR) / mag.sum())

    # source_1 is the lower one (groups ordered by spectral centroid), and the split is
    # not arbitrary: the low stem is closer to the low source than the mixture is
    assert centroid(s1) < centroid(s2)
    assert sdr(0.3 * low, s1) > sdr(0.3 * low, 0.3 * low + 0.3 * high) + 1


def test_blind_stream_memory_does_not_grow_with_duration(tmp_path) -> None:
    peaks = []
    for seconds in (8, 32):
        low, high = low_high(seconds, seed=9)
        y = (0.3 * low + 0.2 * high).astype(np.float32)[None]
        path = tmp_path / f"m{seconds}.wav"
        sf.write(path, y.T, SR, subtype="FLOAT")
        tracemalloc.start()
        separate_stream(path, tmp_path / f"o{seconds}", n_sources=2, block_seconds=2.0,
                        max_iter=5)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.25 * peaks[0], peaks


def test_blind_stream_errors(long_mix, tmp_path) -> None:
    path, _ = long_mix
    with pytest.raises(ParameterError, match="n_components=5000 is more than"):
        separate_stream(path, tmp_path, n_components=5000)
    with pytest.raises(ParameterError, match="nothing to separate"):
        separate_stream(path, tmp_path)


# --------------------------------------------------------------------------- memory budget


def test_estimate_memory_grows_with_duration(tmp_path, dicts) -> None:
    from nmfsep.files import estimate_memory

    est = []
    for seconds in (10, 40):
        path = tmp_path / f"e{seconds}.wav"
        sf.write(path, np.zeros((seconds * SR, 2), np.float32), SR, subtype="PCM_16")
        est.append(estimate_memory(path, n_sources=2, spatial="shared"))
    slope = (est[1] - est[0]) / (30 * SR)  # bytes per sample of the two channels
    # audio (2 x 4) + STFT (2 x 8 x n_bins / hop) + spectrogram (4 x n_bins / hop), + 25 %
    cfg = STFTConfig.for_sample_rate(SR)
    r = cfg.n_bins / cfg.hop_length
    assert slope == pytest.approx(1.25 * (8 + 16 * r + 4 * r), rel=1e-3)
    with_dicts = estimate_memory(tmp_path / "e40.wav", dictionaries=dicts)
    assert with_dicts > 0


def test_separate_file_streams_over_the_budget(long_mix, tmp_path) -> None:
    path, y = long_mix
    whole = separate_file(path, tmp_path / "w", n_sources=2, max_iter=5, memory=2**40)
    assert "streamed" not in whole and "n_blocks" not in whole
    low = separate_file(path, tmp_path / "s", n_sources=2, max_iter=5, memory=10**6,
                        block_seconds=2.0)
    assert low["streamed"]["memory"] == 10**6 and low["streamed"]["estimate"] > 10**6
    assert low["n_blocks"] == 11 and list(low["stems"]) == list(whole["stems"])
    check_stems(low, y)
    # a run that cannot stream stays whole-file and says why
    rep = separate_file(path, tmp_path / "r", n_sources=2, max_iter=5, memory=10**6,
                        save_model=True)
    assert "streamed" not in rep and "cannot stream with save_model" in rep["warnings"][-1]
    with pytest.raises(ParameterError, match="memory"):
        separate_file(path, tmp_path / "x", n_sources=2, memory=0)
