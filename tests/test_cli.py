"""The ``nmfsep`` command line: surface, exit codes, messages, files written."""

from __future__ import annotations

import csv
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _cli import NO_COLOR_ENV, one_error_line, run, runner
from typer.main import get_command

from nmfsep.cli import _parse_beta, _parse_references, app

SR = 22050
DURATION = 1.5
FAST = ["--max-iter", "25"]  # keep the NMF short: these tests check the CLI, not the quality

COMMANDS = ("separate", "learn", "info", "plot", "eval", "rank", "report", "version")


# --------------------------------------------------------------------------- audio fixtures


def _signals(n=int(SR * DURATION)):
    t = np.arange(n) / SR
    g = np.random.default_rng(1)
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.25)
    noise = 0.1 * g.standard_normal(n) * ((t + 0.25) % 0.5 < 0.25)
    return tone.astype(np.float32), noise.astype(np.float32)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """mix.wav (mono PCM_16), stereo.wav (float), tone.wav and noise.wav (training clips)."""
    d = tmp_path_factory.mktemp("audio")
    tone, noise = _signals()
    sf.write(d / "mix.wav", tone + noise, SR)
    sf.write(
        d / "stereo.wav", np.stack([tone + noise, 0.5 * tone + noise], axis=1), SR, subtype="FLOAT"
    )
    sf.write(d / "tone.wav", tone, SR)
    sf.write(d / "noise.wav", noise, SR)
    return d


@pytest.fixture(scope="module")
def dicts(audio, tmp_path_factory):
    """Two dictionaries learned through the CLI: tone.npz and noise.npz."""
    d = tmp_path_factory.mktemp("dicts")
    for name in ("tone", "noise"):
        r = run("learn", audio / f"{name}.wav", "-n", name, "-k", 3, "-o", d / f"{name}.npz", *FAST)
        assert r.exit_code == 0, r.output
    return d


def read(path):
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    return y.T, sr


# --------------------------------------------------------------------------- surface


def test_help_lists_the_commands():
    r = run("--help")
    assert r.exit_code == 0
    for command in COMMANDS:
        assert command in r.stdout


def test_no_arguments_shows_help():
    r = run()
    assert "Usage" in r.output
    assert "separate" in r.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(command):
    cmd = get_command(app).commands[command]
    for param in cmd.params:
        if param.name in ("help",):
            continue
        assert getattr(param, "help", None), f"{command}: {param.name} has no help"


def test_version_option():
    from nmfsep import __version__

    r = run("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"nmfsep {__version__}"


def test_version_full_lists_dependencies():
    r = run("version", "--full")
    assert r.exit_code == 0
    for name in ("nmfsep", "python", "numpy", "scipy", "librosa", "soundfile", "typer"):
        assert any(line.startswith(name + " ") for line in r.stdout.splitlines()), name


def _cli_defaults(command):
    return {p.name: p.default for p in get_command(app).commands[command].params}


def test_separate_defaults_are_the_library_defaults():
    from nmfsep.files import separate_file
    from nmfsep.separate import separate

    lib = {n: p.default for n, p in inspect.signature(separate).parameters.items()}
    cli = _cli_defaults("separate")
    names = {  # CLI parameter -> library parameter
        "n_components": "n_components",
        "n_sources": "n_sources",
        "n_free": "n_free",
        "mask": "mask",
        "mask_power": "mask_power",
        "grouping": "grouping",
        "beta": "beta",  # None: the dictionaries' β, else Kullback-Leibler
        "max_iter": "max_iter",
        "tol": "tol",
        "seed": "random_state",
    }
    for cli_name, lib_name in names.items():
        assert cli[cli_name] == lib[lib_name], cli_name
    assert not cli["dictionaries"] and not lib["dictionaries"]
    file_lib = {n: p.default for n, p in inspect.signature(separate_file).parameters.items()}
    assert cli["force"] is file_lib["force"] is False
    assert cli["save_model"] is file_lib["save_model"] is False
    assert cli["report"] is file_lib["report"] is False


def test_separate_spatial_help_names_the_library_default():
    from nmfsep.plan import DEFAULT_SPATIAL

    (spatial,) = [p for p in get_command(app).commands["separate"].params if p.name == "spatial"]
    assert spatial.default is None  # the library decides, per mixture
    assert f"[default: {DEFAULT_SPATIAL} " in spatial.help, spatial.help


def test_rank_defaults_are_the_library_defaults():
    from nmfsep.cli import _ks_callback, _seeds_callback
    from nmfsep.rank import rank_sweep

    lib = {n: p.default for n, p in inspect.signature(rank_sweep).parameters.items()}
    cli = _cli_defaults("rank")
    assert _seeds_callback(cli["seeds"]) == list(lib["seeds"])
    assert _parse_beta(cli["beta"]) == _parse_beta(lib["beta"])
    for name in ("max_iter", "tol", "min_gain", "min_stability"):
        assert cli[name] == lib[name], name
    assert _ks_callback(cli["ks"]) == [2, 4, 6, 8, 12, 16, 24, 32]
    assert cli["seconds"] is None


def test_eval_and_report_defaults_are_the_library_defaults():
    from nmfsep.evaluate import evaluate_files
    from nmfsep.report import report_from_model

    lib = inspect.signature(evaluate_files).parameters
    cli = _cli_defaults("eval")
    assert cli["match"] == lib["match"].default and cli["oracle"] is lib["oracle"].default
    lib = inspect.signature(report_from_model).parameters
    cli = _cli_defaults("report")
    assert cli["match"] == lib["match"].default and cli["force"] is lib["force"].default


def test_learn_defaults_are_the_library_defaults():
    from nmfsep.dictionary import learn_dictionary, learn_dictionary_files

    cli = _cli_defaults("learn")
    for function in (learn_dictionary, learn_dictionary_files):
        lib = {n: p.default for n, p in inspect.signature(function).parameters.items()}
        assert _parse_beta(cli["beta"]) == _parse_beta(lib["beta"])
        assert cli["max_iter"] == lib["max_iter"]
        assert cli["tol"] == lib["tol"]
        assert cli["seed"] == lib["random_state"]
        assert cli["n_components"] == lib["n_components"]
    lib = inspect.signature(learn_dictionary_files).parameters
    assert cli["block_seconds"] == lib["block_seconds"].default
    assert cli["passes"] == lib["passes"].default
    assert cli["online"] is lib["online"].default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kl", "kullback-leibler"),
        ("IS", "itakura-saito"),
        ("frobenius", "frobenius"),
        ("kullback-leibler", "kullback-leibler"),
        ("0.5", 0.5),
        ("1", 1.0),
    ],
)
def test_beta_values(text, expected):
    assert _parse_beta(text) == expected


# --------------------------------------------------------------------------- usage errors (2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "-k"),  # neither -k nor --dict
        (["-k", "0"], "-k"),
        (["-k", "2", "--sources", "3"], "--sources"),
        (["-k", "2", "--bogus"], "--bogus"),
        (["-k", "2", "--beta", "foo"], "--beta"),
        (["-k", "2", "--mask", "fuzzy"], "--mask"),
        (["-k", "2", "--max-iter", "0"], "--max-iter"),
        (["-k", "2", "--free", "-1"], "--free"),
        (["-k", "2", "--free", "2"], "--free"),  # --free needs --dict
        (["-k", "2", "--mask-power", "0"], "--mask-power"),
        (["-k", "2", "--grouping", "random"], "--grouping"),
        (["-k", "2", "--stream", "--report"], "--report"),  # a stream keeps no model
        (["-k", "2", "--memory", "lots"], "--memory"),
        (["-k", "2", "--block-seconds", "5"], "--stream"),  # --block-seconds needs --stream
        (["-k", "2", "--jobs", "0"], "--jobs"),
        (["-k", "2", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    ],
)
def test_separate_usage_errors_exit_2(audio, tmp_path, args, needle):
    r = run("separate", audio / "mix.wav", "-o", tmp_path / "out", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


# option pairs the library refuses (SeparationParams.spatial_for on multichannel input,
# adaptation.check_adaptation): usage errors naming both, before any file is read
REFUSED_PAIRS = [
    (["-k", "4", "--sources", "2", "--percussive", "--spatial", "gains"],
     ("--percussive", "--spatial gains"), dict(n_sources=2, percussive=True, spatial="gains")),
    (["--dict", "{d}/tone.npz", "--dict", "{d}/noise.npz", "--adapt", "1", "--spatial", "gains"],
     ("--adapt", "--spatial gains"), dict(adapt=1.0, spatial="gains")),
    (["--sources", "drums,other", "--adapt", "1", "--spatial", "gains"],
     ("--adapt", "--spatial gains"), None),
    (["--dict", "{d}/tone.npz", "--dict", "{d}/noise.npz", "--adapt", "1", "--beta", "is"],
     ("--adapt", "--beta"), dict(adapt=1.0, beta="itakura-saito")),
    (["--sources", "drums,other", "--adapt", "0.5", "--beta", "2"],
     ("--adapt", "--beta"), None),
]


@pytest.mark.parametrize("mix", ["stereo.wav", "mix.wav"])
@pytest.mark.parametrize(("args", "needles", "library"), REFUSED_PAIRS)
def test_options_the_library_refuses_together_are_usage_errors(
    audio, dicts, tmp_path, mix, args, needles, library
):
    r = run("separate", audio / mix, "-o", tmp_path / "out",
            *(a.format(d=dicts) for a in args))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    message = " ".join(r.stderr.replace("│", " ").split())
    assert all(n in message for n in needles), message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "needles", "library"),
                         [p for p in REFUSED_PAIRS if p[2] is not None])
def test_the_library_refuses_those_pairs_on_stereo(audio, dicts, args, needles, library):
    from nmfsep import separate
    from nmfsep.exceptions import ParameterError

    y, sr = read(audio / "stereo.wav")
    if "n_sources" not in library:
        library = dict(library, dictionaries=[dicts / "tone.npz", dicts / "noise.npz"])
    with pytest.raises(ParameterError):
        separate(y, sr, max_iter=2, **library)


def test_neither_k_nor_dict_explains_both(audio):
    r = run("separate", audio / "mix.wav")
    assert r.exit_code == 2
    assert "-k" in r.stderr and "--dict" in r.stderr


@pytest.mark.parametrize("name", ["../evil", "", ".hidden", "a/b"])
def test_learn_unsafe_name_is_a_usage_error(audio, tmp_path, name):
    r = run("learn", audio / "tone.wav", "-n", name, "-k", 2, "-o", tmp_path / "d.npz")
    assert r.exit_code == 2, r.output
    assert "--name" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_learn_requires_its_options(audio, tmp_path):
    r = run("learn", audio / "tone.wav", "-n", "tone", "-k", 2)
    assert r.exit_code == 2
    assert "-o" in r.stderr
    r = run("learn", audio / "tone.wav", "-o", tmp_path / "d.npz", "-k", 2)
    assert r.exit_code == 2
    assert "-n" in r.stderr


# --------------------------------------------------------------------------- separation


def test_blind_separation_writes_components(audio, tmp_path):
    out = tmp_path / "out"
    r = run("separate", audio / "mix.wav", "-k", 3, "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    folder = out / "mix"
    assert sorted(p.name for p in folder.glob("*.wav")) == [
        "component_01.wav",
        "component_02.wav",
        "component_03.wav",
    ]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and "mix.wav" in lines[0] and "3 stems" in lines[0]
    mix, sr = read(audio / "mix.wav")
    total = np.zeros_like(mix)
    for stem in folder.glob("*.wav"):
        y, stem_sr = read(stem)
        assert stem_sr == sr and y.shape == mix.shape
        assert sf.info(stem).subtype == "FLOAT"
        total += y
    np.testing.assert_allclose(total, mix, atol=1e-3)


def test_sources_groups_components(audio, tmp_path):
    out = tmp_path / "out"
    r = run("separate", audio / "mix.wav", "-k", 4, "--sources", 2, "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "mix").glob("*.wav")) == ["source_1.wav", "source_2.wav"]


def test_stereo_keeps_rate_channels_and_length(audio, tmp_path):
    out = tmp_path / "out"
    r = run("separate", audio / "stereo.wav", "-k", 2, "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    mix, sr = read(audio / "stereo.wav")
    stems = sorted((out / "stereo").glob("*.wav"))
    assert len(stems) == 2
    for stem in stems:
        y, stem_sr = read(stem)
        assert stem_sr == sr
        assert y.shape == mix.shape == (2, int(SR * DURATION))


def test_learn_then_supervised_separation(audio, dicts, tmp_path):
    out = tmp_path / "out"
    r = run(
        "separate",
        audio / "mix.wav",
        "--dict",
        dicts / "tone.npz",
        "--dict",
        dicts / "noise.npz",
        "-o",
        out,
        *FAST,
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "mix").glob("*.wav")) == ["noise.wav", "tone.wav"]


def test_free_atoms_write_residual(audio, dicts, tmp_path):
    out = tmp_path / "out"
    r = run(
        "separate", audio / "mix.wav", "--dict", dicts / "tone.npz", "--free", 2, "-o", out, *FAST
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "mix").glob("*.wav")) == ["residual.wav", "tone.wav"]


def test_json_output_parses(audio, tmp_path):
    out = tmp_path / "out"
    r = run(
        "separate", audio / "mix.wav", audio / "stereo.wav", "-k", 2, "-o", out, "--json", *FAST
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert isinstance(doc, list) and len(doc) == 2
    for entry, name in zip(doc, ("mix", "stereo"), strict=True):
        assert name in str(entry["input"])
        assert "stems" in entry and len(entry["stems"]) == 2
        assert "error" not in entry


def test_quiet_prints_nothing_on_success(audio, tmp_path):
    r = run(
        "separate", audio / "mix.wav", "-k", 2, "-o", tmp_path, "-q", "--max-iter", 5, "--tol", 0
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == ""


def test_all_silent_mixture_warns_and_writes_silence(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(SR), SR)
    out = tmp_path / "out"
    r = run("separate", tmp_path / "silent.wav", "-k", 2, "-o", out, *FAST)
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings, r.stderr
    assert "silent" in " ".join(warnings).lower()
    stems = sorted((out / "silent").glob("*.wav"))
    assert len(stems) == 2
    for stem in stems:
        y, sr = read(stem)
        assert sr == SR and y.shape == (1, SR) and not y.any()


def test_save_model_then_info(audio, tmp_path):
    out = tmp_path / "out"
    r = run("separate", audio / "mix.wav", "-k", 2, "-o", out, "--save-model", "--json", *FAST)
    assert r.exit_code == 0, r.output
    models = [p for p in (out / "mix").rglob("*.npz")]
    assert len(models) == 1
    r = run("info", models[0])
    assert r.exit_code == 0, r.output
    assert "model" in r.stdout
    r = run("info", models[0], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kind"] == "model"


# --------------------------------------------------------------------------- learn / info


def test_learn_writes_a_dictionary_and_info_reads_it(dicts):
    r = run("info", dicts / "tone.npz")
    assert r.exit_code == 0, r.output
    assert "tone" in r.stdout and "22050" in r.stdout and "tone.wav" in r.stdout
    assert "each spanning 3 frames" in r.stdout  # the default temporal context
    r = run("info", dicts / "tone.npz", "--json")
    doc = json.loads(r.stdout)
    assert doc["kind"] == "dictionary" and doc["context_frames"] == 3
    from nmfsep.dictionary import Dictionary

    tone = Dictionary.load(dicts / "tone.npz")  # a pitched clip: harmonic atoms by default
    assert doc["k"] == tone.n_atoms == 3 + tone.n_harmonic and tone.n_harmonic > 0
    assert doc["sources"] == {"tone": doc["k"]} and doc["sr"] == SR
    assert doc["stft"]["n_fft"] > 0 and doc["clips"][0]["name"] == "tone.wav"


def test_learn_refuses_to_overwrite(audio, dicts, tmp_path):
    target = tmp_path / "tone.npz"
    target.write_bytes(b"precious")
    r = run("learn", audio / "tone.wav", "-n", "tone", "-k", 2, "-o", target, *FAST)
    assert r.exit_code == 1
    one_error_line(r, "--force", str(target))
    assert target.read_bytes() == b"precious"
    r = run("learn", audio / "tone.wav", "-n", "tone", "-k", 2, "-o", target, "--force", *FAST)
    assert r.exit_code == 0, r.output
    assert run("info", target).exit_code == 0


def test_learn_bad_clip_exits_1(tmp_path):
    r = run("learn", tmp_path / "nope.wav", "-n", "x", "-k", 2, "-o", tmp_path / "d.npz")
    assert r.exit_code == 1
    one_error_line(r, "nope.wav")
    assert not (tmp_path / "d.npz").exists()


def test_info_rejects_non_dictionaries(tmp_path, audio):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    for path in (tmp_path / "junk.npz", audio / "mix.wav", tmp_path / "missing.npz"):
        r = run("info", path)
        assert r.exit_code == 1, r.output
        one_error_line(r, path.name)


# --------------------------------------------------------------------------- bad input (1)


def test_existing_outputs_are_not_overwritten(audio, tmp_path):
    out = tmp_path / "out"
    assert run("separate", audio / "mix.wav", "-k", 2, "-o", out, *FAST).exit_code == 0
    stem = out / "mix" / "component_01.wav"
    before = stem.read_bytes()
    os.utime(stem, (1, 1))
    r = run("separate", audio / "mix.wav", "-k", 2, "-o", out, "--seed", 3, *FAST)
    assert r.exit_code == 1
    one_error_line(r, "--force")
    assert stem.read_bytes() == before and stem.stat().st_mtime == 1
    r = run("separate", audio / "mix.wav", "-k", 2, "-o", out, "--seed", 3, "--force", *FAST)
    assert r.exit_code == 0, r.output
    assert stem.stat().st_mtime != 1


def _bad_inputs(tmp_path):
    text = tmp_path / "x.wav"
    text.write_text("this is not audio\n")
    empty = tmp_path / "empty.wav"
    empty.touch()
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    return {"missing": tmp_path / "missing.wav", "folder": folder, "text": text, "empty": empty}


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "empty"])
def test_bad_mixture_is_one_error_line(tmp_path, kind):
    path = _bad_inputs(tmp_path)[kind]
    r = run("separate", path, "-k", 2, "-o", tmp_path / "out")
    assert r.exit_code == 1, r.output
    one_error_line(r, path.name)
    assert r.stdout == ""


def test_one_bad_file_does_not_stop_the_batch(audio, tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "missing.wav"
    r = run("separate", missing, audio / "mix.wav", "-k", 2, "-o", out, *FAST)
    assert r.exit_code == 1
    one_error_line(r, "missing.wav")
    assert len(list((out / "mix").glob("*.wav"))) == 2
    assert "mix.wav" in r.stdout
    r = run("separate", missing, audio / "stereo.wav", "-k", 2, "-o", out, "--json", *FAST)
    doc = json.loads(r.stdout)
    assert "error" in doc[0] and "stems" in doc[1]


def test_same_mixture_name_twice_is_refused(audio, tmp_path):
    r = run("separate", audio / "mix.wav", audio / "mix.wav", "-k", 2, "-o", tmp_path, *FAST)
    assert r.exit_code == 1
    one_error_line(r, "named twice")


def test_corrupt_dictionary_is_one_error_line(audio, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage" * 10)
    out = tmp_path / "out"
    r = run("separate", audio / "mix.wav", "--dict", bad, "-o", out)
    assert r.exit_code == 1
    one_error_line(r, "bad.npz")
    assert not list(out.rglob("*.wav")) if out.exists() else True


def test_crafted_label_cannot_escape_the_output_folder(audio, dicts, tmp_path):
    with np.load(dicts / "tone.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["labels"] = np.array(["../evil"] * len(arrays["labels"]))
    meta = json.loads(str(arrays["meta"]))
    meta["names"] = ["../evil"]
    arrays["meta"] = np.array(json.dumps(meta))
    crafted = tmp_path / "crafted.npz"
    np.savez(crafted, **arrays)
    out = tmp_path / "deep" / "out"
    r = run("separate", audio / "mix.wav", "--dict", crafted, "-o", out, *FAST)
    assert r.exit_code == 1
    one_error_line(r, "crafted.npz")
    assert not [p for p in tmp_path.rglob("*evil*")]
    assert not list(tmp_path.rglob("*.wav"))


def test_debug_env_reraises(tmp_path):
    r = run(
        "separate", tmp_path / "missing.wav", "-k", 2, "-o", tmp_path, env={"NMFSEP_DEBUG": "1"}
    )
    from nmfsep.exceptions import NmfsepError

    assert isinstance(r.exception, NmfsepError)


# --------------------------------------------------------------------------- real processes


def _python_m(*args, env=None, **kwargs):
    merged = {**os.environ, **NO_COLOR_ENV, **(env or {})}
    full_env = {key: value for key, value in merged.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-m", "nmfsep", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        **kwargs,
    )


def test_subprocess_exit_codes(audio, tmp_path):
    p = _python_m("separate", tmp_path / "missing.wav", "-k", 2, "-o", tmp_path / "out")
    assert p.returncode == 1
    assert p.stderr.strip().startswith("error: ") and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr
    p = _python_m("separate", audio / "mix.wav", "-o", tmp_path / "out")
    assert p.returncode == 2
    p = _python_m("separate", audio / "mix.wav", "-k", 2, "--no-such-option")
    assert p.returncode == 2
    p = _python_m(
        "separate", audio / "mix.wav", "-k", 2, "-o", tmp_path / "out", "--max-iter", 5, "--json"
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["stems"]
    assert "\x1b[" not in p.stderr  # no progress bar or colour when stderr is not a terminal


def test_help_imports_nothing_heavy():
    """``--help`` stays fast by importing none of the heavy libraries (checked by what it
    imports, not by a timer: shared machines are noisy)."""
    p = _python_m("--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert p.returncode == 0
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if "|" in line}
    for heavy in ("librosa", "scipy", "soundfile", "matplotlib", "sklearn", "rich.progress"):
        assert heavy not in imported, f"nmfsep --help imports {heavy}"


@pytest.mark.parametrize(
    ("extra", "needle"), [(["-k", "3"], "-k"), (["--sources", "2"], "--sources")]
)
def test_blind_options_with_dict_are_usage_errors(audio, dicts, tmp_path, extra, needle):
    r = run("separate", audio / "mix.wav", "--dict", dicts / "tone.npz", *extra, "-o", tmp_path)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "--dict" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_sources_alone_uses_the_library_components_per_source(audio, tmp_path):
    from nmfsep.plan import DEFAULT_COMPONENTS_PER_SOURCE

    r = run("separate", audio / "mix.wav", "--sources", 2, "-o", tmp_path, "--json", *FAST)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert sorted(doc[0]["stems"]) == ["source_1", "source_2"]
    assert doc[0]["settings"]["n_components"] == 2 * DEFAULT_COMPONENTS_PER_SOURCE
    params = get_command(app).commands["separate"].params
    sources = next(p for p in params if p.name == "n_sources")
    assert f"{DEFAULT_COMPONENTS_PER_SOURCE} components per source" in sources.help
    from nmfsep.plan import MANY_SOURCES, MANY_SOURCES_COMPONENTS_PER_SOURCE

    assert f"({MANY_SOURCES_COMPONENTS_PER_SOURCE} from {MANY_SOURCES} sources on)" in \
        " ".join(sources.help.split())


def test_harmonic_help_names_the_library_choice_seconds():
    from nmfsep.plan import HARMONIC_CHOICE_SECONDS

    params = get_command(app).commands["separate"].params
    harmonic = next(p for p in params if p.name == "harmonic")
    assert f"first {HARMONIC_CHOICE_SECONDS:g} s of a longer mix" in harmonic.help


def test_pickled_dictionary_is_refused_without_running_it(audio, dicts, tmp_path):
    with np.load(dicts / "tone.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["labels"] = np.array([{"evil": True}] * len(arrays["labels"]), dtype=object)
    crafted = tmp_path / "pickled.npz"
    np.savez(crafted, **arrays)
    r = run("separate", audio / "mix.wav", "--dict", crafted, "-o", tmp_path / "out")
    assert r.exit_code == 1
    one_error_line(r, "pickled.npz")
    r = run("info", crafted)
    assert r.exit_code == 1
    one_error_line(r, "pickled.npz")


# --------------------------------------------------------------------------- separate --report


def test_separate_report_writes_report_and_mixture(audio, tmp_path):
    out = tmp_path / "out"
    r = run("separate", audio / "mix.wav", "-k", 2, "-o", out, "--report", "--json", *FAST)
    assert r.exit_code == 0, r.output
    folder = out / "mix"
    doc = json.loads(r.stdout)
    assert doc[0]["report"] == str(folder / "report.html")
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "component_01.wav" in page and "mixture.wav" in page
    mix, sr = read(audio / "mix.wav")
    y, y_sr = read(folder / "mixture.wav")
    assert y_sr == sr and y.shape == mix.shape
    np.testing.assert_allclose(y, mix, atol=1e-4)
    # without --report: no report, and the summary says so
    r = run("separate", audio / "mix.wav", "-k", 2, "-o", tmp_path / "plain", "--json", *FAST)
    assert json.loads(r.stdout)[0]["report"] is None
    assert not (tmp_path / "plain" / "mix" / "report.html").exists()


@pytest.mark.parametrize("existing", ["report.html", "mixture.wav"])
def test_separate_report_refuses_existing_targets_before_computing(audio, tmp_path, existing):
    folder = tmp_path / "out" / "mix"
    folder.mkdir(parents=True)
    (folder / existing).write_bytes(b"precious")
    r = run("separate", audio / "mix.wav", "-k", 2, "-o", tmp_path / "out", "--report", *FAST)
    assert r.exit_code == 1, r.output
    one_error_line(r, "--force", existing)
    assert sorted(p.name for p in folder.iterdir()) == [existing]  # no stem written
    assert (folder / existing).read_bytes() == b"precious"


# --------------------------------------------------------------------------- plot


@pytest.fixture(scope="module")
def model_dir(audio, tmp_path_factory):
    """A blind separation saved with --save-model: source_1.wav, source_2.wav, model.npz."""
    out = tmp_path_factory.mktemp("model")
    r = run(
        "separate", audio / "mix.wav", "-k", 4, "--sources", 2, "-o", out, "--save-model", *FAST
    )
    assert r.exit_code == 0, r.output
    return out / "mix"


def test_plot_dictionary_and_model(dicts, model_dir, tmp_path):
    r = run("plot", dicts / "tone.npz", "-o", tmp_path / "atoms.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "atoms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "atoms.png" in r.stdout
    r = run("plot", model_dir / "model.npz", "-o", tmp_path / "sub" / "model.svg", "--linear")
    assert r.exit_code == 0, r.output
    assert "<svg" in (tmp_path / "sub" / "model.svg").read_text(encoding="utf-8")


def test_plot_bad_suffix_is_a_usage_error(dicts, tmp_path):
    r = run("plot", dicts / "tone.npz", "-o", tmp_path / "atoms.jpg")
    assert r.exit_code == 2, r.output
    assert "'.jpg'" in r.stderr and ".png" in r.stderr
    assert "Traceback" not in r.output
    assert list(tmp_path.iterdir()) == []


def test_plot_refuses_to_overwrite(dicts, tmp_path):
    target = tmp_path / "atoms.png"
    target.write_bytes(b"precious")
    r = run("plot", dicts / "tone.npz", "-o", target)
    assert r.exit_code == 1
    one_error_line(r, "--force", "atoms.png")
    assert target.read_bytes() == b"precious"
    r = run("plot", dicts / "tone.npz", "-o", target, "--force")
    assert r.exit_code == 0, r.output
    assert target.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", ["missing.npz", "mix.wav"])
def test_plot_bad_source_is_one_error_line(audio, tmp_path, name):
    source = audio / name if name == "mix.wav" else tmp_path / name
    r = run("plot", source, "-o", tmp_path / "fig.png")
    assert r.exit_code == 1, r.output
    one_error_line(r, name)
    assert not (tmp_path / "fig.png").exists()


# --------------------------------------------------------------------------- eval


@pytest.fixture(scope="module")
def estimates(tmp_path_factory):
    """Imperfect estimates of tone and noise: est/tone.wav, est/noise.wav and blind copies."""
    d = tmp_path_factory.mktemp("est")
    tone, noise = _signals()
    for folder, names in (("est", ("tone", "noise")), ("blind", ("source_1", "source_2"))):
        (d / folder).mkdir()
        # the blind stems come in the other order: only a permutation pairs them right
        pairs = zip(names, (tone + 0.1 * noise, noise + 0.1 * tone), strict=True)
        if folder == "blind":
            pairs = zip(names, (noise + 0.1 * tone, tone + 0.1 * noise), strict=True)
        for name, y in pairs:
            sf.write(d / folder / f"{name}.wav", y, SR, subtype="FLOAT")
    return d


def _eval_args(audio, estimates, folder="est", names=("tone", "noise")):
    args = []
    for name in ("tone", "noise"):
        args += ["--reference", audio / f"{name}.wav"]
    for name in names:
        args += ["-e", estimates / folder / f"{name}.wav"]
    return args


def test_eval_prints_a_table_and_writes_csv(audio, estimates, tmp_path):
    target = tmp_path / "scores.csv"
    r = run("eval", *_eval_args(audio, estimates), "-m", audio / "mix.wav", "--csv", target)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "SDR" in lines[1] and "SI-SDRi" in lines[1]
    assert any(line.startswith("tone ") for line in lines)
    assert any(line.startswith("mean") for line in lines)
    with open(target, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [row["name"] for row in rows] == ["tone", "noise"]
    assert all(float(row["sdr"]) > 10 and row["status"] == "ok" for row in rows)
    # the CSV is an output like any other: not overwritten without --force
    before = target.read_bytes()
    r = run("eval", *_eval_args(audio, estimates), "--csv", target)
    assert r.exit_code == 1
    one_error_line(r, "--force", "scores.csv")
    assert target.read_bytes() == before and r.stdout == ""


def test_eval_json_permutation_and_oracle(audio, estimates):
    blind = _eval_args(audio, estimates, "blind", ("source_1", "source_2"))
    r = run("eval", *blind, "--match", "permutation", "--oracle", "irm", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["match"] == "permutation" and doc["oracle_kind"] == "irm"
    pairs = {s["name"]: s["reference"] for s in doc["stems"]}
    assert pairs == {"source_1": "noise", "source_2": "tone"}
    assert doc["mean"]["sdr"] > 10 and doc["oracle"]["mean"]["sdr"] > 10
    assert doc["stems"][0]["si_sdri"] is None  # no --mixture


def test_eval_names_that_do_not_pair_up_suggest_permutation(audio, estimates):
    r = run("eval", *_eval_args(audio, estimates, "blind", ("source_1", "source_2")))
    assert r.exit_code == 1, r.output
    one_error_line(r, "--match permutation")


def test_eval_missing_file_is_one_error_line(audio, estimates, tmp_path):
    missing = tmp_path / "tone.wav"  # same name as the estimate: the file is what is wrong
    args = ["-r", missing, "-r", audio / "noise.wav"]
    r = run("eval", *args, "-e", estimates / "est" / "tone.wav", "-e", estimates / "est/noise.wav")
    assert r.exit_code == 1, r.output
    one_error_line(r, str(missing))
    assert r.stdout == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-e", "x.wav"], "--reference"),
        (["-r", "x.wav"], "--estimate"),
        (["-r", "x.wav", "-e", "x.wav", "--match", "fuzzy"], "--match"),
        (["-r", "x.wav", "-e", "x.wav", "--oracle", "magic"], "--oracle"),
    ],
)
def test_eval_usage_errors_exit_2(args, needle):
    r = run("eval", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr


# --------------------------------------------------------------------------- rank

RANK_FAST = ["-k", "2,3", "--seeds", "0,1", "--max-iter", "10", "--seconds", "1"]


def test_rank_prints_the_table_and_the_suggestion(audio):
    r = run("rank", audio / "mix.wav", *RANK_FAST)
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["k", "divergence/entry"]
    assert lines[-1].startswith("suggested k=")
    marked = [line for line in lines if line.lstrip().startswith("* ")]
    assert len(marked) == 1 and lines[-1].startswith(f"suggested k={marked[0].split()[1]}")


def test_rank_json_and_plot_with_clips_at_two_rates(audio, tmp_path):
    tone, _ = _signals()
    sf.write(tmp_path / "tone16k.wav", tone[::2], SR // 2)  # read at the first clip's rate
    figure = tmp_path / "rank.png"
    clips = [audio / "noise.wav", tmp_path / "tone16k.wav"]
    r = run("rank", *clips, *RANK_FAST, "--json", "--plot", figure)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ks"] == [2, 3] and doc["seeds"] == [0, 1] and doc["suggested_k"] in (2, 3)
    assert doc["settings"]["sr"] == SR and doc["settings"]["n_clips"] == 2
    assert len(doc["runs"]) == 4 and doc["reason"]
    assert doc["clips"] == [str(c) for c in clips] and doc["plot"] == str(figure)
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_rank_quiet_prints_only_k(audio):
    r = run("rank", audio / "mix.wav", *RANK_FAST, "-q")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() in ("2", "3")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-k", "2,x"], "'x'"),
        (["-k", "0,2"], "-k"),
        (["-k", ","], "-k"),
        (["--seeds", "1,1"], "--seeds"),
        (["--seconds", "0"], "--seconds"),
        (["--min-gain", "2"], "--min-gain"),
        (["--plot", "rank.jpg"], "'.jpg'"),
        (["--beta", "foo"], "--beta"),
    ],
)
def test_rank_usage_errors_exit_2(audio, tmp_path, args, needle):
    r = run("rank", audio / "mix.wav", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert r.stdout == ""


def test_rank_refuses_an_existing_plot_before_running(audio, tmp_path):
    figure = tmp_path / "rank.png"
    figure.write_bytes(b"precious")
    r = run("rank", audio / "mix.wav", *RANK_FAST, "--plot", figure)
    assert r.exit_code == 1
    one_error_line(r, "--force", "rank.png")
    assert r.stdout == "" and figure.read_bytes() == b"precious"


@pytest.mark.parametrize(("args", "needle"), [(["-k", "500"], "k=500"), ([], "missing.wav")])
def test_rank_bad_input_is_one_error_line(audio, tmp_path, args, needle):
    clip = audio / "mix.wav" if args else tmp_path / "missing.wav"
    r = run("rank", clip, *args, "--max-iter", 5)
    assert r.exit_code == 1, r.output
    one_error_line(r, needle)
    assert r.stdout == ""


def test_rank_cuts_its_default_grid_to_a_short_clip_and_says_so(tmp_path):
    clip = tmp_path / "short.wav"
    rng = np.random.default_rng(0)
    sf.write(clip, rng.uniform(-0.1, 0.1, 3000).astype(np.float32), 22050)  # 6 frames
    r = run("rank", clip, "--json", "--seeds", "0,1", "--max-iter", 5)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ks"] == [2, 4, 6]
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("warning: ") and "at most 6: trying k=2,4,6 of the default" in line
    r = run("rank", clip, "-k", "2,8", "--max-iter", 5)  # a grid the user gave is not cut
    assert r.exit_code == 1, r.output
    one_error_line(r, "k=8")
    sf.write(clip, np.full(50, 0.1, dtype=np.float32), 22050)  # padded to one FFT: 5 frames
    r = run("rank", clip, "--json", "--seeds", "0,1", "--max-iter", 5)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ks"] == [2, 4] and "at most 5: trying k=2,4 of" in r.stderr


def test_rank_sources_refuses_a_clip_too_short_to_count(tmp_path):
    clip = tmp_path / "short.wav"
    sf.write(clip, np.full(100, 0.1, dtype=np.float32), 22050)
    r = run("rank", clip, "--sources", "--max-iter", 5)
    assert r.exit_code == 1, r.output
    one_error_line(r, "short.wav", "at least 22050 samples at 22050 Hz (1 s, and one STFT")
    assert r.stdout == ""
    sf.write(clip, np.full(21, 0.1, dtype=np.float32), 7)  # 3 s, shorter than one frame
    r = run("rank", clip, "--sources", "--max-iter", 5)
    assert r.exit_code == 1, r.output
    one_error_line(r, "short.wav", "samples at 7 Hz")


# --------------------------------------------------------------------------- report


def test_parse_references(tmp_path):
    odd = tmp_path / "a=b.wav"
    odd.touch()
    refs = _parse_references(None, ["piano=refs/p.wav", "refs/flute.wav", str(odd)])
    assert refs == {"piano": Path("refs/p.wav"), "flute": Path("refs/flute.wav"), "a=b": odd}
    assert _parse_references(None, None) is None


def test_report_from_a_saved_model(audio, model_dir, tmp_path):
    folder = shutil.copytree(model_dir, tmp_path / "mix")
    r = run(
        "report",
        folder / "model.npz",
        "-m",
        audio / "mix.wav",
        "-r",
        f"tone={audio / 'tone.wav'}",
        "-r",
        audio / "noise.wav",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().startswith(str(folder / "report.html"))
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "source_1.wav" in page and "SI-SDR" in page and "noise" in page
    assert (folder / "mixture.wav").is_file()
    # again: report.html exists
    before = (folder / "report.html").read_bytes()
    r = run("report", folder / "model.npz")
    assert r.exit_code == 1
    one_error_line(r, "--force", "report.html")
    assert (folder / "report.html").read_bytes() == before


def test_report_errors(audio, model_dir, tmp_path):
    r = run("report", tmp_path / "missing.npz")
    assert r.exit_code == 1
    one_error_line(r, "missing.npz")
    folder = shutil.copytree(model_dir, tmp_path / "mix")
    (folder / "source_2.wav").unlink()
    r = run("report", folder / "model.npz")
    assert r.exit_code == 1
    one_error_line(r, "source_2")
    assert not (folder / "report.html").exists()
    r = run("report", folder / "model.npz", "-r", audio / "tone.wav", "-r", f"tone={audio}")
    assert r.exit_code == 2
    assert "tone" in r.stderr and "--reference" in r.stderr
    r = run("report", folder / "model.npz", "--match", "fuzzy")
    assert r.exit_code == 2


@pytest.mark.parametrize("command", ["plot", "rank", "report"])
def test_debug_env_reraises_in_the_new_commands(tmp_path, command):
    from nmfsep.exceptions import NmfsepError

    args = {
        "plot": ["plot", tmp_path / "missing.npz", "-o", tmp_path / "f.png"],
        "rank": ["rank", tmp_path / "missing.wav"],
        "report": ["report", tmp_path / "missing.npz"],
    }[command]
    r = run(*args, env={"NMFSEP_DEBUG": "1"})
    assert isinstance(r.exception, NmfsepError), r.output


# --------------------------------------------------------------------------- batches, streams


def test_batch_and_stream_defaults_are_the_library_defaults():
    from nmfsep.batch import separate_batch
    from nmfsep.stream import DEFAULT_BLOCK_SECONDS, separate_stream

    cli = _cli_defaults("separate")
    assert cli["block_seconds"] == DEFAULT_BLOCK_SECONDS
    assert (
        inspect.signature(separate_stream).parameters["block_seconds"].default
        == cli["block_seconds"]
    )
    batch = inspect.signature(separate_batch).parameters
    assert cli["jobs"] is batch["n_jobs"].default is None
    assert cli["scheduler"] is batch["scheduler"].default is None
    assert cli["recursive"] is batch["recursive"].default is False
    assert cli["stream"] is batch["stream"].default is False


@pytest.fixture
def songs(tmp_path):
    """A folder of three short mixtures and one file that is not audio."""
    folder = tmp_path / "songs"
    folder.mkdir()
    tone, noise = _signals(SR)  # 1 s
    for i in range(3):
        sf.write(folder / f"song{i}.wav", np.roll(tone, 2000 * i) + (1 + i) * noise, SR)
    (folder / "broken.wav").write_text("this is not audio\n")
    return folder


def test_batch_folder_failure_table_rerun_and_force(songs, tmp_path):
    out = tmp_path / "out"
    r = run("separate", songs, "-k", 2, "-o", out, "--jobs", 2, "--max-iter", 5)
    assert r.exit_code == 1, r.output
    rows = r.stdout.splitlines()
    failed = [line for line in rows if line.startswith("FAILED")]
    assert len(failed) == 1 and "broken.wav" in failed[0] and "cannot be read" in failed[0]
    assert sum(line.startswith("done ") for line in rows) == 3
    assert "3 done, 0 skipped, 1 failed" in rows[-1] and "loky, 2 at a time" in rows[-1]
    one_error_line(r, "broken.wav", "cannot be read")  # and on stderr, as it happens
    for i in range(3):
        assert sorted(p.name for p in (out / f"song{i}").iterdir()) == [
            "component_01.wav",
            "component_02.wav",
        ]
    assert not (out / "broken").exists()
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}

    # a rerun skips what is done (and reports it); the broken file fails again
    r = run("separate", songs, "-k", 2, "-o", out, "--max-iter", 5)
    assert r.exit_code == 1, r.output
    assert sum(line.startswith("skipped ") for line in r.stdout.splitlines()) == 3
    assert "0 done, 3 skipped, 1 failed" in r.stdout
    r = run("separate", songs, "-k", 2, "-o", out, "--max-iter", 5, "--json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert (doc["ok"], doc["n_done"], doc["n_skipped"], doc["n_failed"]) == (False, 0, 3, 1)
    assert sorted(Path(s["input"]).name for s in doc["skipped"]) == [
        "song0.wav",
        "song1.wav",
        "song2.wav",
    ]
    assert doc["failed"][0]["input"].endswith("broken.wav") and doc["failed"][0]["reason"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == mtimes

    # a quoted pattern (no broken file) with --force redoes them, in this process
    r = run(
        "separate",
        f"{songs}/song*.wav",
        "-k",
        2,
        "-o",
        out,
        "--max-iter",
        5,
        "-j",
        1,
        "--force",
        "--json",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["n_done"] == 3 and doc["backend"] == "sequential"
    assert all(p.stat().st_mtime_ns != t for p, t in mtimes.items())


def test_batch_recursive_and_patterns_that_match_nothing(songs, tmp_path):
    (songs / "broken.wav").unlink()
    sub = songs / "more"
    sub.mkdir()
    tone, _ = _signals(SR // 2)
    sf.write(sub / "deep.wav", tone, SR)
    args = ["-k", 2, "--max-iter", 3, "-j", 1, "-q"]
    r = run("separate", songs, "-o", tmp_path / "flat", *args)
    assert r.exit_code == 0, r.output
    assert r.stdout == ""  # --quiet: no table
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["song0", "song1", "song2"]
    r = run("separate", songs, "-o", tmp_path / "deep", "--recursive", *args)
    assert r.exit_code == 0, r.output
    assert "deep" in {p.name for p in (tmp_path / "deep").iterdir()}
    r = run("separate", f"{songs}/nothing*.wav", "-k", 2, "-o", tmp_path / "none")
    assert r.exit_code == 1, r.output
    one_error_line(r, "nothing*.wav", "matches no file")
    assert r.stdout == ""


def test_stream_matches_whole_file_separation(audio, tmp_path):
    # single-frame atoms (--context 1): streaming then equals whole-file separation
    # (with temporal context, frames are stacked within blocks; tests/test_stream.py)
    dicts = tmp_path / "dicts"
    for name in ("tone", "noise"):
        r = run("learn", audio / f"{name}.wav", "-n", name, "-k", 3, "-o", dicts / f"{name}.npz",
                "--context", 1, *FAST)
        assert r.exit_code == 0, r.output
    r = run("info", dicts / "tone.npz", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["context_frames"] == 1, r.output
    r = run("learn", audio / "tone.wav", "-n", "x", "-k", 3, "-o", tmp_path / "x.npz",
            "--context", 3, "--online")
    assert r.exit_code == 1
    one_error_line(r, "--context 3 does not apply with --online")
    args = ["--dict", dicts / "tone.npz", "--dict", dicts / "noise.npz", "--tol", 0,
            "--spatial", "shared", *FAST]  # equal whole and streamed: one model for the file
    r = run("separate", audio / "stereo.wav", "-o", tmp_path / "whole", *args)
    assert r.exit_code == 0, r.output
    r = run(
        "separate",
        audio / "stereo.wav",
        "-o",
        tmp_path / "stream",
        *args,
        "--stream",
        "--block-seconds",
        0.5,
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and "stereo.wav: 2 stems" in lines[0]
    mix, _ = read(audio / "stereo.wav")
    total = np.zeros_like(mix)
    for name in ("tone", "noise"):
        streamed, sr = read(tmp_path / "stream" / "stereo" / f"{name}.wav")
        whole, _ = read(tmp_path / "whole" / "stereo" / f"{name}.wav")
        assert sr == SR and streamed.shape == whole.shape == mix.shape
        # tol=0: every block runs the whole file's iterations -> equal to float32 rounding
        # (nmfsep/stream.py; tests/test_stream.py uses 1e-5 of the peak)
        np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-4 * np.abs(mix).max())
        total += streamed
    np.testing.assert_allclose(total, mix, atol=1e-4)
    # --json: the summary records the blocks; an existing stem needs --force
    r = run(
        "separate",
        audio / "stereo.wav",
        "-o",
        tmp_path / "stream",
        *args,
        "--stream",
        "--block-seconds",
        0.5,
        "--json",
    )
    assert r.exit_code == 1
    one_error_line(r, "--force")
    r = run(
        "separate",
        audio / "stereo.wav",
        "-o",
        tmp_path / "stream",
        *args,
        "--stream",
        "--block-seconds",
        0.5,
        "--json",
        "--force",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc[0]["n_blocks"] > 1 and doc[0]["settings"]["stream"]["block_seconds"] == 0.5


@pytest.mark.parametrize("flag", ["--save-model", "--report"])
def test_stream_refuses_whole_file_outputs(audio, dicts, tmp_path, flag):
    r = run(
        "separate",
        audio / "mix.wav",
        "--dict",
        dicts / "tone.npz",
        "--stream",
        flag,
        "-o",
        tmp_path / "out",
    )
    assert r.exit_code == 2, r.output
    assert flag in r.stderr and "--stream" in r.stderr
    assert not (tmp_path / "out").exists()


def test_scheduler_runs_the_batch_on_a_dask_cluster(songs, tmp_path):
    distributed = pytest.importorskip("distributed")
    (songs / "broken.wav").unlink()
    out = tmp_path / "out"
    # A real scheduler on loopback tcp, its worker a thread of this process (fast to
    # start); processes=False alone would pick the inproc:// protocol, which --scheduler
    # could not be given.
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        r = run(
            "separate", songs, "-k", 2, "-o", out, "--max-iter", 5, "--scheduler", address, "--json"
        )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["backend"] == "dask" and doc["scheduler"] == address
    assert doc["n_done"] == 3 and doc["n_jobs"] == 1
    for i in range(3):
        assert len(list((out / f"song{i}").glob("*.wav"))) == 2


@pytest.mark.parametrize(
    "address", ["not a url", "tcp://127.0.0.1", "tcp://127.0.0.1:notaport", "ftp://127.0.0.1:8786"]
)
def test_malformed_scheduler_address_is_one_error_line(audio, tmp_path, address):
    pytest.importorskip("distributed")
    r = run("separate", audio / "mix.wav", "-k", 4, "--scheduler", address, "--max-iter", 20,
            "-o", tmp_path / "out")
    assert r.exit_code == 1, r.output
    one_error_line(r, repr(address), "tcp://HOST:PORT")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- learn --online


def test_learn_online_writes_a_loadable_dictionary(audio, tmp_path):
    from nmfsep.dictionary import Dictionary

    out = tmp_path / "tone.npz"
    r = run("learn", audio / "tone.wav", audio / "tone.wav", "-n", "tone", "-k", 3, "-o", out,
            "--online", "--block-seconds", "0.5", "--passes", 2)
    assert r.exit_code == 0, r.output
    assert "learned online from 2 clips (3.0 s)" in r.stdout
    d = Dictionary.load(out)
    assert d.n_atoms == 3 and d.names == ("tone",) and d.sr == SR
    assert d.training["algorithm"] == "online" and d.training["passes"] == 2
    assert [c["name"] for c in d.clips] == ["tone.wav", "tone.wav"]
    r = run("learn", audio / "tone.wav", "-n", "tone", "-k", 3, "-o", out, "--online", "--json",
            "--force")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["k"] == 3


def test_learn_online_bad_inputs_are_one_line_errors(audio, tmp_path):
    out = tmp_path / "d.npz"
    r = run("learn", tmp_path / "nope.wav", "-n", "x", "-k", 2, "-o", out, "--online")
    assert r.exit_code == 1
    one_error_line(r, "nope.wav")
    r = run("learn", audio / "tone.wav", "-n", "x", "-k", 5000, "-o", out, "--online")
    assert r.exit_code == 1
    one_error_line(r, "-k 5000")
    silent = tmp_path / "silent.wav"
    import soundfile as sf

    sf.write(str(silent), np.zeros(SR, dtype=np.float32), SR)
    r = run("learn", silent, "-n", "x", "-k", 2, "-o", out, "--online")
    assert r.exit_code == 1
    one_error_line(r, "silent")
    assert not out.exists()
    r = run("learn", audio / "tone.wav", "-n", "x", "-k", 2, "-o", out, "--online",
            "--block-seconds", "0")
    assert r.exit_code == 2  # usage error from the option's range


def test_library_messages_name_the_flags_the_user_typed() -> None:
    from nmfsep.cli import _as_flags

    assert _as_flags("a.wav: exists; pass force=True to overwrite") == (
        "a.wav: exists; pass --force to overwrite")
    assert _as_flags("n_components=9 is more than 5 frames; use n_components <= 5") == (
        "-k 9 is more than 5 frames; use -k <= 5")
    assert _as_flags("random_state must be ...; n_free_x and my_max_iter stay") == (
        "--seed must be ...; n_free_x and my_max_iter stay")


def test_learn_without_k_and_with_pitch_shifts(tmp_path):
    from nmfsep.dictionary import DEFAULT_ATOMS_PER_SOURCE, Dictionary

    sr = 8000
    t = np.arange(3 * sr) / sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t * (1 + 0.1 * (t % 1)))
    sf.write(tmp_path / "a.wav", y.astype(np.float32), sr)
    r = runner.invoke(app, ["learn", str(tmp_path / "a.wav"), "-n", "a", "-o",
                            str(tmp_path / "a.npz"), "--pitch-shifts", "-1,1", "--max-iter", "5"])
    assert r.exit_code == 0, r.output
    d = Dictionary.load(tmp_path / "a.npz")
    assert d.n_atoms - d.n_harmonic == DEFAULT_ATOMS_PER_SOURCE and d.n_harmonic > 0
    assert f"{d.n_atoms} atoms ({d.n_harmonic} harmonic) for 'a'" in r.output
    assert d.training["augmentation"]["pitch_shifts"] == [-1.0, 1.0]
    r = runner.invoke(app, ["learn", str(tmp_path / "a.wav"), "-n", "a", "-o",
                            str(tmp_path / "b.npz"), "--pitch-shifts", "up"])
    assert r.exit_code == 2 and "--pitch-shifts" in r.output
    r = runner.invoke(app, ["learn", str(tmp_path / "a.wav"), "-n", "a", "-o",
                            str(tmp_path / "b.npz"), "--pitch-shifts", "0.5,0.5", "-k", "4"])
    assert r.exit_code == 2 and "distinct non-zero semitones" in r.output  # a bad value: usage
    for bad in ("nan", "13", "1,1"):
        r = runner.invoke(app, ["learn", str(tmp_path / "a.wav"), "-n", "a", "-o",
                                str(tmp_path / "b.npz"), "--pitch-shifts", bad])
        assert r.exit_code == 2 and "--pitch-shifts" in r.output, (bad, r.output)
    assert not (tmp_path / "b.npz").exists()


def test_learn_validate_reports_the_held_out_fit(audio, tmp_path):
    r = run("learn", audio / "tone.wav", "-n", "tone", "-k", 2, "-o", tmp_path / "d.npz",
            "--validate", "--max-iter", 20)
    assert r.exit_code == 0, r.output
    assert "held-out fit" in r.stdout and " dB" in r.stdout
    info = run("info", tmp_path / "d.npz")
    assert "validation:    fit" in info.stdout and "held-back 20% of every clip" in info.stdout


def test_learn_validate_on_a_clip_too_short_to_split(tmp_path):
    """A 1-sample clip held back nothing: the message was about an array of shape (1, 0)."""
    sf.write(tmp_path / "one.wav", np.array([0.5], np.float32), 8000)
    r = run("learn", tmp_path / "one.wav", "-n", "x", "-k", 1, "-o", tmp_path / "d.npz",
            "--validate", "--max-iter", 5)
    assert r.exit_code == 1
    one_error_line(r, "too short to hold back 20%", "--validate")
    r = run("learn", tmp_path / "one.wav", "-n", "x", "-o", tmp_path / "d.npz", "--validate",
            "--online")
    assert r.exit_code == 1
    one_error_line(r, "--validate does not apply with --online")
    assert not (tmp_path / "d.npz").exists()


def test_separate_memory_budget_streams_and_says_so(audio, tmp_path):
    r = run("separate", audio / "mix.wav", "-k", "2", "--memory", "1M", "-o", tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert "streamed in 1 block(s): whole-file separation would need about" in r.stdout
    assert sorted(p.name for p in (tmp_path / "o" / "mix").iterdir()) == [
        "component_01.wav", "component_02.wav"]
    r = run("separate", audio / "mix.wav", "-k", "2", "--memory", "off", "-o", tmp_path / "p")
    assert r.exit_code == 0 and "streamed" not in r.stdout


def test_adapt_is_recorded_in_the_summary(audio, dicts, tmp_path):
    r = run("separate", audio / "mix.wav", "--dict", dicts / "tone.npz", "--dict",
            dicts / "noise.npz", "--adapt", "0.5", "-o", tmp_path, "--json", *FAST)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc[0]["settings"]["adapt"] == 0.5
    assert sorted(doc[0]["stems"]) == ["noise", "tone"]
    named = run("separate", audio / "mix.wav", "--sources", "piano,other", "--adapt", "2",
                "-o", tmp_path / "named", "--json", *FAST)  # built-in atoms adapt too
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)[0]["settings"]["adapt"] == 2.0


@pytest.mark.parametrize(("extra", "needle"), [
    (["-k", "2", "--adapt", "1"], "--adapt needs --dict"),
    (["--dict", "TONE", "--stream", "--adapt", "1"], "no --stream"),
    (["--dict", "TONE", "--adapt", "-1"], "--adapt"),
])
def test_adapt_usage_errors(audio, dicts, tmp_path, extra, needle):
    extra = [str(dicts / "tone.npz") if e == "TONE" else e for e in extra]
    r = run("separate", audio / "mix.wav", *extra, "-o", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert not (tmp_path / "out").exists()
