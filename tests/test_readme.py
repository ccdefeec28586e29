"""Every command of README.md and every example of ``nmfsep --help`` runs as written.

Each ``bash`` block of the README runs in a fresh temporary folder, its commands in
order, each through ``bash`` (globs, ``;`` and comments as a user's shell reads them),
with ``nmfsep`` this checkout's ``python -m nmfsep``. The README's placeholder files
are made there, mechanically, from the bundled samples (:data:`PLACEHOLDERS`);
``audio_samples/`` links to the repository's. The examples of each command's
``--help`` then run in order in a fresh folder of their own (``MIX`` read as
``mix.wav``); a file an example reads that is missing there (a dictionary, a stem)
is copied from the folder the README's command-line block left. Segments of a line
joined by ``&&`` that install nmfsep, run the test suite or run a benchmark are not
run (:data:`NOT_RUN`, with why); every other segment must be an ``nmfsep`` command,
so a new README command cannot be skipped silently. The README's Python block runs
last, in the command-line block's folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "audio_samples"

#: Placeholder file -> (bundled sample, seconds kept: None for all), written as float WAV.
#: The training clips are cut to 8 s: the commands run as written, and learning (pitch-
#: shifted copies, harmonic atoms) on the whole 22-26 s clips took most of this test's time.
PLACEHOLDERS = {
    "mix.wav": ("piano_flute/mix.flac", None),
    "piano.wav": ("piano_flute/piano.flac", None),
    "flute.wav": ("piano_flute/flute.flac", None),
    "piano/train.wav": ("train/piano.flac", (0, 8)),  # for piano/*.wav
    "flute/train.wav": ("train/flute.flac", (0, 8)),  # for flute/*.wav
    "piano1.wav": ("train/piano.flac", (0, 4)),  # nmfsep learn piano1.wav piano2.wav
    "piano2.wav": ("train/piano.flac", (4, 8)),
}
#: Words in the ``--help`` examples that stand for a file -> the placeholder used.
HELP_WORDS = {"MIX": "mix.wav"}
#: Command prefixes that are not run, and why.
NOT_RUN = {
    "python3 -m venv": "creates the virtual environment (installation)",
    ". .venv/bin/activate": "installation",
    "pip install": "installation (needs the network)",
    "python -m pytest": "the test suite itself",
    "python benchmarks/": "measurements: minutes each, some need fluidsynth",
    "env -u OPENBLAS_CORETYPE": "a benchmark (see python benchmarks/)",
}


def readme_segments() -> list[str]:
    """The README's shell commands, a ``&&``-joined line split into its segments."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    segments = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.lstrip().startswith("#"):  # a comment line
                continue
            segments += [s.strip() for s in line.split("&&") if s.strip()]
    return segments


def _make_placeholders(folder: Path) -> None:
    for name, (sample, span) in PLACEHOLDERS.items():
        y, sr = sf.read(SAMPLES / sample, dtype="float32")
        if span is not None:
            y = y[int(span[0] * sr):int(span[1] * sr)]
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / name, y, sr, subtype="FLOAT")
    (folder / "audio_samples").symlink_to(SAMPLES)


def _bash(command: str, folder: Path) -> subprocess.CompletedProcess:
    shim = f'nmfsep() {{ "{sys.executable}" -m nmfsep "$@"; }}; set -e; '
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]), "NO_COLOR": "1"}
    return subprocess.run(["bash", "-c", shim + command], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)


def test_readme_lists_only_runnable_or_explained_commands():
    for seg in readme_segments():
        assert seg.startswith("nmfsep ") or any(seg.startswith(p) for p in NOT_RUN), seg
    assert len([s for s in readme_segments() if s.startswith("nmfsep ")]) >= 10


def readme_blocks() -> list[list[str]]:
    """The ``nmfsep`` commands of each bash block of the README, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        segs = [s.strip() for line in block.splitlines() if not line.lstrip().startswith("#")
                for s in line.split("&&")]
        blocks.append([s for s in segs if s.startswith("nmfsep ")])
    return [b for b in blocks if b]


def help_examples_by_command() -> list[list[str]]:
    """The examples of each help text that has some, in order."""
    import typer

    from nmfsep.cli import app

    def walk(cmd):
        yield cmd.help or ""
        for sub in getattr(cmd, "commands", {}).values():
            yield from walk(sub)

    out = []
    for text in walk(typer.main.get_command(app)):
        found = re.findall(r"\[bold\](nmfsep [^\[]*?)\[/\]", " ".join(text.split()))
        if found:
            out.append([" ".join(HELP_WORDS.get(w, w) for w in ex.split()) for ex in found])
    return out


def _run_all(commands: list[str], folder: Path, inputs_from: Path | None = None) -> None:
    for command in commands:
        if inputs_from is not None:
            words = shlex.split(command)
            for before, word in zip(["", *words], words, strict=False):
                src, dst = inputs_from / word, folder / word
                if before != "-o" and not dst.exists() and src.is_file():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, dst)
        r = _bash(command, folder)
        assert r.returncode == 0, f"{command}\n{r.stdout}\n{r.stderr}"


@pytest.mark.slow
def test_readme_and_help_commands_run_as_written(tmp_path):
    folders = []
    for i, block in enumerate(readme_blocks()):
        folders.append(tmp_path / f"readme{i}")
        folders[-1].mkdir()
        _make_placeholders(folders[-1])
        _run_all(block, folders[-1])
    assert len(folders) == 2  # the quick start, the command-line tour
    for i, examples in enumerate(help_examples_by_command()):
        folder = tmp_path / f"help{i}"
        folder.mkdir()
        _make_placeholders(folder)
        _run_all(examples, folder, inputs_from=folders[1])
    python = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    for block in python:
        r = subprocess.run([sys.executable, "-c", block], cwd=folders[1], capture_output=True,
                           text=True, timeout=600,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert r.returncode == 0, f"{block}\n{r.stderr}"
