"""Built-in dictionaries: the shipped files, the build script's record, name resolution,
``info --builtin``, named stems (``--sources drums,bass,other``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from _bench import import_benchmark
from _cli import one_error_line, run

from nmfsep.builtins import (
    BUILTIN_DIR,
    builtin_info,
    builtin_names,
    dictionary_path,
    is_builtin,
    load_builtin,
    resolve_dictionary,
)
from nmfsep.dictionary import Dictionary, combine
from nmfsep.exceptions import DictionaryError, ParameterError
from nmfsep.plan import load_dictionaries, make_plan, stem_names
from nmfsep.separate import separate

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"drums", "bass", "piano", "guitar", "strings", "brass", "winds", "speech"}
#: Licences the package may ship (no GPL, no share-alike sample sets).
PERMISSIVE = {"MIT", "MIT (FluidR3 Mono parts), piano and drumline PD/CC0", "public domain",
              "public domain recording (LibriVox), package BSD-2"}


@pytest.fixture(scope="module")
def build_script():
    return import_benchmark("build_builtins")


@pytest.fixture(scope="module")
def mixture() -> tuple[np.ndarray, int]:
    """2 s at 22.05 kHz: decaying noise bursts (a drum-like part) + a low harmonic line."""
    sr = 22050
    rng = np.random.default_rng(0)
    n = 2 * sr
    t = np.arange(n) / sr
    hits = np.zeros(n)
    for start in range(0, n, sr // 4):
        m = min(sr // 8, n - start)
        hits[start:start + m] = rng.standard_normal(m) * np.exp(-30 * np.arange(m) / sr)
    f0 = np.where(t < 1, 55.0, 73.4)
    bass = sum(np.sin(2 * np.pi * h * np.cumsum(f0) / sr) / h for h in range(1, 6))
    return (0.3 * hits + 0.2 * bass).astype(np.float32)[None], sr


# ------------------------------------------------------------------ shipped files


def test_every_builtin_is_shipped_and_loads_with_its_provenance() -> None:
    assert set(builtin_names()) == EXPECTED
    dicts = [load_builtin(name) for name in builtin_names()]
    for name, d in zip(builtin_names(), dicts, strict=True):
        assert d.names == (name,) and d.n_atoms - d.n_harmonic == 48 and d.context_frames == 3
        # pitched sources have harmonic atoms too (script version 2); drums and voice none
        assert (d.n_harmonic > 0) == (name not in ("drums", "speech")), (name, d.n_harmonic)
        assert d.sr == 22050 and d.atoms.dtype == np.float32
        assert np.allclose(np.linalg.norm(d.atoms, axis=1), 1.0, atol=1e-3)
        prov = d.provenance
        assert prov["builtin"] == name and prov["script"] == "benchmarks/build_builtins.py"
        assert isinstance(prov["script_version"], int) and prov["description"]
        assert prov["sources"] and all(s["licence"] in PERMISSIVE for s in prov["sources"])
        assert all(r["licence"] in prov["licence"] for r in prov["sources"])
        assert d.clips and all(c["duration"] > 0 for c in d.clips)
    assert combine(dicts).n_atoms == sum(d.n_atoms for d in dicts)  # every pair together


def test_shipped_size_is_a_few_megabytes_and_in_the_wheel_config() -> None:
    total = sum(p.stat().st_size for p in BUILTIN_DIR.glob("*.npz"))
    assert 0 < total < 5e6, total
    assert sum(d["bytes"] for d in builtin_info()) == total
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'packages = ["nmfsep"]' in pyproject  # hatch ships every file of the package


def test_sources_json_records_what_the_files_hold() -> None:
    table = json.loads((BUILTIN_DIR / "SOURCES.json").read_text())
    assert set(table) == EXPECTED
    for name in EXPECTED:
        assert table[name] == load_builtin(name).provenance


def test_build_script_records_the_shipped_provenance_deterministically(build_script) -> None:
    fonts = build_script.SHIPPED_FONTS
    for name in EXPECTED:
        record = build_script.provenance(name, fonts)
        assert record == build_script.provenance(name, fonts)  # no dates, no paths
        assert json.loads(json.dumps(record)) == load_builtin(name).provenance
        assert [c["name"] for c in load_builtin(name).clips] == \
            build_script.clip_names(name, fonts)
    assert set(build_script.SOURCES) == EXPECTED


def test_compact_atoms_keeps_the_atoms_within_the_contract(build_script) -> None:
    rng = np.random.default_rng(1)
    a = rng.gamma(0.3, 1.0, (6, 500)).astype(np.float32) * np.logspace(0, -9, 500)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    c = build_script.compact_atoms(a)
    assert c.dtype == np.float32 and (c >= 0).all()
    floor = build_script.FLOOR * a.max(axis=1, keepdims=True)
    assert (c[a < floor] == 0).all()
    kept = a >= floor
    assert np.all(np.abs(c[kept] - a[kept]) <= 2.0**-11 * a[kept])
    assert np.allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-3)
    assert not (c.view(np.uint32) & np.uint32(0x1FFF)).any()  # low bits zero: compresses


# ------------------------------------------------------------------ resolution


def test_a_bare_name_resolves_to_the_builtin(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    d, origin = resolve_dictionary("drums")
    assert origin == "built-in drums" and d is load_builtin("drums")
    assert load_dictionaries(["drums", "bass"])[1] is load_builtin("bass")
    assert is_builtin("drums") and not is_builtin(Path("drums")) and not is_builtin("Drums")


def test_a_file_named_like_a_builtin_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "piano").mkdir()  # a folder of samples is not a dictionary file
    assert resolve_dictionary("piano")[1] == "built-in piano"
    load_builtin("bass").save(tmp_path / "drums")
    d, origin = resolve_dictionary("drums")
    assert d.names == ("bass",) and origin == "file drums (not the built-in drums)"
    assert load_dictionaries("drums")[0].names == ("bass",)


def test_dictionary_path_follows_the_same_rule_for_info_plot_and_dict(tmp_path: Path,
                                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert dictionary_path("drums") == BUILTIN_DIR / "drums.npz"
    (tmp_path / "piano").mkdir()  # a folder of that name: still the built-in
    assert dictionary_path("piano") == BUILTIN_DIR / "piano.npz"
    (tmp_path / "bass").write_text("x")  # a file of that name wins
    assert dictionary_path("bass") == Path("bass")
    assert dictionary_path(Path("drums")) == BUILTIN_DIR / "drums.npz"
    assert dictionary_path("drumz") == Path("drumz")  # unknown: left to the loader
    (tmp_path / "strings").mkdir()  # info on the folder shows the built-in
    assert run("info", "strings").exit_code == 0


def test_an_unknown_name_lists_the_builtins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DictionaryError, match="no built-in of that name") as info:
        load_dictionaries(["drumz"])
    assert all(name in str(info.value) for name in EXPECTED)
    with pytest.raises(DictionaryError, match="not a built-in dictionary"):
        load_builtin("drumz")


def test_separate_takes_builtin_names(mixture) -> None:
    y, sr = mixture
    res = separate(y, sr, dictionaries=["drums", "bass"], n_free=2, max_iter=30)
    assert list(res.stems) == ["drums", "bass", "residual"]
    assert np.allclose(sum(res.stems.values()), y, atol=1e-4)
    assert res.settings["mode"] == "semi-supervised"


# ------------------------------------------------------------------ named stems


def test_named_sources_use_builtins_and_free_atoms_for_the_other(mixture) -> None:
    assert stem_names(n_sources=["drums", "bass", "other"]) == ["drums", "bass", "other"]
    assert stem_names(n_sources=("bass", "drums")) == ["bass", "drums"]
    y, sr = mixture
    res = separate(y, sr, n_sources=["drums", "bass", "other"], max_iter=30)
    assert list(res.stems) == ["drums", "bass", "other"]
    T = load_builtin("drums").context_frames  # groups index the atoms' frames
    assert len(res.groups["other"]) == 8 * T and res.groups["drums"] == list(range(48 * T))
    assert res.settings["n_free"] == 8
    assert np.allclose(sum(res.stems.values()), y, atol=1e-4)
    named = separate(y, sr, n_sources=["drums", "bass", "other"], n_free=3, max_iter=30)
    explicit = separate(y, sr, dictionaries=["drums", "bass"], n_free=3, max_iter=30)
    assert np.array_equal(named.stems["other"], explicit.stems["residual"])


@pytest.mark.parametrize(("names", "match"), [
    (["keys", "other"], "name at least one built-in"),
    (["drums", "keys", "other"], "at most one other source"),
    (["drums", "drums"], "names a source twice"),
    ([], "non-empty sequence"),
    (["drums", "a/b"], "a/b"),
])
def test_bad_named_sources_say_what_to_do(names, match) -> None:
    with pytest.raises(ParameterError, match=match):
        stem_names(n_sources=names)


def test_named_sources_refuse_dictionaries_and_k() -> None:
    with pytest.raises(ParameterError, match="not both"):
        stem_names(n_sources=["drums", "other"], dictionaries=["bass"])
    with pytest.raises(ParameterError, match="not both"):
        stem_names(n_sources=["drums", "other"], n_components=8)


# ------------------------------------------------------------------ command line


def test_info_builtin_lists_every_builtin() -> None:
    result = run("info", "--builtin")
    assert result.exit_code == 0, result.output
    for name in EXPECTED:
        assert f"  {name} " in result.stdout
    assert "48 atoms" in result.stdout and "22050 Hz" in result.stdout
    listed = json.loads(run("info", "--builtin", "--json").stdout)
    assert {d["name"] for d in listed} == EXPECTED
    assert all(d["licence"] and d["sources"] and d["bytes"] > 0 for d in listed)
    shown = run("info", "piano")
    assert shown.exit_code == 0 and "provenance:" in shown.stdout
    assert run("info", "piano", "--builtin").exit_code == 2


def test_plot_takes_a_builtin_name_as_info_does(tmp_path, monkeypatch) -> None:
    """``nmfsep plot drums`` said "drums: file not found" although ``info drums`` works."""
    monkeypatch.chdir(tmp_path)
    result = run("plot", "drums", "-o", "drums.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "drums.png").stat().st_size > 1000
    (tmp_path / "drums").write_text("not a dictionary")  # a file of that name wins
    assert run("plot", "drums", "-o", "other.png").exit_code == 1
    assert not (tmp_path / "other.png").exists()


def _write_mixture(tmp_path: Path, mixture) -> Path:
    from nmfsep import io

    y, sr = mixture
    path = tmp_path / "mix.wav"
    io.save(path, y, sr)
    return path


def test_cli_resolves_builtins_and_says_which_was_used(tmp_path: Path, mixture,
                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    mix = _write_mixture(tmp_path, mixture)
    res = run("separate", mix, "--dict", "drums", "--dict", "bass", "--free", "2",
              "--max-iter", "20", "-o", "out")
    assert res.exit_code == 0, res.output
    assert "dictionaries: built-in drums, built-in bass" in res.stdout
    assert sorted(p.name for p in (tmp_path / "out" / "mix").iterdir()) == \
        ["bass.wav", "drums.wav", "residual.wav"]
    load_builtin("piano").save(tmp_path / "drums")
    res = run("separate", mix, "--dict", "drums", "--max-iter", "20", "-o", "out2")
    assert res.exit_code == 0, res.output
    assert "file drums (not the built-in drums)" in res.stdout
    assert (tmp_path / "out2" / "mix" / "piano.wav").exists()


def test_cli_batch_table_says_which_dictionaries_were_used(tmp_path: Path, mixture,
                                                          monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "songs").mkdir()
    for name in ("a", "b"):
        _write_mixture(tmp_path, mixture).rename(tmp_path / "songs" / f"{name}.wav")
    load_builtin("piano").save(tmp_path / "drums")  # a file named like a built-in wins
    for args, note in ((["--dict", "drums", "--dict", "bass"],
                        "dictionaries: file drums (not the built-in drums), built-in bass"),
                       (["--sources", "drums,bass,other"], "built-in dictionaries: drums, bass")):
        out = f"out{len(note)}"
        res = run("separate", "songs", *args, "--jobs", "1", "--max-iter", "5", "-o", out)
        assert res.exit_code == 0, res.output
        table = res.stdout.strip().splitlines()
        assert [line.split()[:2] for line in table[1:3]] == [["done", "songs/a.wav"],
                                                            ["done", "songs/b.wav"]]
        assert table[-1].startswith("2 done, 0 skipped, 0 failed") and table[-1].endswith(
            f"; {note}"), table


def test_cli_unknown_name_is_one_line_listing_the_builtins(tmp_path: Path, mixture,
                                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    mix = _write_mixture(tmp_path, mixture)
    res = run("separate", mix, "--dict", "drumz", "-o", "out")
    assert res.exit_code == 1
    one_error_line(res, "drumz", *sorted(EXPECTED))
    assert not (tmp_path / "out").exists()
    for command in (["info", "drumz"], ["plot", "drumz", "-o", "fig.png"]):
        res = run(*command)
        assert res.exit_code == 1, res.output
        one_error_line(res, "drumz", *sorted(EXPECTED))
    assert not (tmp_path / "fig.png").exists()


def test_cli_named_sources(tmp_path: Path, mixture, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    mix = _write_mixture(tmp_path, mixture)
    res = run("separate", mix, "--sources", "drums,bass,other", "--max-iter", "20", "-o", "o")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "o" / "mix").iterdir()) == \
        ["bass.wav", "drums.wav", "other.wav"]
    assert "built-in dictionaries: drums, bass" in res.stdout
    blind = run("separate", mix, "--sources", "2", "--max-iter", "20", "-o", "b")
    assert blind.exit_code == 0 and (tmp_path / "b" / "mix" / "source_2.wav").exists()
    for bad in (["--sources", "keys,other"], ["--sources", "drums,,bass"],
                ["--sources", "0"], ["--sources", "drums,other", "--dict", "bass"]):
        res = run("separate", mix, *bad, "-o", "x")
        assert res.exit_code == 2, (bad, res.output)
        assert "Traceback" not in res.output


# ------------------------------------------------------------------ file format


def test_provenance_and_compression_round_trip(tmp_path: Path) -> None:
    d = load_builtin("drums")  # no harmonic atoms: saved uncompressed unless asked
    plain = d.save(tmp_path / "plain.npz")
    packed = d.save(tmp_path / "packed.npz", compress=True)
    assert packed.stat().st_size < 0.7 * plain.stat().st_size
    for path in (plain, packed):
        back = Dictionary.load(path)
        assert back == d and back.provenance["builtin"] == "drums"
    assert "provenance" not in Dictionary(d.atoms[:, :d.n_bins], d.labels, d.sr, d.stft).meta()
    with pytest.raises(ParameterError, match="provenance"):
        Dictionary(d.atoms[:, :d.n_bins], d.labels, d.sr, d.stft, provenance=["a", "list"])


def test_a_file_with_bad_provenance_is_refused(tmp_path: Path) -> None:
    d = load_builtin("bass")
    meta = {**d.meta(), "provenance": "MIT"}
    rows = d.atoms.reshape(-1, d.n_bins)
    labels = np.array([lab for lab in d.labels for _ in range(d.context_frames)])
    np.savez(tmp_path / "bad.npz", atoms=rows, labels=labels, meta=np.array(json.dumps(meta)))
    with pytest.raises(DictionaryError, match="provenance must be a JSON object"):
        Dictionary.load(tmp_path / "bad.npz")


def test_builtins_with_harmonic_atoms_keep_one_pass(mixture) -> None:
    """relearn="auto" runs no second pass with built-ins (4.5-23x the time, -0.3..+0.4 dB)."""
    y, sr = mixture
    res = separate(y, sr, dictionaries=["piano", "bass"], harmonic="on", max_iter=10)
    assert res.settings["relearn"] == {"setting": "auto", "passes": 1}
    assert np.allclose(sum(res.stems.values()), y, atol=1e-4)


def test_builtin_harmonic_atoms_left_out_without_a_note() -> None:
    """Built-in drums have no harmonic atoms, so bass's are left out, by design, silently;
    a user's dictionary left out still gets the note that says how to keep them."""
    drums, bass = load_builtin("drums"), load_builtin("bass")
    plan = make_plan(None, None, [drums, bass], 8, False, "auto")
    assert plan.harmonic_left_out == ("bass",) and plan.harmonic_note == ""
    mine = dataclasses.replace(bass, provenance={})  # as if learned by the user
    plan = make_plan(None, None, [drums, mine], 8, False, "auto")
    assert plan.harmonic_left_out == ("bass",) and "drums has none" in plan.harmonic_note
