"""``n_sources="auto"`` / ``--sources auto``: blind separation with the suggested count."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
from _cli import one_error_line, run

from nmfsep import separate
from nmfsep.auto_sources import AUTO_CONFIDENCE, describe_auto
from nmfsep.exceptions import ParameterError
from nmfsep.files import separate_file
from nmfsep.percussive import percussive_names
from nmfsep.plan import make_plan, stem_names
from nmfsep.sources import suggest_sources

SR = 16000


def _mixture(seconds: float = 3.0) -> np.ndarray:
    """Two harmonic tones of different timbres, in turn and together, and noise-burst drums."""
    t = np.arange(int(seconds * SR)) / SR
    warm = sum(0.3 / h * np.sin(2 * np.pi * 196 * h * t) for h in range(1, 6))
    bright = sum(0.15 * np.sin(2 * np.pi * 587 * h * t) for h in (1, 3, 5, 7))
    warm = warm * (t < 2 * seconds / 3)
    bright = bright * (t > seconds / 3)
    drums = np.zeros_like(t)
    rng = np.random.default_rng(7)
    n = int(0.02 * SR)
    for start in np.arange(0, seconds - 0.05, 0.25):
        i = int(start * SR)
        drums[i : i + n] += 0.6 * rng.standard_normal(n) * np.exp(-np.arange(n) / 60)
    return (0.5 * (warm + bright + drums)).astype(np.float32)


@pytest.fixture(scope="module")
def mono() -> np.ndarray:
    return _mixture()[None]


@pytest.fixture(scope="module")
def stereo(mono) -> np.ndarray:
    return np.concatenate([mono, 0.7 * mono + 0.01 * np.roll(mono, 5, axis=1)])


def _expected_names(found) -> list[str]:
    if found.drums:
        return percussive_names(found.n_sources)
    return [f"source_{i}" for i in range(1, found.n_sources + 1)]


@pytest.mark.parametrize("channels", ["mono", "stereo"])
def test_auto_separates_with_the_suggested_count(channels, request) -> None:
    y = request.getfixturevalue(channels)
    before = y.copy()
    found = suggest_sources(y, SR)
    res = separate(y, SR, n_sources="auto", max_iter=30)
    assert list(res.stems) == _expected_names(found)
    assert res.settings["n_sources"] == found.n_sources
    assert res.settings["percussive"] == found.drums
    assert res.settings["n_components"] == 8 * found.n_sources
    record = res.settings["sources_auto"]
    assert record == {**found.to_dict(), "guess": found.confidence < AUTO_CONFIDENCE}
    json.dumps(res.settings)  # the record is JSON as it is
    assert np.abs(sum(res.stems.values()) - y).max() < 1e-4
    assert all(s.shape == y.shape for s in res.stems.values())
    np.testing.assert_array_equal(y, before)


def test_auto_with_k_and_one_dimensional_input(mono) -> None:
    found = suggest_sources(mono, SR)
    res = separate(mono[0], SR, n_sources="auto", n_components=12, max_iter=20)
    assert res.settings["n_components"] == 12 and len(res.stems) == found.n_sources
    assert all(s.shape == mono[0].shape for s in res.stems.values())
    assert np.abs(sum(res.stems.values()) - mono[0]).max() < 1e-4


def test_auto_on_silence_gives_silent_stems_and_no_confidence() -> None:
    y = np.zeros((2, 2 * SR), dtype=np.float32)
    res = separate(y, SR, n_sources="auto", max_iter=20)
    assert any("silent" in w for w in res.warnings)
    assert list(res.stems) == ["source_1", "source_2"]
    assert all(not np.any(s) for s in res.stems.values())
    assert res.settings["sources_auto"]["confidence"] == 0.0
    assert res.settings["sources_auto"]["guess"] is True


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"dictionaries": ["drums"]}, "blind separation"),
    ({"n_free": 4, "dictionaries": ["drums"]}, "blind separation"),
    ({"percussive": True}, "decides percussive itself"),
    ({"n_components": 1}, "n_components >= 2"),
])
def test_auto_refuses_what_it_does_not_go_with(mono, kwargs, needle) -> None:
    with pytest.raises(ParameterError, match=needle):
        separate(mono, SR, n_sources="auto", **kwargs)


def test_auto_refuses_short_mixtures_and_too_few_components(mono) -> None:
    with pytest.raises(ParameterError, match="at least 1 s"):
        separate(mono[:, : SR // 2], SR, n_sources="auto")
    found = suggest_sources(mono, SR)
    with pytest.raises(ParameterError, match=f"found {found.n_sources} sources"):
        separate(mono, SR, n_sources="auto", n_components=found.n_sources - 1)


def test_auto_with_gains_refuses_only_when_it_finds_drums(stereo) -> None:
    found = suggest_sources(stereo, SR)
    if found.drums:
        with pytest.raises(ParameterError, match="found drums"):
            separate(stereo, SR, n_sources="auto", spatial="gains", max_iter=10)
    else:
        res = separate(stereo, SR, n_sources="auto", spatial="gains", max_iter=10)
        assert res.settings["spatial"] == "gains"


def test_plans_without_the_mixture_refuse_auto() -> None:
    with pytest.raises(ParameterError, match="decided from the whole mixture"):
        make_plan(None, "auto", [], 0)
    with pytest.raises(ParameterError, match="decided from the whole mixture"):
        stem_names(n_sources="auto")


def test_describe_auto() -> None:
    record = {"n_sources": 3, "drums": True, "n_harmonic": 2, "confidence": 0.666}
    assert describe_auto(record) == "auto -> 3 (drums + 2 harmonic, confidence 0.67)"
    assert describe_auto({**record, "drums": False, "n_sources": 2}) == (
        "auto -> 2 (2 harmonic, confidence 0.67)")
    assert describe_auto(None) == ""


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_separate_file_auto_records_the_suggestion(tmp_path, stereo) -> None:
    mix = tmp_path / "mix.wav"
    sf.write(mix, stereo.T, SR, subtype="FLOAT")
    digest = _digest(mix)
    found = suggest_sources(sf.read(mix, dtype="float32")[0].T, SR)
    summary = separate_file(mix, tmp_path / "out", n_sources="auto", max_iter=20,
                            memory=1)  # a budget it cannot keep: auto stays whole-file
    assert summary["settings"]["sources_auto"]["n_sources"] == found.n_sources
    assert list(summary["stems"]) == _expected_names(found)
    assert any("n_sources='auto'" in w for w in summary["warnings"])
    total = sum(sf.read(p, dtype="float32")[0] for p in summary["stems"].values())
    assert np.abs(total - stereo.T).max() < 1e-4
    assert _digest(mix) == digest


def test_batch_and_stream_refuse_auto(tmp_path, mono) -> None:
    from nmfsep.batch import separate_batch
    from nmfsep.stream import separate_stream

    mix = tmp_path / "mix.wav"
    sf.write(mix, mono.T, SR, subtype="FLOAT")
    with pytest.raises(ParameterError, match="batch"):
        separate_batch([mix], tmp_path / "out", n_sources="auto")
    with pytest.raises(ParameterError, match="whole mixture"):
        separate_stream(mix, tmp_path / "out", n_sources="auto")
    assert not (tmp_path / "out").exists()


def test_cli_sources_auto(tmp_path, stereo) -> None:
    mix = tmp_path / "mix.wav"
    sf.write(mix, stereo.T, SR, subtype="FLOAT")
    digest = _digest(mix)
    found = suggest_sources(sf.read(mix, dtype="float32")[0].T, SR)
    result = run("separate", mix, "--sources", "auto", "-o", tmp_path / "out",
                 "--max-iter", "20")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert f"sources: auto -> {found.n_sources} (" in line
    assert f"confidence {found.confidence:.2f})" in line
    assert ("a guess" in line) == (found.confidence < AUTO_CONFIDENCE)
    assert sorted(p.stem for p in (tmp_path / "out" / "mix").iterdir()) == sorted(
        _expected_names(found))
    as_json = run("separate", mix, "--sources", "auto", "-o", tmp_path / "out", "--force",
                  "--max-iter", "20", "--json")
    assert as_json.exit_code == 0, as_json.output
    record = json.loads(as_json.stdout)[0]["settings"]["sources_auto"]
    assert record["n_sources"] == found.n_sources and record["drums"] == found.drums
    assert _digest(mix) == digest


@pytest.mark.parametrize(("extra", "needle"), [
    (["--percussive"], "decides --percussive itself"),
    (["--stream"], "drop --stream"),
    (["--dict", "drums"], "blind separation"),
    (["-k", "1"], "-k 2 or more"),
    (["--jobs", "1"], "batch"),
])
def test_cli_sources_auto_refuses_what_makes_no_sense(tmp_path, mono, extra, needle) -> None:
    mix = tmp_path / "mix.wav"
    sf.write(mix, mono.T, SR, subtype="FLOAT")
    result = run("separate", mix, "--sources", "auto", *extra, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    words = " ".join(w for w in result.stderr.split() if w != "│")  # the box's borders out
    assert needle in words, result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_cli_sources_auto_runtime_refusals(tmp_path, mono) -> None:
    short = tmp_path / "short.wav"
    sf.write(short, mono[0, : SR // 2], SR, subtype="FLOAT")
    result = run("separate", short, "--sources", "auto", "-o", tmp_path / "out")
    assert result.exit_code == 1
    one_error_line(result, "short.wav", "at least 1 s", "--sources N")
    mix = tmp_path / "mix.wav"
    sf.write(mix, mono.T, SR, subtype="FLOAT")
    found = suggest_sources(mono, SR)
    k = found.n_sources - 1
    result = run("separate", mix, "--sources", "auto", "-k", k, "-o", tmp_path / "out")
    assert result.exit_code == 1
    one_error_line(result, "--sources auto found", f"-k {k}")
    assert not (tmp_path / "out" / "mix").exists()
