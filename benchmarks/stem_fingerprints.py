"""Fingerprint the outputs of the main command-line paths on the bundled samples.

A restructure must not change a single sample of output. This script runs ``nmfsep`` the way
users do (blind, grouped, supervised, semi-supervised, stereo, another sample rate, streaming,
online learning, saved models) on ``audio_samples/`` and records a SHA-256 of every array it
wrote: the samples of each stem, and the arrays of each dictionary and saved model.
Run it on two commits and compare::

    git stash -u; python benchmarks/stem_fingerprints.py -o /tmp/before.json; git stash pop
    python benchmarks/stem_fingerprints.py -o /tmp/after.json --compare /tmp/before.json

``--compare`` exits 1 and lists every output whose samples differ (or that is missing).
About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
S = ROOT / "audio_samples"

# (label, arguments after `nmfsep`); {tmp} is the scratch folder
CASES: list[tuple[str, list[str]]] = [
    ("learn-piano", ["learn", f"{S}/train/piano.flac", "-n", "piano", "-k", "16",
                     "-o", "{tmp}/piano.npz"]),
    ("learn-flute", ["learn", f"{S}/train/flute.flac", "-n", "flute", "-k", "16",
                     "-o", "{tmp}/flute.npz"]),
    ("learn-bass", ["learn", f"{S}/train/bass.flac", "-n", "bass", "-k", "12", "--context", "1",
                    "-o", "{tmp}/bass.npz"]),
    ("learn-online", ["learn", f"{S}/train/drums.flac", "-n", "drums", "-k", "12", "--online",
                      "--block-seconds", "5", "-o", "{tmp}/drums.npz"]),
    ("blind-k", ["separate", f"{S}/piano_flute/mix.flac", "-k", "6", "-o", "{tmp}/blind"]),
    ("blind-sources", ["separate", f"{S}/drums_bass/mix.flac", "--sources", "2",
                       "--save-model", "-o", "{tmp}/sources"]),
    ("blind-stereo", ["separate", f"{S}/trio/mix.flac", "--sources", "3", "--grouping",
                      "combined", "-o", "{tmp}/stereo"]),
    ("supervised", ["separate", f"{S}/piano_flute/mix.flac", "-d", "{tmp}/piano.npz",
                    "-d", "{tmp}/flute.npz", "--save-model", "-o", "{tmp}/sup"]),
    ("semi-stereo", ["separate", f"{S}/trio/mix.flac", "-d", "{tmp}/piano.npz",
                     "-d", "{tmp}/flute.npz", "--free", "4", "-o", "{tmp}/semi"]),
    ("other-rate", ["separate", f"{S}/piano_flute_44k/mix.flac", "-d", "{tmp}/piano.npz",
                    "-d", "{tmp}/flute.npz", "-o", "{tmp}/rate"]),
    ("is-binary", ["separate", f"{S}/drums_bass/mix.flac", "-d", "{tmp}/drums.npz",
                   "-d", "{tmp}/bass.npz", "--beta", "is", "--mask", "binary",
                   "-o", "{tmp}/isbin"]),
    ("stream", ["separate", f"{S}/trio/mix.flac", "-d", "{tmp}/piano.npz", "-d",
                "{tmp}/flute.npz", "--free", "2", "--stream", "--block-seconds", "3",
                "-o", "{tmp}/stream"]),
]


def _digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(str((a.dtype.str, a.shape)).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of every array under ``folder`` (WAV samples, npz members), by relative path."""
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.suffix == ".wav":
            y, sr = sf.read(p, dtype="float32", always_2d=True)
            out[rel] = _digest(y) + f":{sr}"
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                for key in sorted(z.files):
                    if key != "meta":  # meta holds the nmfsep version and file paths
                        out[f"{rel}:{key}"] = _digest(z[key])
    return out


def run(tmp: Path) -> dict[str, str]:
    for label, args in CASES:
        cmd = [sys.executable, "-m", "nmfsep", *(a.format(tmp=tmp) for a in args), "-q"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{label} failed ({done.returncode}): {done.stderr.strip()}")
    return fingerprint(tmp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True, help="fingerprints JSON to write")
    ap.add_argument("--compare", type=Path, help="fingerprints JSON of the reference commit")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        prints = run(Path(tmp))
    args.out.write_text(json.dumps(prints, indent=1, sort_keys=True))
    print(f"{len(prints)} arrays fingerprinted -> {args.out}")
    if args.compare is None:
        return 0
    ref = json.loads(args.compare.read_text())
    bad = sorted(k for k in ref.keys() | prints.keys() if ref.get(k) != prints.get(k))
    for k in bad:
        print(f"DIFFERS: {k}")
    print("identical" if not bad else f"{len(bad)} of {len(ref)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
