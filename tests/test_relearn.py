"""Second pass with atoms learned from the first pass's stems (nmfsep.relearn)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from nmfsep.cli import _RELEARN, app
from nmfsep.dictionary import learn_dictionary
from nmfsep.exceptions import ParameterError
from nmfsep.plan import DEFAULT_RELEARN, make_plan, plain_plan
from nmfsep.relearn import (
    RELEARN_EXCERPTS,
    RELEARN_SECONDS,
    excerpt_spans,
    relearned,
    should_relearn,
    stem_excerpts,
    widened,
)
from nmfsep.separate import separate

SR = 22050


def tone(midi: float, seconds: float, n_harmonics: int, decay: float) -> np.ndarray:
    """A harmonic tone whose partials fall as ``decay ** h``, (1, n)."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(decay ** h * np.sin(2 * np.pi * h * f0 * t) for h in range(1, n_harmonics + 1)
            if h * f0 < SR / 2)
    return 0.2 * y[None, :]


def melody(pitches, decay, n_harmonics=10, note_s=0.3):
    return np.concatenate([tone(p, note_s, n_harmonics, decay) for p in pitches], axis=1)


@pytest.fixture(scope="module")
def duo():
    """Two sources with harmonic atoms and a mixture playing notes their clips do not."""
    a = learn_dictionary([(melody([60, 62, 64, 65], 0.8), SR)], "a", 6, harmonic=(55, 70),
                         pitch_shifts=(), max_iter=20)
    b = learn_dictionary([(melody([45, 47, 48, 50], 0.3), SR)], "b", 6, harmonic=(40, 55),
                         pitch_shifts=(), max_iter=20)
    mix = 0.5 * (melody([66, 67, 63, 61], 0.8) + melody([43, 52, 46, 49], 0.3))
    return a, b, mix


def test_widened_puts_every_harmonic_atom_first(duo):
    a, b, _ = duo
    new = learn_dictionary([(melody([66, 67], 0.8), SR)], "a", 4, harmonic=(60, 72),
                           pitch_shifts=(), max_iter=10)
    w = widened(a, new)
    assert w.n_harmonic == a.n_harmonic + new.n_harmonic
    assert w.n_atoms == a.n_atoms + new.n_atoms and w.names == ("a",)
    nh = new.n_harmonic
    np.testing.assert_array_equal(w.atoms[:nh], new.atoms[:nh])
    np.testing.assert_array_equal(w.atoms[nh : w.n_harmonic], a.atoms[: a.n_harmonic])
    np.testing.assert_array_equal(w.atoms[-(a.n_atoms - a.n_harmonic):], a.atoms[a.n_harmonic:])
    assert w.training["relearned"]["atoms"] == new.n_atoms
    assert a.training.get("relearned") is None  # the input is not modified


def test_should_relearn_only_for_fixed_atoms_with_harmonic_atoms_in_use(duo):
    a, b, _ = duo
    plan = make_plan(None, None, [a, b], 0, False, "auto")
    assert should_relearn("auto", plan, None, 0)
    assert should_relearn("on", plan, None, 0)
    assert not should_relearn("off", plan, None, 0)
    assert not should_relearn("auto", plain_plan(plan), None, 0)  # harmonic atoms left out
    assert should_relearn("on", plain_plan(plan), None, 0)
    assert not should_relearn("on", plan, 3.0, 0)  # adapted atoms
    assert not should_relearn("on", plan, None, 2)  # free copies
    blind = make_plan(4, 2, [], 0, False, "auto")
    assert not should_relearn("on", blind, None, 0)
    # a built-in (provenance["builtin"]) keeps one pass under "auto", not under "on"
    builtin = dataclasses.replace(a, provenance={"builtin": "a"})
    with_builtin = make_plan(None, None, [builtin, b], 0, False, "auto")
    assert not should_relearn("auto", with_builtin, None, 0)
    assert should_relearn("on", with_builtin, None, 0)


def test_excerpts_spread_over_a_long_stem_and_keep_a_short_one():
    y = np.arange(100 * SR, dtype=np.float32)[None, :]
    spans = excerpt_spans(y.shape[1], SR)
    parts = [y[:, a:b] for a, b in spans]
    assert len(parts) == RELEARN_EXCERPTS
    assert sum(p.shape[1] for p in parts) <= RELEARN_SECONDS * SR
    assert parts[0][0, 0] == 0 and parts[-1][0, -1] == y[0, -1]
    assert excerpt_spans(5 * SR, SR) == [(0, 5 * SR)]


@pytest.mark.parametrize("seconds", [5, 100])
def test_stem_excerpts_from_blocks_equal_slices_of_the_whole_stems(seconds):
    rng = np.random.default_rng(0)
    stems = rng.standard_normal((3, 2, seconds * SR)).astype(np.float32)
    cuts = [0, 1000, 1000, 777_777, 1_500_000, stems.shape[2]]  # an empty block too
    cuts = sorted(min(c, stems.shape[2]) for c in cuts)
    blocks = [(a, stems[:, :, a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    got = stem_excerpts(iter(blocks), 3, 2, stems.shape[2], SR)
    spans = excerpt_spans(stems.shape[2], SR)
    for g in range(3):
        assert len(got[g]) == len(spans)
        for part, (a, b) in zip(got[g], spans, strict=True):
            np.testing.assert_array_equal(part, stems[g, :, a:b])


def test_a_silent_stem_keeps_its_dictionary(duo):
    a, b, mix = duo
    stems = {"a": [mix], "b": [np.zeros_like(mix)]}
    out = relearned([a, b], stems, SR)
    assert out[1] is b
    assert out[0].n_atoms > a.n_atoms


def test_relearn_runs_two_passes_and_the_stems_add_up(duo):
    a, b, mix = duo
    before = mix.copy()
    one = separate(mix, SR, dictionaries=[a, b], max_iter=30, relearn="off")
    two = separate(mix, SR, dictionaries=[a, b], max_iter=30, relearn="on")
    np.testing.assert_array_equal(mix, before)
    assert one.settings["relearn"] == {"setting": "off", "passes": 1}
    rec = two.settings["relearn"]
    assert rec["passes"] == 2 and rec["added_atoms"]["a"] > 0 and rec["added_atoms"]["b"] > 0
    assert two.H.shape[0] > one.H.shape[0]  # the second pass has the added atoms
    np.testing.assert_allclose(sum(two.stems.values()), mix, atol=1e-5)
    assert not np.allclose(two.stems["a"], one.stems["a"], atol=1e-4)


class Phases:
    """A progress callback with ``phase``: records the phase names and iterations seen."""

    def __init__(self):
        self.names, self.iterations = [], 0

    def __call__(self, iteration, loss=None):
        self.iterations += 1

    def phase(self, name):
        self.names.append(name)


def test_a_phased_callback_hears_the_second_pass_named(duo):
    a, b, mix = duo
    seen = Phases()
    res = separate(mix, SR, dictionaries=[a, b], max_iter=10, relearn="on", harmonic="on",
                   callback=seen)
    assert res.settings["relearn"]["passes"] == 2
    assert seen.names == ["second pass: learning atoms from the first pass's stems",
                          "second pass"]
    chosen = Phases()  # the second pass's harmonic choice is named as the second pass's
    separate(mix, SR, dictionaries=[a, b], max_iter=10, relearn="on", harmonic="auto",
             callback=chosen)
    assert chosen.names[-1].startswith("second pass") and len(chosen.names) > 2
    assert all(n.startswith("second pass") for n in chosen.names[chosen.names.index(
        "second pass: learning atoms from the first pass's stems"):])
    assert seen.iterations == 20  # both passes' iterations reach the callback


def test_default_relearn_is_the_library_default_and_matches_the_cli():
    import inspect

    assert inspect.signature(separate).parameters["relearn"].default == DEFAULT_RELEARN
    assert _RELEARN == DEFAULT_RELEARN


def test_bad_relearn_value_is_one_clear_error(duo):
    a, b, mix = duo
    with pytest.raises(ParameterError, match="relearn"):
        separate(mix, SR, dictionaries=[a, b], relearn="twice")
    # "on" where no second pass can run is refused before any work, as the CLI does
    for kwargs in ({"n_components": 4}, {"dictionaries": [a, b], "n_free": 2},
                   {"dictionaries": [a, b], "adapt": 1.0},
                   {"dictionaries": [a, b], "free_per_source": 1}):
        with pytest.raises(ParameterError, match="relearn='on' needs dictionaries"):
            separate(mix, SR, relearn="on", max_iter=2, **kwargs)


def test_cli_relearn_records_the_second_pass_and_refuses_blind(duo, tmp_path):
    a, b, mix = duo
    a.save(tmp_path / "a.npz")
    b.save(tmp_path / "b.npz")
    sf.write(tmp_path / "mix.wav", mix[0], SR)
    runner = CliRunner()
    r = runner.invoke(app, ["separate", str(tmp_path / "mix.wav"), "--dict",
                            str(tmp_path / "a.npz"), "--dict", str(tmp_path / "b.npz"),
                            "--relearn", "on", "-o", str(tmp_path / "out"), "--json",
                            "--max-iter", "20"])
    assert r.exit_code == 0, r.output
    settings = json.loads(r.stdout)[0]["settings"]
    assert settings["relearn"]["passes"] == 2
    r = runner.invoke(app, ["separate", str(tmp_path / "mix.wav"), "--dict",
                            str(tmp_path / "a.npz"), "--dict", str(tmp_path / "b.npz"),
                            "--relearn", "on", "-o", str(tmp_path / "out3"),
                            "--max-iter", "20"])
    assert r.exit_code == 0 and "second pass with atoms learned" in r.output, r.output
    r = runner.invoke(app, ["separate", str(tmp_path / "mix.wav"), "-k", "4",
                            "--relearn", "on", "-o", str(tmp_path / "out2")])
    assert r.exit_code == 2 and "--relearn on needs --dict" in r.output
    assert not (tmp_path / "out2").exists()


@pytest.mark.parametrize("relearn", ["auto", "on", "off"])
def test_a_file_over_the_memory_budget_streams_and_relearns_as_the_whole_file_would(
        duo, tmp_path, relearn):
    from nmfsep.files import separate_file

    a, b, mix = duo
    sf.write(tmp_path / "mix.wav", mix[0], SR)
    streamed = separate_file(tmp_path / "mix.wav", tmp_path / "out", dictionaries=[a, b],
                             max_iter=10, relearn=relearn, memory=1)
    whole = separate_file(tmp_path / "mix.wav", tmp_path / "whole", dictionaries=[a, b],
                          max_iter=10, relearn=relearn, memory=2**40)
    assert "streamed" in streamed and "streamed" not in whole
    record = streamed["settings"]["relearn"]
    assert record["passes"] == whole["settings"]["relearn"]["passes"]
    assert record["passes"] == (1 if relearn == "off" else 2) or relearn == "auto"
    if record["passes"] == 2:  # the first pass separated the excerpts alone
        assert record["first_pass"] == "excerpts"
        assert record["added_atoms"] == whole["settings"]["relearn"]["added_atoms"]
        n = sum(d["n_atoms"] for d in streamed["settings"]["dictionaries"])
        assert n == sum(d["n_atoms"] for d in whole["settings"]["dictionaries"])
