"""Tests of nmfsep.batch: many files, locally (joblib) and on a real local Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _audio import SR, low_high_dicts

from nmfsep.batch import BatchResult, expand_inputs, separate_batch
from nmfsep.dictionary import Dictionary
from nmfsep.exceptions import DictionaryError, ParameterError


def tone_mix(seed: int, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    low = sum(np.sin(2 * np.pi * rng.uniform(200, 300) * h * t) / h**2 for h in range(1, 5))
    high = sum(np.sin(2 * np.pi * rng.uniform(1000, 1400) * h * t) / h for h in range(1, 3))
    env = np.exp(-2 * (t % 0.25))
    return (0.3 * low * env + 0.2 * high).astype(np.float32)[None]


@pytest.fixture(scope="module")
def dicts() -> list[Dictionary]:
    return low_high_dicts(4, 40, chords=True)


@pytest.fixture
def songs(tmp_path: Path) -> Path:
    """A folder with three short mixtures (wav, wav, flac), one broken file and a text file."""
    folder = tmp_path / "songs"
    folder.mkdir()
    for i, name in enumerate(("a.wav", "b.wav", "c.flac")):
        sf.write(folder / name, tone_mix(i).T, SR, subtype="FLOAT" if name.endswith("wav")
                 else "PCM_16")
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt " + bytes(40))
    (folder / "notes.txt").write_text("not audio")
    return folder


def stems_of(out: Path, name: str) -> dict[str, np.ndarray]:
    return {s: sf.read(out / name / f"{s}.wav", dtype="float32")[0] for s in ("low", "high")}


def test_batch_failure_skip_and_force(songs: Path, dicts, tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen: list[tuple[str, int, int]] = []
    res = separate_batch([songs], out, n_jobs=1, dictionaries=dicts, max_iter=10,
                         callback=lambda rec, done, total: seen.append((rec["status"], done,
                                                                        total)))
    assert isinstance(res, BatchResult)
    assert [Path(d["input"]).name for d in res.done] == ["a.wav", "b.wav", "c.flac"]
    assert len(res.failed) == 1 and not res.ok
    bad = res.failed[0]
    assert bad["input"].endswith("broken.wav") and bad["error_type"] == "AudioFormatError"
    assert "broken.wav" in bad["reason"] and "cannot be read" in bad["reason"]
    assert sorted(s for s, _, _ in seen) == ["done"] * 3 + ["failed"]
    assert [d for _, d, _ in seen] == [1, 2, 3, 4] and {t for _, _, t in seen} == {4}
    for name in ("a", "b", "c"):
        assert sorted(p.name for p in (out / name).iterdir()) == ["high.wav", "low.wav"]
    assert not (out / "broken").exists()
    report = res.to_dict()
    json.dumps(report)
    assert (report["n_done"], report["n_skipped"], report["n_failed"], report["ok"]) == (
        3, 0, 1, False)
    table = res.format_table()
    assert "FAILED" in table and "broken.wav" in table and "3 done, 0 skipped, 1 failed" in table

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    again = separate_batch([songs], out, n_jobs=1, dictionaries=dicts, max_iter=10)
    assert [Path(d["input"]).name for d in again.skipped] == ["a.wav", "b.wav", "c.flac"]
    assert not again.done and len(again.failed) == 1
    assert "stems exist" in again.skipped[0]["reason"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == mtimes

    forced = separate_batch([songs / "a.wav", str(songs / "*.flac")], out, n_jobs=1,
                            dictionaries=dicts, max_iter=10, force=True)
    assert forced.ok and [Path(d["input"]).name for d in forced.done] == ["a.wav", "c.flac"]
    assert (out / "a" / "low.wav").stat().st_mtime_ns != mtimes[out / "a" / "low.wav"]


def test_parallel_equals_sequential(songs: Path, dicts, tmp_path: Path) -> None:
    files = sorted(songs.glob("*.wav")) + [songs / "c.flac"]
    one = separate_batch(files, tmp_path / "one", n_jobs=1, dictionaries=dicts, max_iter=15)
    two = separate_batch(files, tmp_path / "two", n_jobs=2, dictionaries=dicts, max_iter=15)
    assert (one.backend, two.backend, two.n_jobs) == ("sequential", "loky", 2)
    assert len(one.done) == len(two.done) == 3 and len(two.failed) == 1
    for name in ("a", "b", "c"):
        a, b = stems_of(tmp_path / "one", name), stems_of(tmp_path / "two", name)
        for s in a:
            np.testing.assert_allclose(a[s], b[s], rtol=0, atol=1e-6)


def test_duplicate_names_and_bad_inputs(dicts, tmp_path: Path) -> None:
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        sf.write(tmp_path / sub / "mix.wav", tone_mix(3).T, SR, subtype="FLOAT")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    res = separate_batch(
        [tmp_path / "x", tmp_path / "y" / "mix.wav", tmp_path / "x" / "mix.wav",
         tmp_path / "missing.wav", str(tmp_path / "nothing*.wav"), tmp_path / "empty"],
        out, n_jobs=1, dictionaries=dicts, max_iter=5,
    )
    # two mixtures of one name go to OUT/<relative path>/ (io.output_names)
    assert sorted(d["input"] for d in res.done) == [str(tmp_path / s / "mix.wav") for s in "xy"]
    assert sorted(Path(d["output_dir"]) for d in res.done) == [out / "x" / "mix", out / "y" / "mix"]
    reasons = {Path(f["input"]).name: f["reason"] for f in res.failed}
    assert "not found" in reasons["missing.wav"]
    assert "matches no file" in reasons["nothing*.wav"]
    assert "no audio files" in reasons["empty"]
    assert len(res.failed) == 3 and res.n_files == 5


def test_expand_inputs(songs: Path, tmp_path: Path) -> None:
    (songs / "sub").mkdir()
    sf.write(songs / "sub" / "d.wav", tone_mix(5).T, SR)
    (songs / ".hidden.wav").write_bytes(b"x")
    files, problems = expand_inputs([songs, str(songs / "*.wav")])
    assert [f.name for f in files] == ["a.wav", "b.wav", "broken.wav", "c.flac"]
    assert problems == []
    files, _ = expand_inputs(songs, recursive=True, exclude=songs / "sub")
    assert "d.wav" not in [f.name for f in files]
    files, _ = expand_inputs(str(songs / "**" / "*.wav"))
    assert [f.name for f in files] == ["a.wav", "b.wav", "broken.wav", "d.wav"]


def test_settings_checked_once(songs: Path, dicts, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a dictionary")
    with pytest.raises(DictionaryError, match="bad.npz"):
        separate_batch([songs], tmp_path / "out", dictionaries=[bad])
    with pytest.raises(ParameterError, match="block_seconds"):
        separate_batch([songs], tmp_path / "out", dictionaries=dicts, block_seconds=3)
    with pytest.raises(ParameterError, match="n_jobs"):
        separate_batch([songs], tmp_path / "out", dictionaries=dicts, n_jobs=0)
    with pytest.raises(ParameterError, match="nothing to separate"):
        separate_batch([songs], tmp_path / "out", stream=True)
    assert not (tmp_path / "out").exists()


def test_stream_batch(songs: Path, dicts, tmp_path: Path) -> None:
    res = separate_batch([songs / "a.wav", songs / "b.wav"], tmp_path / "out", n_jobs=1,
                         stream=True, block_seconds=0.25, dictionaries=dicts, max_iter=5)
    # 126 frames (1 s, hop 64) in blocks of 31 frames
    assert res.ok and all(d["n_blocks"] == 5 for d in res.done)


BAD_ADDRESSES = [
    ("not a url", "numeric port"),
    ("tcp://127.0.0.1", "numeric port"),
    ("tcp://127.0.0.1:notaport", "numeric port"),
    ("ftp://127.0.0.1:8786", "unknown scheme 'ftp'"),
    ("tcp://127.0.0.1:99999", "1..65535"),
    ("tcp://:8786", "no host"),
]


@pytest.mark.parametrize(("address", "why"), BAD_ADDRESSES)
def test_malformed_scheduler_address(songs: Path, dicts, tmp_path: Path, address: str,
                                     why: str) -> None:
    # refused by its form, before any file is touched and without waiting on a connection
    pytest.importorskip("distributed")
    calls = []
    with pytest.raises(ParameterError, match="tcp://HOST:PORT") as info:
        separate_batch([songs], tmp_path / "out", scheduler=address, dictionaries=dicts,
                       callback=lambda *a: calls.append(a))
    assert repr(address) in str(info.value) and why in str(info.value)
    assert not calls and not (tmp_path / "out").exists()


def test_dask_cluster(songs: Path, dicts, tmp_path: Path) -> None:
    """A real scheduler and two workers on loopback; tasks go through its address."""
    distributed = pytest.importorskip("distributed")
    files = [songs / "a.wav", songs / "b.wav", songs / "c.flac", songs / "broken.wav"]
    local = separate_batch(files, tmp_path / "local", n_jobs=1, dictionaries=dicts, max_iter=10)
    # Worker processes: the tasks, dictionaries and summaries really travel pickled over
    # tcp through the scheduler (about a second to start).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        res = separate_batch(files, tmp_path / "dask", scheduler=address, dictionaries=dicts,
                             max_iter=10)
        with distributed.Client(address) as client:
            # the tasks ran on the cluster's workers, through its scheduler
            assert len(client.scheduler_info()["workers"]) == 2
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
            assert sum(executed.values()) >= 1
    assert res.backend == "dask" and res.scheduler == address and res.n_jobs == 2
    assert [Path(d["input"]).name for d in res.done] == ["a.wav", "b.wav", "c.flac"]
    assert len(res.failed) == 1 and "broken.wav" in res.failed[0]["reason"] and not res.ok
    for name in ("a", "b", "c"):
        a, b = stems_of(tmp_path / "local", name), stems_of(tmp_path / "dask", name)
        for s in a:
            np.testing.assert_allclose(a[s], b[s], rtol=0, atol=1e-6)
    assert len(local.done) == 3


def test_rerun_with_report_does_not_skip_files_without_one(songs: Path, dicts,
                                                           tmp_path: Path) -> None:
    # the skip check names the same files as separate_file: report.html and mixture.wav too
    out = tmp_path / "out"
    wav = songs / "a.wav"
    assert separate_batch([wav], out, n_jobs=1, dictionaries=dicts, max_iter=5).ok
    again = separate_batch([wav], out, n_jobs=1, dictionaries=dicts, max_iter=5, report=True)
    assert not again.skipped
    assert "exists" in again.failed[0]["reason"]
    forced = separate_batch([wav], out, n_jobs=1, dictionaries=dicts, max_iter=5, report=True,
                            force=True)
    assert forced.ok and (out / "a" / "report.html").is_file()
    assert (out / "a" / "mixture.wav").is_file()
    last = separate_batch([wav], out, n_jobs=1, dictionaries=dicts, max_iter=5, report=True)
    assert [Path(d["input"]).name for d in last.skipped] == ["a.wav"]
