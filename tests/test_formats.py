"""Stem formats (WAV/FLAC, float/PCM) with the clipping guard, and dataset trees."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _audio import SR, low_high_dicts

from nmfsep import io
from nmfsep.batch import separate_batch
from nmfsep.exceptions import ParameterError
from nmfsep.files import separate_file
from nmfsep.plan import gain_warnings
from nmfsep.stream import separate_stream


def _tones(seed: int, peak: float = 0.5, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f_low, f_high = rng.uniform(200, 300), rng.uniform(1000, 1400)
    y = np.sin(2 * np.pi * f_low * t) + np.sin(2 * np.pi * f_high * t)
    y *= np.exp(-2 * (t % 0.25))
    return (peak * y / np.abs(y).max()).astype(np.float32)[None]


@pytest.fixture(scope="module")
def dicts():
    return low_high_dicts(4, 40, chords=True)


def test_audio_format_defaults_and_refusals():
    assert io.audio_format() == io.AudioFormat("wav", "float")
    assert io.audio_format("flac") == io.AudioFormat("flac", "pcm24")
    assert io.audio_format("wav", "pcm16").ext == "wav"
    with pytest.raises(ParameterError, match="^format='flac' stores integer samples only"):
        io.audio_format("flac", "float")
    with pytest.raises(ParameterError, match="^format must be one of"):
        io.audio_format("mp3")
    with pytest.raises(ParameterError, match="^subtype must be one of"):
        io.audio_format("wav", "pcm8")
    assert io.output_files("o/m", ["a"], ext="flac").stems["a"] == Path("o/m/a.flac")


@pytest.mark.parametrize("subtype", ["pcm16", "pcm24"])
def test_pcm_stems_are_scaled_jointly_never_clipped(tmp_path, subtype):
    fmt = io.audio_format("wav", subtype)
    a = np.linspace(-1.5, 1.5, 1000, dtype=np.float32)[None]
    b = 0.5 * a
    targets = [tmp_path / "a.wav", tmp_path / "b.wav"]
    with io.OutputTransaction(tmp_path, targets, force=False) as out:
        for t, y in zip(targets, (a, b), strict=True):
            w = out.audio_writer(t, SR, 1, 1000, fmt)
            w.write(y[:, :400])
            w.write(y[:, 400:])
        out.commit()
    assert out.gain == pytest.approx(1 / 1.5)
    ra, rb = (sf.read(t, dtype="float64")[0] for t in targets)
    assert sf.info(targets[0]).subtype == {"pcm16": "PCM_16", "pcm24": "PCM_24"}[subtype]
    assert np.abs(ra).max() == pytest.approx(1.0, abs=1e-4)  # the peak is full scale, not over
    step = 2.0 ** -15 if subtype == "pcm16" else 2.0 ** -23
    np.testing.assert_allclose(ra, a[0] / 1.5, atol=step)  # scaled, not clipped
    np.testing.assert_allclose(rb, b[0] / 1.5, atol=step)  # the same gain: still add up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]  # no temporaries
    [msg] = gain_warnings(out.gain, fmt)
    assert msg.startswith(f"stems scaled by -3.52 dB so that {subtype} samples do not clip")


def test_stems_within_full_scale_keep_their_level(tmp_path):
    fmt = io.audio_format("flac", "pcm16")
    y = np.linspace(-0.9, 0.9, 500, dtype=np.float32)[None]
    with io.OutputTransaction(tmp_path, [tmp_path / "a.flac"], force=False) as out:
        out.audio_writer(tmp_path / "a.flac", SR, 1, 500, fmt).write(y)
        out.commit()
    assert out.gain == 1.0 and gain_warnings(out.gain, fmt) == []
    np.testing.assert_allclose(sf.read(tmp_path / "a.flac")[0], y[0], atol=2.0 ** -15)


def test_failed_conversion_leaves_nothing(tmp_path):
    fmt = io.audio_format("flac", "pcm16")
    with pytest.raises(RuntimeError), io.OutputTransaction(
        tmp_path / "o", [tmp_path / "o" / "a.flac"], force=False
    ) as out:
        out.audio_writer(tmp_path / "o" / "a.flac", SR, 1, 10, fmt).write(np.zeros((1, 10)))
        raise RuntimeError("interrupted")
    assert not (tmp_path / "o").exists()


def test_separate_file_flac_and_pcm(tmp_path, dicts):
    mix = tmp_path / "mix.wav"
    sf.write(mix, _tones(0, peak=3.0).T, SR, subtype="FLOAT")  # a float file beyond full scale
    kw = dict(dictionaries=dicts, max_iter=10)
    ref = separate_file(mix, tmp_path / "f", **kw)
    s = separate_file(mix, tmp_path / "p", format="flac", subtype="pcm16", **kw)
    assert [Path(p).name for p in s["stems"].values()] == ["low.flac", "high.flac"]
    [warning] = [w for w in s["warnings"] if w.startswith("stems scaled by")]
    floats = [sf.read(p, dtype="float64")[0] for p in ref["stems"].values()]
    pcm = [sf.read(p, dtype="float64")[0] for p in s["stems"].values()]
    gain = 1 / max(np.abs(f).max() for f in floats)
    assert gain < 1 and f"{20 * np.log10(gain):.2f} dB" in warning
    for f, p in zip(floats, pcm, strict=True):
        np.testing.assert_allclose(p, f * gain, atol=2e-4)
    assert max(np.abs(p).max() for p in pcm) <= 1.0
    with pytest.raises(ParameterError, match="format='flac' stores integer"):
        separate_file(mix, tmp_path / "x", format="flac", subtype="float", **kw)
    assert not (tmp_path / "x").exists()


def test_separate_stream_and_batch_write_the_format(tmp_path, dicts):
    mix = tmp_path / "in" / "mix.wav"
    mix.parent.mkdir()
    sf.write(mix, _tones(1).T, SR, subtype="FLOAT")
    s = separate_stream(mix, tmp_path / "s", dictionaries=dicts, max_iter=5, format="wav",
                        subtype="pcm24")
    assert all(sf.info(p).subtype == "PCM_24" for p in s["stems"].values())
    kw = dict(dictionaries=dicts, max_iter=5, format="flac", n_jobs=1)
    res = separate_batch([mix.parent], tmp_path / "b", **kw)
    assert res.ok and sorted(p.name for p in (tmp_path / "b" / "mix").iterdir()) == \
        ["high.flac", "low.flac"]
    again = separate_batch([mix.parent], tmp_path / "b", **kw)
    assert len(again.skipped) == 1  # the FLAC stems count as done


@pytest.mark.parametrize("fmt", sorted(io.FORMAT_LIMITS))
def test_format_limits_are_those_of_libsndfile(tmp_path, fmt):
    channels, rate = io.FORMAT_LIMITS[fmt]
    sub = io.SUBTYPES[io.audio_format(fmt).subtype]
    for (ch, sr), ok in [((channels, SR), True), ((1, rate), True),
                         ((channels + 1, SR), False), ((1, rate + 1), False)]:
        path = tmp_path / f"{ch}_{sr}.{fmt}"
        if ok:
            sf.write(path, np.zeros((4, ch), np.float32), sr, format=fmt.upper(), subtype=sub)
            assert (sf.info(path).channels, sf.info(path).samplerate) == (ch, sr)
        else:
            with pytest.raises(sf.LibsndfileError):
                sf.write(path, np.zeros((4, ch), np.float32), sr, format=fmt.upper(),
                         subtype=sub)


@pytest.mark.parametrize(("channels", "sr", "needle"), [
    (9, SR, "FLAC holds at most 8 channels, the mixture has 9; use format='wav'"),
    (16, SR, "FLAC holds at most 8 channels, the mixture has 16"),
    (1, 700_000, "FLAC holds at most 655350 Hz, the mixture is at 700000 Hz"),
])
def test_flac_refused_before_any_work_for_a_mixture_it_cannot_hold(tmp_path, monkeypatch,
                                                                    channels, sr, needle):
    import nmfsep.files

    mix = tmp_path / "mix.wav"
    rng = np.random.default_rng(0)
    sf.write(mix, 0.1 * rng.standard_normal((sr // 10, channels)), sr, subtype="FLOAT")

    def no_work(*args, **kwargs):
        raise AssertionError("separation started")

    monkeypatch.setattr(nmfsep.files, "analyse", no_work)
    for separate in (separate_file, separate_stream):
        with pytest.raises(ParameterError, match="^" + re.escape(f"{mix}: {needle}")):
            separate(mix, tmp_path / "out", format="flac", n_components=2, max_iter=5)
        assert not (tmp_path / "out").exists()
    res = separate_batch([mix], tmp_path / "out", format="flac", n_components=2, max_iter=5,
                         n_jobs=1)
    assert needle in res.failed[0]["reason"] and not (tmp_path / "out" / "mix").exists()


def test_cli_flac_for_nine_channels_is_one_error_line(tmp_path):
    from _cli import one_error_line, run

    mix = tmp_path / "mix.wav"
    sf.write(mix, 0.1 * np.random.default_rng(0).standard_normal((SR, 9)), SR)
    r = run("separate", mix, "-k", 4, "--format", "flac", "--max-iter", 20,
            "-o", tmp_path / "out")
    assert r.exit_code == 1, r.output
    one_error_line(r, f"{mix}: FLAC holds at most 8 channels, the mixture has 9",
                   "--format 'wav'")
    assert "partial" not in r.stderr and "disk space" not in r.stderr
    assert not (tmp_path / "out").exists()


# -- dataset trees ---------------------------------------------------------------------------
def test_output_names_rule():
    assert io.output_names(["d/a/mixture.wav", "d/b/mixture.wav", "x/solo.wav"]) == \
        ["a/mixture", "b/mixture", "solo"]
    assert io.output_names(["mix.mp3", "mix.ogg", "other/mix.wav"]) == \
        ["mix.mp3", "mix.ogg", "other/mix"]
    assert io.output_names(["a.wav", "b.wav"]) == ["a", "b"]
    # hidden mixtures and folders give visible output folders
    assert io.output_names([".take1.wav", "x/.y/mixture.wav", "x/z/mixture.wav"]) == \
        ["take1", "y/mixture", "z/mixture"]
    # ... unless two inputs would then share a folder: those keep their names
    assert io.output_names(["d/.mix.wav", "d/mix.wav", "d/mix.wav"]) == [".mix", "mix", "mix"]
    assert io.output_names(["a/.x/m.wav", "a/x/m.wav"]) == [".x/m", "x/m"]


@pytest.fixture
def musdb(tmp_path) -> Path:
    """A MUSDB-style tree: three tracks, each a folder holding mixture.wav and its stems."""
    root = tmp_path / "musdb" / "train"
    for i, track in enumerate(("Artist A - Song", "Artist B - Song", "Artist C - Song")):
        (root / track).mkdir(parents=True)
        sf.write(root / track / "mixture.wav", _tones(i).T, SR, subtype="FLOAT")
    return root


def test_musdb_tree_separates_without_error(musdb, tmp_path, dicts):
    out = tmp_path / "out"
    res = separate_batch([musdb], out, recursive=True, dictionaries=dicts, max_iter=5, n_jobs=1)
    assert res.ok and len(res.done) == 3 and not res.failed
    for track in ("Artist A - Song", "Artist B - Song", "Artist C - Song"):
        assert sorted(p.name for p in (out / track / "mixture").iterdir()) == \
            ["high.wav", "low.wav"]


def test_cli_musdb_tree_and_same_stem_other_extension(musdb, tmp_path, dicts):
    from typer.testing import CliRunner

    from nmfsep.cli import app

    paths = []
    for d in dicts:
        paths += ["--dict", str(tmp_path / f"{d.labels[0]}.npz")]
        d.save(tmp_path / f"{d.labels[0]}.npz")
    mixes = sorted(musdb.glob("*/mixture.wav"))
    sf.write(tmp_path / "mix.flac", _tones(5).T, SR, subtype="PCM_16")
    sf.write(tmp_path / "mix.wav", _tones(6).T, SR, subtype="FLOAT")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["separate", *map(str, mixes), str(tmp_path / "mix.flac"),
                                 str(tmp_path / "mix.wav"), *paths, "--max-iter", "5",
                                 "-o", str(out), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    dirs = sorted(str(Path(s["output_dir"]).relative_to(out)) for s in json.loads(r.stdout))
    assert dirs == ["Artist A - Song/mixture", "Artist B - Song/mixture",
                    "Artist C - Song/mixture", "mix.flac", "mix.wav"]


def test_batch_never_shares_a_folder(tmp_path, dicts):
    for name in ("mix.mp3.wav", "mix.mp3", "mix.wav"):  # mix.mp3's folder is named mix.mp3
        sf.write(tmp_path / name, _tones(2).T, SR, format="WAV", subtype="FLOAT")
    files = [tmp_path / n for n in ("mix.mp3", "mix.wav", "mix.mp3.wav")]
    res = separate_batch(files, tmp_path / "out", dictionaries=dicts, max_iter=5, n_jobs=1)
    assert len(res.done) == 2
    [failed] = res.failed
    assert failed["input"].endswith("mix.mp3.wav") and "as those of" in failed["reason"]
