"""Training augmentation on clips that already play every note: the bundled material.

The held-out benchmark (``bench_heldout.py``) chose the default augmentation (pitch shifts
±1, ±2 semitones, :data:`nmfsep.dictionary.DEFAULT_PITCH_SHIFTS`) on training clips that
play other notes than the mixtures. The bundled training clips (``audio_samples/train``)
start with a sweep over every note their instrument plays in the mixtures; this script
measures what the augmentation costs there: BSS Eval SDR of every source of the five
bundled supervised tasks, dictionaries learned without (``pitch_shifts=()``) and with the
default. About 3 minutes on 2 cores::

    python benchmarks/bench_augmentation.py
    python benchmarks/bench_augmentation.py --timing   # learn time of 3 x 10 s clips
    python benchmarks/bench_augmentation.py --timing-relearn   # relearn="on" vs one pass
    python benchmarks/bench_augmentation.py --separate '{"adapt": 1}'

``--separate JSON`` instead compares ``separate`` with nmfsep's defaults and with the
keyword arguments ``JSON``, on the same dictionaries (learned with the defaults): an
in-family check of a separation setting chosen on the held-out benchmark.

``--timing`` times ``learn_dictionary`` on three 10 s clips (two of flute, one of piano,
22.05 kHz mono, default 48 atoms) without augmentation, with the default and with "auto",
with harmonic atoms off and on (the default) (issue 13's "learn under 20 s" check), the
size of the dictionary files, and the time of separating the bundled duo with and
without the harmonic atoms.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nmfsep import io  # noqa: E402
from nmfsep.bsseval import bss_eval_sources  # noqa: E402
from nmfsep.dictionary import learn_dictionary  # noqa: E402
from nmfsep.separate import separate  # noqa: E402

S = ROOT / "audio_samples"
TASKS = {"piano_flute": ["piano", "flute"], "drums_bass": ["drums", "bass"],
         "trio": ["piano", "flute", "bass"], "speech_piano": ["speech", "piano"],
         "piano_flute_44k": ["piano", "flute"]}


def sdr(task: str, names: list[str], sep: dict | None = None, **learn: object) -> np.ndarray:
    y, sr = io.load(S / task / "mix.flac")
    rate = 16000 if task == "speech_piano" else None  # learn at the mixture's rate
    dicts = [learn_dictionary([io.load(S / "train" / f"{n}.flac")], n, sr=rate, **learn)
             for n in names]
    if sep is not None:  # (defaults, with sep) on the same dictionaries
        return np.stack([_sdr(task, names, y, sr, dicts, kw) for kw in ({}, sep)])
    return _sdr(task, names, y, sr, dicts, {})


def _sdr(task: str, names: list[str], y: np.ndarray, sr: int, dicts: list,
         kw: dict) -> np.ndarray:
    res = separate(y, sr, dictionaries=dicts, **kw)
    refs = np.stack([io.load(S / task / f"{n}.flac")[0].mean(0) for n in names])
    ests = np.stack([res.stems[n].mean(0) for n in names])
    return bss_eval_sources(refs, ests)[0]


def timing() -> None:
    y, sr = io.load(S / "train" / "flute.flac")
    piano = io.load(S / "train" / "piano.flac")[0]
    clips = [(y[:, :10 * sr], sr), (y[:, 10 * sr : 20 * sr], sr), (piano[:, :10 * sr], sr)]
    for label, learn in (("none", {"pitch_shifts": ()}), ("default", {}),
                         ("auto", {"pitch_shifts": "auto"}),
                         ("harm-off", {"harmonic": "off"}), ("harm-on", {"harmonic": "auto"})):
        start = time.perf_counter()
        d = learn_dictionary(clips, "x", **learn)
        print(f"{label:8s} {time.perf_counter() - start:6.2f} s", flush=True)
        if label in ("default", "harm-on"):
            path = d.save(Path(tempfile.mkdtemp()) / "d.npz")
            print(f"{label} dictionary file: {os.path.getsize(path)} bytes, atoms {d.atoms.shape}")
    separation_timing()


def separation_timing(repeat: int = 3) -> None:
    """Time of separating the bundled piano + flute duo with and without harmonic atoms.

    One pass each (``relearn="off"``): the cost of the harmonic atoms themselves.
    """
    dicts = [learn_dictionary([io.load(S / "train" / f"{n}.flac")], n) for n in ("piano", "flute")]
    mix, sr = io.load(S / "piano_flute" / "mix.flac")
    times: dict[str, list[float]] = {"on": [], "off": []}
    iters = {}
    for _ in range(repeat):  # alternate, so drifting machine load hits both alike
        for use in times:
            start = time.perf_counter()
            # one pass each: harmonic "on" would otherwise also relearn (relearn "auto")
            iters[use] = separate(mix, sr, dictionaries=dicts, harmonic=use,
                                  relearn="off").n_iter
            times[use].append(time.perf_counter() - start)
    on, off = (float(np.median(times[u])) for u in ("on", "off"))
    print(f"separate piano_flute (8 s), atoms {sum(d.n_atoms for d in dicts)} vs "
          f"{sum(d.n_atoms - d.n_harmonic for d in dicts)}: with harmonic atoms {on:.2f} s "
          f"({iters['on']} iterations), without {off:.2f} s ({iters['off']}), ratio "
          f"{on / off:.2f}x (median of {repeat})")


def relearn_timing(repeat: int = 3) -> None:
    """Time of ``relearn="on"`` against one pass (harmonic atoms kept in both), same process.

    The bundled piano + flute duos (8 s at 22.05 kHz mono, 44.1 kHz stereo) with the
    default dictionaries learned from ``audio_samples/train``.
    """
    dicts = [learn_dictionary([io.load(S / "train" / f"{n}.flac")], n) for n in ("piano", "flute")]
    for task in ("piano_flute", "piano_flute_44k"):
        mix, sr = io.load(S / task / "mix.flac")
        times: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(repeat):  # alternate, so drifting machine load hits both alike
            for use in times:
                start = time.perf_counter()
                separate(mix, sr, dictionaries=dicts, harmonic="on", relearn=use)
                times[use].append(time.perf_counter() - start)
        on, off = (float(np.median(times[u])) for u in ("on", "off"))
        print(f"separate {task}: relearn on {on:.2f} s, one pass {off:.2f} s, ratio "
              f"{on / off:.2f}x (median of {repeat})", flush=True)


def compare(sep: dict) -> None:
    """Print the SDR of every task with the default ``separate`` and with ``sep``."""
    print(f"| task | sources | SDR defaults | SDR {json.dumps(sep)} | median change |")
    print("|---|---|---|---|---|")
    for task, names in TASKS.items():
        base, cand = sdr(task, names, sep)
        print(f"| {task} | {', '.join(names)} | {np.round(base, 2).tolist()} | "
              f"{np.round(cand, 2).tolist()} | "
              f"{float(np.median(cand) - np.median(base)):+.2f} dB |", flush=True)


def main() -> None:
    if "--timing" in sys.argv[1:]:
        timing()
        return
    if "--timing-relearn" in sys.argv[1:]:
        relearn_timing()
        return
    if "--separate" in sys.argv[1:]:
        compare(json.loads(sys.argv[sys.argv.index("--separate") + 1]))
        return
    print("| task | sources | SDR without | SDR default (±1, ±2) | median change |")
    print("|---|---|---|---|---|")
    for task, names in TASKS.items():
        plain, default = sdr(task, names, pitch_shifts=()), sdr(task, names)
        print(f"| {task} | {', '.join(names)} | {np.round(plain, 2).tolist()} | "
              f"{np.round(default, 2).tolist()} | "
              f"{float(np.median(default) - np.median(plain)):+.2f} dB |", flush=True)


if __name__ == "__main__":
    main()
