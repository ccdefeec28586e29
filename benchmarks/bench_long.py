"""Peak memory and time of separate_stream() against whole-file separation on long mixtures.

The mixtures are audio_samples/piano_flute_44k/mix.flac (5 s, 44.1 kHz stereo) tiled
to 1, 10 and 60 minutes (16-bit WAV in a temporary folder). The dictionaries are
learned from audio_samples/train/piano.flac and flute.flac resampled to 44.1 kHz
(32 atoms each, KL, n_fft 4096 hop 1024: the 44.1 kHz defaults), so everything runs
at the mixture's rate.

Every case runs in a fresh subprocess that reports its peak resident memory
(VmHWM of /proc/self/status; ``ru_maxrss`` elsewhere) and the peak after the
imports and the dictionaries were loaded (``baseline``: a do-nothing run),
and the wall time of the separation (file in, stems written). The whole-file
case is ``separate_file`` (load everything, separate, write); the stream case is
``separate_stream`` with ``--block-seconds`` (default 30).

    nice python benchmarks/bench_long.py                      # 1, 10, 60 min
    nice python benchmarks/bench_long.py --minutes 1 5 20      # shorter
    nice python benchmarks/bench_long.py --whole-minutes 1 10  # whole-file cases
    nice python benchmarks/bench_long.py --json results/long.json
    nice python benchmarks/bench_long.py --sources 2 --minutes 10 60 --whole-minutes  # blind

Measured (2 shared cores, times +-30 %; tol 1e-4 stops every case at 40 iterations;
baseline RSS 52 MiB):

    mode    minutes  seconds  s/min  peak RSS MiB  blocks
    stream        1      2.6    2.6           410       2
    stream       10     18.4    1.8           452      20
    stream       60    108.7    1.8           452     120
    whole         1      2.0    2.0           378
    whole        10     18.0    1.8          2083

Blind (``--sources 2 --minutes 1 10 60 --whole-minutes 1``, baseline 42 MiB; the
60-minute run shared the 2 cores with a test suite, hence its time):

    mode    minutes  seconds  s/min  peak RSS MiB  blocks
    stream        1      4.3    4.3           347       2
    stream       10     23.5    2.3           358      20
    stream       60    505.5    8.4           345     120
    whole         1      4.5    4.5           367

The stream's memory is flat (about 400 MiB above the baseline with 30 s blocks) and its
time linear (1.8 s per minute); whole-file memory grows by about 190 MiB a minute (60
minutes would need about 11 GiB).

Those tables are of 32-atom dictionaries and the shared model. With today's default
dictionaries (48 atoms a source, 3-frame context, harmonic atoms: the first block fits
the mixture with and without them) and the stream's own gains model and spatial Wiener
filter (``--minutes 1 10 --whole-minutes``, stop 28; baseline 107 MiB):

    mode    minutes  seconds  s/min  peak RSS MiB  blocks
    stream        1     20.9   20.9           563      2
    stream       10    120.9   12.1           573     20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 44100


def make_dictionaries(folder: Path) -> list[Path]:
    from nmfsep import io
    from nmfsep.dictionary import DEFAULT_ATOMS_PER_SOURCE, learn_dictionary

    paths = []
    for name in ("piano", "flute"):
        p = folder / f"{name}.npz"
        if not p.exists():
            clip = io.load(ROOT / "audio_samples" / "train" / f"{name}.flac")
            d = learn_dictionary([clip], name, DEFAULT_ATOMS_PER_SOURCE, sr=SR, max_iter=200)
            d.save(p)
        paths.append(p)
    return paths


def make_mixture(folder: Path, minutes: float) -> Path:
    """Tile the 5 s clip to ``minutes`` and write it block by block (16-bit WAV)."""
    import soundfile as sf

    path = folder / f"mix_{minutes:g}min.wav"
    if path.exists():
        return path
    clip, sr = sf.read(ROOT / "audio_samples" / "piano_flute_44k" / "mix.flac",
                       dtype="float32", always_2d=True)
    assert sr == SR
    n = int(round(minutes * 60 * SR))
    tmp = path.with_suffix(".part.wav")
    with sf.SoundFile(tmp, "w", samplerate=SR, channels=clip.shape[1], subtype="PCM_16") as f:
        reps = max(1, (SR * 60) // clip.shape[0])  # about one minute per write
        chunk = np.tile(clip, (reps, 1))
        done = 0
        while done < n:
            part = chunk[: n - done]
            f.write(part)
            done += part.shape[0]
    os.replace(tmp, path)
    return path


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    /proc/self/status VmHWM where there is one: ``ru_maxrss`` survives ``exec`` on Linux,
    so a child would report its parent's peak if that was higher.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """Run one case in this (fresh) process; print a JSON line."""
    from nmfsep.dictionary import Dictionary
    from nmfsep.files import separate_file
    from nmfsep.stream import separate_stream

    dicts = [Dictionary.load(p) for p in args.dict or []]
    mode_kw = {"n_sources": args.sources} if args.sources else {"dictionaries": dicts}
    import librosa  # noqa: F401 - imported by both paths; part of the baseline
    import soundfile  # noqa: F401

    base = peak_rss_mib()
    out = Path(args.out)
    start = time.perf_counter()
    if args.mode == "stream":
        summary = separate_stream(args.mix, out, **mode_kw, force=True,
                                  block_seconds=args.block_seconds)
    elif args.mode == "whole":
        summary = separate_file(args.mix, out, **mode_kw, force=True)
    else:  # baseline: imports and dictionaries only
        summary = {"n_iter": 0, "duration": 0.0}
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    print(json.dumps({
        "mode": args.mode,
        "seconds": seconds,
        "peak_rss_mib": peak,
        "baseline_rss_mib": base,
        "n_iter": summary.get("n_iter"),
        "n_blocks": summary.get("n_blocks"),
        "duration": summary.get("duration"),
    }))


def run_case(mode: str, mix: Path, dicts: list[Path], out: Path, block_seconds: float,
             sources: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--mix", str(mix), "--out", str(out),
           "--block-seconds", str(block_seconds)]
    if sources:  # blind: no dictionaries
        cmd += ["--sources", str(sources)]
    for d in dicts if not sources else []:
        cmd += ["--dict", str(d)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"case {mode} {mix.name} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--whole-minutes", type=float, nargs="*", default=[1, 10])
    parser.add_argument("--block-seconds", type=float, default=30.0)
    parser.add_argument("--workdir", help="keep the generated files here (default: a temp dir)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--sources", type=int,
                        help="blind separation into this many sources instead of dictionaries")
    # child mode
    parser.add_argument("--child", choices=["stream", "whole", "baseline"])
    parser.add_argument("--mix")
    parser.add_argument("--out")
    parser.add_argument("--dict", action="append")
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="nmfsep-bench-long-") as tmp:
        work = Path(args.workdir) if args.workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        dicts = make_dictionaries(work)
        rows = [{"mode": "baseline", "minutes": 0,
                 **run_case("baseline", ROOT / "audio_samples" / "piano_flute_44k" / "mix.flac",
                            dicts, work / "out", args.block_seconds, args.sources)}]
        print(f"baseline (imports + dictionaries): {rows[0]['peak_rss_mib']:.0f} MiB RSS",
              flush=True)
        print(f"{'mode':<7} {'minutes':>7} {'seconds':>8} {'s/min':>6} {'peak RSS MiB':>12} "
              f"{'blocks':>6} {'n_iter':>6}", flush=True)
        cases = [("stream", m) for m in args.minutes] + [("whole", m) for m in args.whole_minutes]
        for mode, minutes in cases:
            mix = make_mixture(work, minutes)
            r = run_case(mode, mix, dicts, work / "out", args.block_seconds, args.sources)
            r["minutes"] = minutes
            rows.append(r)
            print(f"{mode:<7} {minutes:>7g} {r['seconds']:>8.1f} {r['seconds'] / minutes:>6.1f} "
                  f"{r['peak_rss_mib']:>12.0f} {r['n_blocks'] or '':>6} {r['n_iter']:>6}",
                  flush=True)
            for stem in (work / "out").rglob("*.wav"):  # 600 MB per stem-hour: do not keep
                stem.unlink()
        if args.json:
            Path(args.json).write_text(json.dumps({
                "block_seconds": args.block_seconds, "cpus": os.cpu_count(), "rows": rows,
            }, indent=2))


if __name__ == "__main__":
    main()
