"""Tests of nmfsep.io: load, resample, atomic save and output, names, header info."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nmfsep.exceptions import AudioFormatError, NmfsepError, OutputError, ParameterError
from nmfsep.io import WavWriter, atomic_output, audio_info, check_name, load, resample, save


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def _audio(rng: np.random.Generator, n_channels: int, n_samples: int) -> np.ndarray:
    return (rng.uniform(-0.9, 0.9, (n_channels, n_samples))).astype(np.float32)


# --------------------------------------------------------------------------- save / load


@pytest.mark.parametrize(
    ("n_channels", "sr"),
    [(1, 22050), (2, 22050), (2, 8000), (2, 44100), (1, 48000), (3, 16000)],
)
def test_round_trip_float_wav(
    n_channels: int, sr: int, tmp_path: Path, rng: np.random.Generator
) -> None:
    y = _audio(rng, n_channels, 1234)
    y_copy = y.copy()
    out = save(tmp_path / "x.wav", y, sr)
    assert out == tmp_path / "x.wav"
    y2, sr2 = load(out)
    assert sr2 == sr and isinstance(sr2, int)
    assert y2.shape == (n_channels, 1234) and y2.dtype == np.float32
    assert y2.flags.c_contiguous
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(y, y_copy)
    info = audio_info(out)
    assert info == {
        "samplerate": sr,
        "channels": n_channels,
        "frames": 1234,
        "duration": pytest.approx(1234 / sr),
        "format": "WAV",
        "subtype": "FLOAT",
    }


def test_values_above_one_not_clipped(tmp_path: Path) -> None:
    y = np.array([[0.5, 1.5, -3.0, 1000.0]], np.float32)
    y2, _ = load(save(tmp_path / "loud.wav", y, 8000))
    np.testing.assert_array_equal(y2, y)


def test_save_float64_input(tmp_path: Path, rng: np.random.Generator) -> None:
    y = rng.uniform(-1, 1, (2, 100))
    y2, _ = load(save(tmp_path / "d.wav", y, 8000))
    np.testing.assert_array_equal(y2, y.astype(np.float32))


@pytest.mark.parametrize(("ext", "fmt", "atol"), [("flac", "FLAC", 1e-4), ("ogg", "OGG", 0.2)])
def test_other_formats_readable(
    ext: str, fmt: str, atol: float, tmp_path: Path, rng: np.random.Generator
) -> None:
    t = np.arange(4000) / 8000
    y = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)])
    path = tmp_path / f"x.{ext}"
    sf.write(path, y.T, 8000, format=fmt)
    y2, sr = load(path)
    assert sr == 8000 and y2.shape == (2, 4000) and y2.dtype == np.float32
    np.testing.assert_allclose(y2, y, atol=atol)
    assert audio_info(path)["format"] == fmt


def test_pcm16_scaled(tmp_path: Path) -> None:
    path = tmp_path / "pcm.wav"
    sf.write(path, np.array([0, 16384, -32768], np.int16), 8000, subtype="PCM_16")
    y, _ = load(path)
    np.testing.assert_array_equal(y, [[0.0, 0.5, -1.0]])


def test_load_with_resampling(tmp_path: Path, rng: np.random.Generator) -> None:
    path = save(tmp_path / "x.wav", _audio(rng, 2, 8000), 8000)
    y, sr = load(path, sr=16000)
    assert sr == 16000 and y.shape == (2, 16000) and y.dtype == np.float32
    y_same, sr_same = load(path, sr=8000)
    assert sr_same == 8000 and y_same.shape == (2, 8000)


def test_save_creates_parents_and_refuses_overwrite(tmp_path: Path) -> None:
    y = np.zeros((1, 10), np.float32)
    path = tmp_path / "a" / "b" / "s.wav"
    save(path, y, 8000)
    assert path.exists()
    with pytest.raises(OutputError, match=r"exists; pass force=True to overwrite") as info:
        save(path, y + 0.5, 8000)
    assert str(path) in str(info.value)
    np.testing.assert_array_equal(load(path)[0], y)
    save(path, y + 0.5, 8000, force=True)
    np.testing.assert_array_equal(load(path)[0], y + 0.5)
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.wav"]


def test_save_file_permissions_follow_umask(tmp_path: Path) -> None:
    path = save(tmp_path / "p.wav", np.zeros((1, 10), np.float32), 8000)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_failure_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.wav"
    save(target, np.zeros((1, 10), np.float32), 8000)

    def boom(file: object, *args: object, **kwargs: object) -> None:
        Path(str(file)).write_bytes(b"partial")  # a half-written temporary
        raise sf.LibsndfileError(0, prefix="disk full: ")

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(OutputError, match="cannot be written"):
        save(target, np.ones((1, 10), np.float32), 8000, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
    monkeypatch.undo()
    np.testing.assert_array_equal(load(target)[0], np.zeros((1, 10)))  # old file intact


def test_save_interrupt_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sf, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path / "x.wav", np.zeros((1, 10), np.float32), 8000)
    assert list(tmp_path.iterdir()) == []


def test_save_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="choose another output folder") as info:
        save(blocker / "sub" / "x.wav", np.zeros((1, 10), np.float32), 8000)
    assert str(blocker) in str(info.value)
    assert isinstance(info.value, OSError)


def test_save_onto_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a folder"):
        save(tmp_path, np.zeros((1, 10), np.float32), 8000, force=True)


@pytest.mark.parametrize(
    ("y", "sr", "match"),
    [
        (np.zeros(10, np.float32), 8000, r"shape \(n_channels, n_samples\)"),
        (np.zeros((1, 10), np.int16), 8000, "float array"),
        (np.full((1, 10), np.inf, np.float32), 8000, "NaN or Inf"),
        (np.zeros((1, 10), np.float32), 0, "sr must be a positive whole number"),
        (np.zeros((1, 10), np.float32), 8000.5, "sr must be a positive whole number"),
    ],
)
def test_save_rejects_input(y: np.ndarray, sr: int, match: str, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=match):
        save(tmp_path / "x.wav", y, sr)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- atomic_output


def test_wav_writer_in_blocks_equals_save(tmp_path: Path, rng: np.random.Generator) -> None:
    y = (rng.standard_normal((2, 1000)) * 2).astype(np.float32)  # beyond ±1: not clipped
    save(tmp_path / "whole.wav", y, 8000)
    with WavWriter(tmp_path / "blocks.wav", 8000, 2, 1000) as w:
        for a in range(0, 1000, 300):
            w.write(y[:, a : a + 300])
        w.write(y[:, :0])  # an empty block
    assert (tmp_path / "blocks.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()
    # channel-interleaved blocks (a transposed view) and float64 are written as well
    inter = np.ascontiguousarray(y.T).T
    with WavWriter(tmp_path / "t.wav", 8000, 2, 1000) as w:
        w.write(inter[:, :500])
        w.write(y[:, 500:].astype(np.float64))
    np.testing.assert_array_equal(load(tmp_path / "t.wav")[0], y)
    info = sf.info(str(tmp_path / "t.wav"))
    assert (info.format, info.subtype) == ("WAV", "FLOAT")


def test_wav_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot be written"):
        WavWriter(tmp_path / "missing" / "a.wav", 8000, 1, 10)
    w = WavWriter(tmp_path / "a.wav", 8000, 1, 10)
    with pytest.raises(ParameterError, match="blocks must have shape"):
        w.write(np.zeros((3, 10), np.float32))  # three channels into a mono file
    w.close()
    w.close()  # closing twice does nothing
    with pytest.raises(ParameterError, match="sr"):
        WavWriter(tmp_path / "b.wav", 0, 1, 10)


def test_atomic_output_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "a" / "notes.txt"
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".notes.txt.")
        assert tmp.name.endswith(".tmp") and tmp.exists() and not target.exists()
        tmp.write_text("one")
    assert target.read_text() == "one"
    with pytest.raises(OutputError, match=r"notes.txt: exists; pass force=True to overwrite"):
        with atomic_output(target):
            pass  # pragma: no cover - refused before
    with atomic_output(target, force=True) as tmp:
        tmp.write_text("two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (OSError(28, "No space left on device"), OutputError),
        (ValueError("bad"), ValueError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_atomic_output_failure_keeps_old_file(
    tmp_path: Path, error: BaseException, raised: type[BaseException]
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("old")
    with pytest.raises(raised) as info:
        with atomic_output(target, force=True, hint="choose another path") as tmp:
            tmp.write_text("half")
            raise error
    if raised is OutputError:
        assert str(info.value).endswith("or choose another path")
        assert info.value.__cause__ is error
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_atomic_output_onto_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a folder; give a file name such as .*x.npz"):
        with atomic_output(tmp_path, force=True, example="x.npz"):
            pass  # pragma: no cover - refused before


# --------------------------------------------------------------------------- bad inputs


def _make_bad(kind: str, folder: Path) -> Path:
    if kind == "missing":
        return folder / "missing.wav"
    if kind == "folder":
        (folder / "d.wav").mkdir()
        return folder / "d.wav"
    path = folder / f"{kind}.wav"
    if kind == "text":
        path.write_text("this is not audio, just text with a .wav name\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("zero_samples", "nan", "inf", "truncated"):
        y = np.zeros((0, 2), np.float32) if kind == "zero_samples" else np.zeros((50, 2))
        if kind == "nan":
            y[3, 1] = np.nan
        if kind == "inf":
            y[7, 0] = -np.inf
        sf.write(path, y, 8000, subtype="FLOAT")
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[:30])  # cut inside the header
    elif kind == "raw":
        path = folder / "x.raw"
        path.write_bytes(b"\0" * 64)
    return path


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("missing", "file not found"),
        ("folder", "is a folder"),
        ("text", r"cannot be read as audio \(Format not recognised\); convert it"),
        ("empty", "file is empty"),
        ("truncated", "cannot be read as audio"),
        ("zero_samples", "contains no audio samples"),
        ("nan", "contains NaN or Inf samples"),
        ("inf", "contains NaN or Inf samples"),
        ("raw", "cannot be read as audio"),
    ],
)
def test_load_bad_input(kind: str, match: str, tmp_path: Path) -> None:
    path = _make_bad(kind, tmp_path)
    with pytest.raises(AudioFormatError, match=match) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert isinstance(info.value, NmfsepError)


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "empty"])
def test_audio_info_bad_input(kind: str, tmp_path: Path) -> None:
    path = _make_bad(kind, tmp_path)
    with pytest.raises(AudioFormatError, match=str(path).replace("\\", "\\\\")):
        audio_info(path)


GARBAGE = {
    "mix.wav": np.random.default_rng(1).bytes(5000),
    "mix.mp3": b"ID3\x03" + bytes(6) + np.random.default_rng(2).bytes(3000),
    "id3.wav": b"ID3\x03" + bytes(6) + np.random.default_rng(2).bytes(3000),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_bytes_are_called_damaged_not_missing(name: str, tmp_path: Path) -> None:
    # libsndfile says "File does not exist or is not a regular file (possibly a pipe?)" of
    # some garbage; the file does exist and is regular (checked before it is opened)
    from nmfsep.io import open_blocks

    path = tmp_path / name
    path.write_bytes(GARBAGE[name])
    for read in (load, audio_info, lambda p: open_blocks(p).__enter__()):
        with pytest.raises(AudioFormatError) as info:
            read(path)
        message = str(info.value)
        assert message.startswith(f"{path}: cannot be read as audio (")
        assert "not a regular file" not in message and "does not exist" not in message
        assert "convert it to WAV or FLAC" in message and "\n" not in message
    if name == "mix.wav":  # the one libsndfile 1.2 calls "not a regular file"
        assert "(unrecognised or damaged audio data)" in message


def test_load_rejects_bad_rate(tmp_path: Path) -> None:
    path = save(tmp_path / "x.wav", np.zeros((1, 10), np.float32), 8000)
    with pytest.raises(ParameterError, match="sr must be a positive whole number"):
        load(path, sr=-8000)


# --------------------------------------------------------------------------- resample


@pytest.mark.parametrize(("sr_in", "sr_out"), [(8000, 16000), (44100, 22050), (48000, 44100)])
def test_resample_length_ratio(sr_in: int, sr_out: int, rng: np.random.Generator) -> None:
    y = _audio(rng, 2, sr_in // 4)
    y0 = y.copy()
    out = resample(y, sr_in, sr_out)
    assert out.shape[0] == 2
    assert abs(out.shape[1] - y.shape[1] * sr_out / sr_in) <= 0.5  # soxr rounds
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(y, y0)


def test_resample_keeps_content_and_dtype() -> None:
    t = np.arange(8000) / 8000
    y = np.stack([np.sin(2 * np.pi * 300 * t), np.cos(2 * np.pi * 300 * t)])
    out = resample(y, 8000, 16000)
    assert out.dtype == np.float64
    t2 = np.arange(16000) / 16000
    ref = np.stack([np.sin(2 * np.pi * 300 * t2), np.cos(2 * np.pi * 300 * t2)])
    np.testing.assert_allclose(out[:, 200:-200], ref[:, 200:-200], atol=1e-3)


def test_resample_identity_is_a_copy(rng: np.random.Generator) -> None:
    y = _audio(rng, 1, 100)
    out = resample(y, 8000, 8000)
    np.testing.assert_array_equal(out, y)
    assert out is not y and not np.shares_memory(out, y)


def test_resample_rejects() -> None:
    with pytest.raises(ParameterError, match="n_channels, n_samples"):
        resample(np.zeros(10, np.float32), 8000, 16000)
    with pytest.raises(ParameterError, match="sr_out must be a positive whole number"):
        resample(np.zeros((1, 10), np.float32), 8000, 0)
    with pytest.raises(ParameterError, match="float32 or float64"):
        resample(np.zeros((1, 10), np.int16), 8000, 16000)


# --------------------------------------------------------------------------- check_name


@pytest.mark.parametrize("name", ["piano", "source_1", "Component 01", "flûte", "a.b", "x" * 100])
def test_check_name_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../x", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("", "empty"),
        ("\x00", "control character"),
        ("a\nb", "control character"),
        ("\x1b[31mred", "control character"),
        ("..", "special folder name"),
        (".", "special folder name"),
        (".hidden", "starts with '.'"),
        ("x" * 101, "101 characters long; use a name of at most 100"),
        (3, "must be a string"),
    ],
)
def test_check_name_rejects(name: str, match: str) -> None:
    with pytest.raises(ParameterError, match=match) as info:
        check_name(name)
    if isinstance(name, str) and name:
        assert repr(name) in str(info.value)


def test_more_channels_than_nmfsep_takes_is_one_clear_error(tmp_path) -> None:
    from nmfsep._checks import MAX_CHANNELS
    from nmfsep.io import open_blocks

    p = tmp_path / "many.wav"
    sf.write(p, np.zeros((100, MAX_CHANNELS + 1), dtype=np.float32), 8000, subtype="FLOAT")
    with pytest.raises(AudioFormatError, match=f"has {MAX_CHANNELS + 1} channels.*mix it down"):
        load(p)
    with pytest.raises(AudioFormatError, match="mix it down"), open_blocks(p):
        pass
    sf.write(p, np.zeros((100, MAX_CHANNELS), dtype=np.float32), 8000, subtype="FLOAT")
    assert load(p)[0].shape == (MAX_CHANNELS, 100)
