"""Hostile and careless input: nothing lost, nothing blown up, one clear line every time.

What nmfsep promises (README, "What nmfsep promises"), tried as a hostile user would:
inputs are never modified or overwritten (compared as files: same path, symbolic or
hard link), outputs are complete or absent (also on SIGTERM, SIGHUP and a full disk),
sizes declared by files or arguments are bounded before anything is allocated, loading
a file never executes anything, and every mistake ends in one ``error:`` line with the
right exit status (2 for a bad option value, 1 for a bad input). The fuzzer at the end
feeds random dictionary and model files to the loaders in a subprocess under a memory
cap and a time limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as stdio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _audio import CFG, SR, notes
from _cli import one_error_line, run

from nmfsep import _npz, cli, files, io
from nmfsep.dictionary import Dictionary, learn_dictionary
from nmfsep.exceptions import AudioFormatError, DictionaryError, OutputError, ParameterError
from nmfsep.model import load_model
from nmfsep.nmf import nmf
from nmfsep.separate import separate

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--max-iter", "5"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def usage_error(result, *needles: str) -> None:
    """Bad usage: exit status 2 and one ``error:`` line naming the needles and the help."""
    assert result.exit_code == 2, result.output
    one_error_line(result, *needles, " -h)")


@pytest.mark.parametrize("args, needle", [
    (["separate", "{mix}", "-k", "0"], "'-k'"),
    (["separate", "{mix}", "--sources", "0"], "'--sources'"),
    (["separate", "{mix}", "--sources", "2.5"], "2.5 is not a whole number of sources"),
    (["separate", "{mix}", "--tol", "-1"], "'--tol'"),
    (["separate", "{mix}", "--tol", "nan"], "(got 'nan')"),
    (["separate", "{mix}", "--no-such-option"], "--no-such-option"),
    (["bogus"], "bogus"),
    (["learn", "{mix}", "-n", "../evil", "-k", "2", "-o", "x.npz"], "'-n'"),
    (["rank", "{mix}", "-k", "abc"], "'-k'"),
    (["eval", "-r", "{mix}"], "-e"),
], ids=["k0", "sources0", "sources2.5", "tol", "tol-nan", "option", "command", "name",
        "rank-k", "eval"])
def test_bad_usage_is_one_error_line(mix, args, needle) -> None:
    # Typer's own checks too (ranges, types, unknown options), not a box of lines
    result = run(*(a.format(mix=mix) for a in args))
    usage_error(result, needle)


@pytest.mark.parametrize("args, needle", [
    (["separate", "{mix}", "-k", "2", "-o", ""], "-o/--out-dir was given an empty value"),
    (["separate", "{mix}", "--dict", ""], "--dict"),
    (["separate", "", "-k", "2"], "an argument was given an empty value"),
    (["learn", "{mix}", "-n", "piano", "--output="], "-o/--output was given an empty value"),
    (["separate", "{mix}", "--report="], "--report"),
], ids=["out-dir", "dict", "positional", "output=", "report="])
def test_an_empty_value_is_refused_before_anything_is_written(mix, tmp_path, monkeypatch, args,
                                                            needle) -> None:
    # an unset shell variable (-o $OUT): Path("") is the current folder, and stems
    # would land there
    monkeypatch.chdir(tmp_path)
    result = run(*(a.format(mix=mix) for a in args))
    usage_error(result, needle, "was given an empty value", "unset shell variable")
    assert list(tmp_path.iterdir()) == []


def digest(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Hidden temporaries (``.*.partial.*``, ``.*.tmp``) anywhere under ``folder``."""
    if not folder.exists():
        return []
    return [str(p) for p in folder.rglob(".*") if "partial" in p.name or p.suffix == ".tmp"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def mix(work) -> Path:
    y = 0.3 * notes([220, 330, 440, 550], 1.0, sr=SR) + 0.2 * notes([880, 990], 1.0, sr=SR)
    p = work / "mix.wav"
    sf.write(p, np.stack([y, 0.8 * y], axis=1).astype(np.float32), SR, subtype="FLOAT")
    return p


@pytest.fixture(scope="module")
def dict_file(work) -> Path:
    y = notes([220, 330, 440], 1.0, sr=SR).astype(np.float32)
    d = learn_dictionary([(y[None], SR)], "low", 4, stft=CFG, max_iter=20, context_frames=1)
    return d.save(work / "low.npz")


@pytest.fixture(scope="module")
def model_file(work, mix) -> Path:
    out = work / "model-out"
    files.separate_file(mix, out, n_components=2, stft=CFG, max_iter=5, save_model=True)
    return out / "mix" / "model.npz"


def members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def rewrite(src: Path, dst: Path, *, meta: dict | None = None, **arrays) -> Path:
    """Copy an nmfsep ``.npz`` with some members replaced (``meta`` updated as JSON)."""
    a = members(src)
    if meta is not None:
        m = json.loads(str(a["meta"]))
        m.update(meta)
        a["meta"] = np.array(json.dumps(m))
    a.update(arrays)
    with open(dst, "wb") as fh:
        np.savez(fh, **a)
    return dst


# --------------------------------------------------------------------------- 1. data loss


def _link(kind: str, target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        link.symlink_to(target.resolve())
    elif kind == "hardlink":
        os.link(target, link)


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("kind", ["same-path", "symlink", "hardlink"])
def test_separate_refuses_to_overwrite_its_input(tmp_path, mix, kind, force) -> None:
    # the mixture is OUT/x/component_01/component_01.wav (or a link to it there)
    stem_dir = tmp_path / "OUT" / "x" / "component_01"
    stem_dir.mkdir(parents=True)
    src = stem_dir / "component_01.wav"
    src.write_bytes(mix.read_bytes())
    given = src
    if kind != "same-path":
        given = tmp_path / "elsewhere" / "component_01.wav"
        _link(kind, src, given)
    before = digest(src)
    result = run("separate", given, "-k", 2, "-o", tmp_path / "OUT" / "x",
                 *(["--force"] if force else []), *FAST)
    assert result.exit_code == 1, result.output
    one_error_line(result, "is the input", "--force")
    assert digest(src) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("mode", ["whole", "stream", "batch"])
@pytest.mark.parametrize("target", ["model.npz", "low.wav"])
def test_separate_refuses_to_overwrite_a_dictionary(tmp_path, mix, dict_file, target,
                                                   mode) -> None:
    # a --dict file where a stem (or the saved model) would go: refused, --force or not
    stem_dir = tmp_path / "OUT" / "mix"
    stem_dir.mkdir(parents=True)
    d = stem_dir / target
    d.write_bytes(dict_file.read_bytes())
    before = digest(d)
    extra = {"whole": ["--save-model"], "stream": ["--stream"],
             "batch": ["--save-model", "--jobs", 1]}[mode]
    if mode == "stream" and target == "model.npz":
        pytest.skip("a stream saves no model")
    result = run("separate", mix, "-d", d, "--free", 2, "-o", tmp_path / "OUT", "--force",
                 "--harmonic", "off", "--relearn", "off", *extra, *FAST)
    assert result.exit_code == 1, result.output
    assert "is the input" in result.output
    assert "Traceback" not in result.output
    assert digest(d) == before


def test_api_separate_file_refuses_to_overwrite_a_dictionary(tmp_path, mix, dict_file) -> None:
    d = tmp_path / "OUT" / "mix" / "low.wav"
    d.parent.mkdir(parents=True)
    d.write_bytes(dict_file.read_bytes())
    before = digest(d)
    for kw in ({"dictionaries": [d]},
               {"dictionaries": [Dictionary.load(d)], "other_inputs": [d]}):
        with pytest.raises(OutputError, match="is the input"):
            files.separate_file(mix, tmp_path / "OUT", force=True, n_free=2, max_iter=5,
                                harmonic="off", relearn="off", **kw)
    assert digest(d) == before


def test_api_transaction_refuses_an_input(tmp_path, mix) -> None:
    target = tmp_path / "m.wav"
    os.link(mix, target)
    with pytest.raises(OutputError, match="is the input"):
        io.OutputTransaction(tmp_path, [target], force=True, inputs=[mix])
    with pytest.raises(OutputError, match="is the input"), io.atomic_output(
        target, force=True, inputs=[mix]
    ):
        pass
    io.check_not_input(tmp_path / "new.wav", [mix])  # a new file is never an input


def test_learn_refuses_to_overwrite_a_clip(tmp_path, mix) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(mix.read_bytes())
    before = digest(clip)
    result = run("learn", clip, "-n", "p", "-k", 2, "-o", clip, "--force", *FAST)
    assert result.exit_code == 1
    one_error_line(result, "is the input")
    assert digest(clip) == before


@pytest.mark.parametrize("which", ["reference", "estimate", "mixture"])
def test_eval_csv_refuses_an_input(tmp_path, mix, which) -> None:
    ref, est, m = (tmp_path / f"{n}.wav" for n in ("ref", "est", "m"))
    for p in (ref, est, m):
        p.write_bytes(mix.read_bytes())
    target = {"reference": ref, "estimate": est, "mixture": m}[which]
    before = digest(target)
    result = run("eval", "-r", ref, "-e", est, "-m", m, "--csv", target, "--force")
    assert result.exit_code == 1
    one_error_line(result, "is the input")
    assert digest(target) == before


def test_plot_refuses_to_overwrite_its_source(tmp_path, dict_file) -> None:
    src = tmp_path / "d.npz"
    src.write_bytes(dict_file.read_bytes())
    (tmp_path / "fig.png").symlink_to(src)
    result = run("plot", src, "-o", tmp_path / "fig.png", "--force")
    assert result.exit_code == 1
    one_error_line(result, "is the input")
    Dictionary.load(src)


def test_rank_plot_refuses_a_clip(tmp_path, mix) -> None:
    clip = tmp_path / "c.wav"
    clip.write_bytes(mix.read_bytes())
    os.link(clip, tmp_path / "r.png")
    result = run("rank", clip, "-k", "1,2", "--plot", tmp_path / "r.png", "--force")
    assert result.exit_code == 1
    one_error_line(result, "is the input")


def test_inputs_are_never_modified(tmp_path, mix, dict_file) -> None:
    stamps = {p: (digest(p), p.stat().st_mtime_ns) for p in (mix, dict_file)}
    files.separate_file(mix, tmp_path, dictionaries=[dict_file], max_iter=3)
    assert stamps == {p: (digest(p), p.stat().st_mtime_ns) for p in (mix, dict_file)}


# --------------------------------------------------------------------------- 2. sizes


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({"sample_rate": 10**9}, "sample_rate"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": -8000}, "sample_rate"),
        ({"sample_rate": 8000.5}, "sample_rate"),
        ({"sample_rate": "8000"}, "sample_rate"),
        ({"n_fft": 2**27}, "n_fft"),
        ({"n_fft": 2**34}, "n_fft"),
        ({"n_fft": -1}, "n_fft"),
        ({"n_fft": "1024"}, "n_fft"),
        ({"hop_length": 2**40}, "hop_length"),
        ({"win_length": 2**40}, "win_length"),
        ({"context_frames": 10**9}, "context"),
        ({"format_version": 99}, "format_version"),
        ({"kind": "model"}, "model"),
        ({"power": float("inf")}, "Infinity"),
        ({"power": -1}, "power"),
        ({"beta": "kl"}, "beta"),
    ],
)
def test_dictionary_meta_sizes_bounded(tmp_path, dict_file, meta, needle) -> None:
    bad = rewrite(dict_file, tmp_path / "bad.npz", meta=meta)
    with _allocates_at_most(64 << 20), pytest.raises(DictionaryError, match=needle):
        Dictionary.load(bad)


@contextlib.contextmanager
def _allocates_at_most(limit: int) -> Iterator[None]:
    """Fail if the block's peak traced allocation (Python and numpy) exceeds ``limit`` bytes.

    Sizes are checked before anything is allocated; a timer would be a noisy proxy.
    """
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= limit, f"peak allocation {peak / 2**20:.0f} MiB"


def _npy_header_only(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    buf = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + b"\0" * 64


@pytest.mark.parametrize("shape", [(2**20, 2**20), (10**12,), (2**31, 2**31, 2)])
@pytest.mark.parametrize("loader", [Dictionary.load, load_model], ids=["dictionary", "model"])
def test_npy_header_declaring_terabytes(tmp_path, dict_file, shape, loader) -> None:
    p = tmp_path / "huge.npz"
    with zipfile.ZipFile(p, "w") as zf:
        for name in ("atoms", "labels", "meta", "W", "H", "loss_history"):
            zf.writestr(name + ".npy", _npy_header_only(shape))
    with pytest.raises(DictionaryError, match="declares shape|corrupt"):
        loader(p)


def test_zip_bomb_member_refused_from_directory(tmp_path, dict_file, monkeypatch) -> None:
    # the real floor is 256 MiB: lower it so that the test inflates nothing big
    monkeypatch.setattr(_npz, "_MIN_ALLOWED_BYTES", 1 << 20)
    p = tmp_path / "bomb.npz"
    a = members(dict_file)
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for k, v in a.items():
            buf = stdio.BytesIO()
            np.lib.format.write_array(buf, v)
            zf.writestr(k + ".npy", buf.getvalue())
        zf.writestr("padding.npy", b"\0" * (40 << 20))  # 40 MB of zeros: ~40 kB compressed
    assert p.stat().st_size < 200_000
    with pytest.raises(DictionaryError, match="inflate"):
        Dictionary.load(p)


def test_atoms_near_float32_max_refused(tmp_path, dict_file) -> None:
    a = members(dict_file)["atoms"]
    bad = rewrite(dict_file, tmp_path / "big.npz", meta={"normalization": "none"},
                  atoms=np.full_like(a, 1e38))
    with pytest.raises(DictionaryError, match="overflow"):
        Dictionary.load(bad)


@pytest.mark.parametrize("flag", ["-k", "--sources", "--free"])
def test_huge_counts_are_usage_errors(mix, dict_file, flag) -> None:
    extra = ["--dict", dict_file] if flag == "--free" else []
    with _allocates_at_most(64 << 20):
        result = run("separate", mix, flag, 100_000_000, *extra, "-o", "unused-out")
    usage_error(result, flag)
    assert not Path("unused-out").exists()


@pytest.mark.parametrize("key", ["n_components", "n_sources"])
def test_huge_counts_api(key) -> None:
    y = np.zeros((1, 4000), np.float32)
    with _allocates_at_most(64 << 20), pytest.raises(ParameterError, match=key):
        separate(y, SR, **{key: 100_000_000})


def test_learn_huge_k_is_usage(mix) -> None:
    usage_error(run("learn", mix, "-n", "p", "-k", 10**8, "-o", "x.npz"), "-k")


def _tone(n: int, channels: int = 1) -> np.ndarray:
    t = np.arange(n) / SR
    y = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < t[-1] / 2) + 0.2 * np.sin(2 * np.pi * 660 * t)
    return np.repeat(y[None], channels, axis=0).astype(np.float32)


def test_soundfile_layout_refused_without_allocating() -> None:
    y = _tone(5 * SR, 2).T  # (samples, channels): 40 000 "channels" of 2 samples
    with pytest.raises(ParameterError, match=r"y\.T"):
        separate(y, SR, n_components=2)


def test_too_many_channels_refused() -> None:
    with pytest.raises(ParameterError, match="at most 64 channels"):
        separate(np.zeros((65, 20_000), np.float32), SR, n_components=2)


@pytest.mark.parametrize("as_list", [False, True], ids=["ndarray", "list"])
def test_one_d_mono_gives_one_d_stems(as_list) -> None:
    y = _tone(SR)[0]
    res = separate(y.tolist() if as_list else y, SR, n_components=2, stft=CFG, max_iter=10)
    for stem in res.stems.values():
        assert stem.shape == y.shape
    np.testing.assert_allclose(sum(res.stems.values()), y, atol=1e-5)


def test_memory_error_is_one_line(mix, monkeypatch) -> None:
    def boom(*a, **k):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (10**6, 10**6)")

    monkeypatch.setattr(files, "analyse", boom)
    result = run("separate", mix, "-k", 2, "-o", "unused-out", *FAST)
    assert result.exit_code == 1
    one_error_line(result, "out of memory", "Unable to allocate")


# --------------------------------------------------------------------------- 3. signals


def _long_mix(path: Path, seconds: float = 20.0) -> Path:
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal((int(seconds * 22050), 2))).astype(np.float32),
             22050, subtype="FLOAT")
    return path


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_signal_during_factorisation_leaves_nothing(tmp_path, signame) -> None:
    src = _long_mix(tmp_path / "long.wav")
    out = tmp_path / "OUT"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nmfsep", "separate", str(src), "-k", "4", "--max-iter",
         "100000", "--tol", "0", "-o", str(out), "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while not (out / "long").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the factorisation
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert f"stopped by {signame}" in err and "Traceback" not in err
    assert not out.exists() or not any(out.rglob("*"))


def _importing_numpy(pid: int) -> bool:
    """Tell whether process ``pid`` has loaded numpy's core (so it is importing nmfsep)."""
    with contextlib.suppress(OSError):
        return "_multiarray_umath" in Path(f"/proc/{pid}/maps").read_text()
    return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("entry", ["-m", "script"])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_while_the_command_line_imports(tmp_path, signame, entry) -> None:
    """A signal during ``import nmfsep`` (before main) stops as one during a run does."""
    script = Path(sys.executable).with_name("nmfsep")
    if entry == "script" and not script.exists():
        pytest.skip("the nmfsep console script is not installed next to this python")
    src, out = _long_mix(tmp_path / "long.wav", seconds=1.0), tmp_path / "OUT"
    head = [sys.executable, "-m", "nmfsep"] if entry == "-m" else [str(script)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    # signals as in a terminal: a runner started as a background job (a non-interactive
    # shell's `&`) passes SIGINT on ignored, one started under nohup SIGHUP, and nmfsep
    # keeps an ignored signal ignored (as nohup asks), which this test does not check
    def default_signals() -> None:
        for sig in (signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)

    proc = subprocess.Popen([*head, "separate", str(src), "-k", "2", "-o", str(out), "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    deadline = time.monotonic() + 20
    while not _importing_numpy(proc.pid) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    if signame == "SIGINT":  # as Ctrl-C during a run: status 130, nothing said
        assert proc.returncode == 130, err
    else:
        assert proc.returncode == 128 + getattr(signal, signame), err
        assert f"stopped by {signame}" in err
    assert not out.exists()


def test_sigterm_to_a_batch_parent_leaves_nothing(tmp_path) -> None:
    """The killed workers' folders and temporaries are removed by the parent."""
    srcs = [_long_mix(tmp_path / f"long{i}.wav") for i in range(2)]
    out = tmp_path / "OUT"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nmfsep", "separate", *map(str, srcs), "--jobs", "2", "-k",
         "4", "--max-iter", "100000", "--tol", "0", "-o", str(out), "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not all((out / f"long{i}").exists() for i in range(2)) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the factorisations
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert not out.exists(), sorted(out.rglob("*"))


def test_discard_interrupted_removes_temporaries_only(tmp_path) -> None:
    folder = tmp_path / "OUT" / "song"
    folder.mkdir(parents=True)
    temporaries = [".piano.0123abcd.partial.wav", ".flute.89abcdef.float.wav",
                   "..nmfsep-probe.00ff00ff.partial"]
    kept = ["piano.wav", ".hidden", ".piano.partial.wav", "notes.0123abcd.partial.txt"]
    for name in temporaries + kept:
        (folder / name).write_bytes(b"x")
    io.discard_interrupted(folder, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(kept)
    for name in kept:
        (folder / name).unlink()
    io.discard_interrupted(folder, tmp_path)  # empty now: removed up to the anchor
    assert not (tmp_path / "OUT").exists() and tmp_path.exists()


def test_sigterm_while_writing_leaves_nothing(tmp_path, mix, monkeypatch) -> None:
    real_write = io.WavWriter.write
    calls = []

    def write_then_signal(self, y):
        real_write(self, y)
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(io.WavWriter, "write", write_then_signal)
    with pytest.raises(KeyboardInterrupt), cli._signals_as_interrupt():
        files.separate_file(mix, tmp_path / "OUT", n_components=2, stft=CFG, max_iter=3)
    cli._received.clear()
    assert calls and not (tmp_path / "OUT").exists()


# --------------------------------------------------------------------------- 4. overflow


@pytest.mark.parametrize("scale", [3e38, 1e30, 1e20])
def test_nmf_huge_values_refused_up_front(scale) -> None:
    V = np.random.default_rng(0).random((50, 20)).astype(np.float32) * np.float32(scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParameterError, match="scale V"):
            nmf(V, 3, max_iter=5)


@pytest.mark.parametrize("beta", [50.0, -50.0, 30.0])
def test_nmf_extreme_beta_is_one_error_no_warning(beta) -> None:
    V = 10 * np.random.default_rng(0).random((60, 30)).astype(np.float32) + 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            res = nmf(V, 3, beta=beta, max_iter=30, random_state=0)
        except ParameterError as exc:
            assert "overflowed" in str(exc) and "beta" in str(exc)
        else:
            assert np.isfinite(res.W).all() and np.isfinite(res.H).all()


@pytest.mark.parametrize("beta", ["50", "-50", "1e300", "inf", "nan", "six"])
def test_cli_extreme_beta_is_usage(mix, beta) -> None:
    usage_error(run("separate", mix, "-k", 2, "--beta", beta, "-o", "unused-out"), "--beta")


# --------------------------------------------------------------------------- 5. exit codes


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--tol", "inf"], "--tol"),
        (["--tol", "nan"], "--tol"),
        (["--tol", "-1"], "--tol"),
        (["--seed", str(10**30)], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--max-iter", "0"], "--max-iter"),
        (["--max-iter", "x"], "--max-iter"),
        (["-k", "0"], "-k"),
        (["-k", "-3"], "-k"),
        (["-k", "2.5"], "-k"),
        (["--sources", "0"], "--sources"),
        (["--mask-power", "nan"], "--mask-power"),
        (["--mask-power", "-1"], "--mask-power"),
    ],
)
def test_bad_option_values_are_usage(mix, args, flag) -> None:
    k = [] if "-k" in args else ["-k", "2"]
    usage_error(run("separate", mix, *k, *args, "-o", "unused-out"), flag)


def test_non_finite_float_options_are_usage(tmp_path, mix, dict_file) -> None:
    """click's range check lets inf through: --adapt inf and --block-seconds inf were exit 1."""
    usage_error(run("separate", mix, "--dict", dict_file, "--adapt", "inf", "-o", tmp_path),
                "--adapt", "finite")
    usage_error(run("learn", mix, "-n", "x", "-o", tmp_path / "x.npz", "--online",
                    "--block-seconds", "inf"), "--block-seconds", "finite")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "command",
    [["separate", "-k", "2", "-o", "OUT"], ["separate", "-k", "2", "-o", "OUT", "--stream"],
     ["rank", "-k", "2"], ["learn", "-n", "x", "-k", "2", "-o", "x.npz"]],
    ids=["separate", "stream", "rank", "learn"],
)
def test_float_wav_with_huge_samples_exit_1(tmp_path, monkeypatch, command) -> None:
    """A sample near float32's maximum (a corrupt float WAV) gave NaN stems with exit 0."""
    y = 0.1 * np.sin(np.arange(SR // 2, dtype=np.float32))
    y[100] = 3e38
    sf.write(tmp_path / "huge.wav", y, SR, subtype="FLOAT")
    monkeypatch.chdir(tmp_path)
    result = run(command[0], "huge.wav", *command[1:], "--max-iter", "5")
    assert result.exit_code == 1, result.output
    one_error_line(result, "huge.wav", "as large as 3e+38", "re-export")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["huge.wav"]


def test_api_huge_samples_refused() -> None:
    y = np.zeros((1, SR // 2), dtype=np.float32)
    y[0, 7] = -1e30
    with pytest.raises(AudioFormatError, match="as large as 1e"):
        separate(y, SR, n_components=2, max_iter=2)
    with pytest.raises(ParameterError, match="clip 1: audio has samples as large as 1e"):
        learn_dictionary([(y, SR)], "x", 2, max_iter=2)
    ok = np.full((1, SR // 2), 1e6, dtype=np.float32)  # loud, but no overflow: accepted
    assert np.isfinite(separate(ok, SR, n_components=2, max_iter=2).stems["component_01"]).all()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"not audio at all\n" * 10, "cannot be read"),
        (b"RIFF\xff\xff\xff\xffWAVEfmt ", "cannot be read"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "cannot be read"),
    ],
    ids=["empty", "text", "truncated-wav", "png"],
)
def test_bad_input_files_exit_1(tmp_path, content, needle) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    result = run("separate", p, "-k", 2, "-o", tmp_path / "OUT", *FAST)
    assert result.exit_code == 1
    one_error_line(result, needle)
    assert not (tmp_path / "OUT").exists()


def test_missing_and_unreadable_inputs_exit_1(tmp_path, mix, monkeypatch) -> None:
    result = run("separate", tmp_path / "nope.wav", "-k", 2, "-o", tmp_path / "OUT")
    assert result.exit_code == 1
    one_error_line(result, "not found")
    locked = tmp_path / "locked.wav"
    locked.write_bytes(mix.read_bytes())
    locked.chmod(0)
    if IS_ROOT:  # root reads anything: pretend the file is not readable
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, *a, **k: Path(p).name != "locked.wav"
                            and real_access(p, *a, **k))
    result = run("separate", locked, "-k", 2, "-o", tmp_path / "OUT")
    locked.chmod(0o644)
    assert result.exit_code == 1
    one_error_line(result, "permission denied")


@pytest.mark.parametrize(
    "maker",
    ["missing", "text", "pickle", "model", "folder", "empty-zip", "truncated"],
)
def test_bad_dictionary_files_exit_1(tmp_path, mix, dict_file, model_file, maker) -> None:
    p = tmp_path / "d.npz"
    if maker == "text":
        p.write_text("hello")
    elif maker == "pickle":
        np.savez(p, atoms=np.array([object()], dtype=object), labels=np.array(["a"]),
                 meta=np.array("{}"))
    elif maker == "model":
        p.write_bytes(model_file.read_bytes())
    elif maker == "folder":
        p.mkdir()
    elif maker == "empty-zip":
        zipfile.ZipFile(p, "w").close()
    elif maker == "truncated":
        p.write_bytes(dict_file.read_bytes()[:300])
    result = run("separate", mix, "--dict", p, "-o", tmp_path / "OUT", *FAST)
    assert result.exit_code == 1, result.output
    one_error_line(result)
    assert not (tmp_path / "OUT").exists()


@pytest.mark.skipif(not IS_ROOT or sys.platform != "linux", reason="mounts a small tmpfs")
def test_full_disk_says_so_and_leaves_nothing(tmp_path, mix) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = run("separate", mix, "-k", 2, "-o", disk / "OUT", *FAST)
        assert result.exit_code == 1
        line = one_error_line(result, "no space left on")
        assert ".partial" not in line and "System error" not in line
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_read_only_folder(tmp_path, mix, monkeypatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if IS_ROOT:  # root writes anywhere: make the probe fail as a read-only folder does
            real = os.open

            def deny(path, *a, **k):
                if str(path).startswith(str(ro)):
                    raise PermissionError(13, "Permission denied", str(path))
                return real(path, *a, **k)

            monkeypatch.setattr(os, "open", deny)
        result = run("separate", mix, "-k", 2, "-o", ro, *FAST)
    finally:
        ro.chmod(0o755)
    assert result.exit_code == 1
    one_error_line(result, "Permission denied")
    assert list(ro.iterdir()) == []


def test_output_folder_is_a_file(tmp_path, mix) -> None:
    f = tmp_path / "OUT"
    f.write_text("x")
    usage_error(run("separate", mix, "-k", 2, "-o", f, *FAST), "-o", "is a file")
    assert f.read_text() == "x"


def test_concurrent_force_runs_stay_consistent(tmp_path, mix) -> None:
    out = tmp_path / "OUT"
    errors: list[BaseException] = []

    def go() -> None:
        try:
            files.separate_file(mix, out, n_components=2, stft=CFG, max_iter=5, force=True)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stems = sorted(p.name for p in (out / "mix").iterdir())
    assert stems == ["component_01.wav", "component_02.wav"]
    total = sum(io.load(out / "mix" / s)[0] for s in stems)
    np.testing.assert_allclose(total, io.load(mix)[0], atol=1e-4)


# --------------------------------------------------------------------------- 6. short clips


@pytest.mark.parametrize("n", [1, 10, 255])
def test_clip_shorter_than_a_frame_warns(n) -> None:
    y = _tone(max(n, 1))
    res = separate(y, SR, n_components=1, stft=CFG, max_iter=3)
    assert any(f"give at least {CFG.n_fft} samples" in w for w in res.warnings)


def test_clip_of_one_frame_does_not_warn() -> None:
    res = separate(_tone(CFG.n_fft), SR, n_components=1, stft=CFG, max_iter=3)
    assert not any("shorter than one STFT frame" in w for w in res.warnings)


def test_short_clip_cli_warns_and_succeeds(tmp_path) -> None:
    p = tmp_path / "tiny.wav"
    sf.write(p, _tone(10).T, SR, subtype="FLOAT")
    result = run("separate", p, "-k", 1, "-o", tmp_path / "OUT", *FAST)
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "the mixture is 10 samples long" in result.stderr


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "", ".hidden", "x\x00y", "a\nb", "..", "x" * 200]
)
def test_unsafe_source_names_refused(tmp_path, mix, name) -> None:
    result = run("learn", mix, "-n", name, "-k", 2, "-o", tmp_path / "d.npz", *FAST)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "d.npz").exists()


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
def test_any_mixture_file_name_gets_an_output_folder(tmp_path, mix, batch) -> None:
    # a hidden file and a 120-character name are normal mixtures
    hidden, long = tmp_path / ".take1.wav", tmp_path / ("y" * 120 + ".wav")
    for p in (hidden, long):
        p.write_bytes(mix.read_bytes())
    result = run("separate", hidden, long, "-k", 2, "-o", tmp_path / "OUT",
                 *(["--jobs", 1] if batch else []), *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "OUT").iterdir()) == ["take1", "y" * 120]


def test_crafted_labels_cannot_escape(tmp_path, dict_file) -> None:
    a = members(dict_file)["labels"]
    bad = rewrite(dict_file, tmp_path / "evil.npz", labels=np.array(["../../evil"] * len(a)))
    with pytest.raises(DictionaryError, match="unsafe"):
        Dictionary.load(bad)


# --------------------------------------------------------------------------- fuzzing the loaders

FUZZ_EXAMPLES = 300
FUZZ_SCRIPT = textwrap.dedent(
    r'''
    import json, os, resource, sys, zipfile, io as stdio
    resource.setrlimit(resource.RLIMIT_AS, (__MEM__, __MEM__))
    import numpy as np
    from hypothesis import HealthCheck, given, settings, strategies as st
    from nmfsep.dictionary import Dictionary
    from nmfsep.exceptions import NmfsepError
    from nmfsep.model import load_model

    VALID = [np.load(p, allow_pickle=False) for p in sys.argv[1:3]]
    VALID = [{k: z[k] for k in z.files} for z in VALID]
    folder = sys.argv[3]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-2**70, 2**70)
        | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
        max_leaves=10,
    )
    dtypes = st.sampled_from(["<f4", "<f8", "<i4", "<u1", "<U4", "|b1", "<c8", ">f4", "|V4"])
    shapes = st.lists(st.integers(0, 2**40), min_size=0, max_size=3).map(tuple)

    def npy(shape, dtype, data_len):
        buf = stdio.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": dtype, "fortran_order": False, "shape": shape})
        return buf.getvalue() + b"\x07" * data_len

    @st.composite
    def archives(draw):
        base = dict(VALID[draw(st.integers(0, 1))])
        meta = json.loads(str(base["meta"]))
        for key in draw(st.lists(st.sampled_from(sorted(meta) + ["kind", "x"]), max_size=3)):
            if draw(st.booleans()):
                meta.pop(key, None)
            else:
                meta[key] = draw(json_values)
        members = {k + ".npy": None for k in base}
        out = {}
        for name in members:
            key = name[:-4]
            how = draw(st.sampled_from(["keep", "keep", "header", "array", "drop", "bytes"]))
            if key == "meta" and how == "keep":
                out[name] = ("array", np.array(json.dumps(meta)))
            elif how == "keep":
                out[name] = ("array", base[key])
            elif how == "header":
                out[name] = ("raw", npy(draw(shapes), draw(dtypes), draw(st.integers(0, 64))))
            elif how == "array":
                shape = tuple(draw(st.lists(st.integers(0, 6), max_size=3)))
                dt = draw(st.sampled_from(["float32", "float64", "int8", "U3", "bool"]))
                out[name] = ("array", np.zeros(shape, dt) + (1 if dt != "U3" else ""))
            elif how == "bytes":
                out[name] = ("raw", draw(st.binary(max_size=200)))
        if draw(st.booleans()):
            # zipfile cuts a name at its first NUL (a leading one leaves no name at all)
            # and cannot write a lone surrogate (no UTF-8 for it: the fuzzer's own error)
            extra = draw(st.text(st.characters(exclude_characters="\x00",
                                               exclude_categories=["Cs"]),
                                 min_size=1, max_size=8)) + ".npy"
            out[extra] = ("raw", draw(st.binary(max_size=50)))
        return out, draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])), draw(
            st.integers(0, 400))

    @settings(max_examples=__N__, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(archives())
    def fuzz(case):
        content, compression, cut = case
        path = os.path.join(folder, "f.npz")
        buf = stdio.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, (kind, value) in content.items():
                if kind == "array":
                    b = stdio.BytesIO()
                    np.lib.format.write_array(b, value, allow_pickle=False)
                    value = b.getvalue()
                zf.writestr(name, value)
        data = buf.getvalue()
        if cut:
            data = data[: max(0, len(data) - cut)]
        with open(path, "wb") as fh:
            fh.write(data)
        for loader in (Dictionary.load, load_model):
            try:
                loader(path)
            except NmfsepError:
                pass

    fuzz()
    print("fuzzed", __N__)
    '''
)


def test_fuzz_dictionary_and_model_loaders(tmp_path, dict_file, model_file) -> None:
    """Random files end in a clean NmfsepError or a valid result: 2 GiB, 50 s at most."""
    pytest.importorskip("hypothesis")
    script = FUZZ_SCRIPT.replace("__MEM__", str(2 << 30)).replace("__N__", str(FUZZ_EXAMPLES))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_DISABLE_JIT": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(dict_file), str(model_file), str(tmp_path)],
        capture_output=True, text=True, timeout=50, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fuzzed" in proc.stdout
