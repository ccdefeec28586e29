"""Time supervised separation with harmonic atoms: the dense path against the split one.

Dictionaries are learned (defaults: ``harmonic="auto"``) from
``audio_samples/train/{piano,flute}.flac``; each case then runs ``nmfsep.separate`` on
the same mixture in one process with ``harmonic="on"``, once with the atoms' zeros skipped
(:mod:`nmfsep._sparse`, what separate does) and once on the dense path (the split
switched off by raising ``nmfsep._sparse.MIN_SPARSE_ATOMS``), alternating, and prints
the best time of each, the iterations run, the ratio, and how far the stems of the
two paths are apart (SNR of the dense stem against their difference, in dB). For
scale, it also times ``harmonic="off"`` (the plain atoms alone) and the default
``harmonic="auto"`` (both fits run, one kept), as multiples of the plain atoms' time.

Cases: ``mono`` (the bundled duo, ``audio_samples/piano_flute/mix.flac``), ``stereo``
(``audio_samples/piano_flute_44k/mix.flac``, 44.1 kHz stereo: gains per channel,
:mod:`nmfsep.ntf`), ``long`` (the mono duo tiled to 60 s) and ``long-stereo`` (the
stereo duo tiled to 60 s). Absolute times drift on a shared machine; the ratio is the
figure. ::

    python benchmarks/bench_sparse.py                       # mono and stereo, 3 repeats
    python benchmarks/bench_sparse.py --cases long long-stereo --repeat 1 --max-iter 30 --tol 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import nmfsep._sparse as sparse_path
from nmfsep import io
from nmfsep.dictionary import learn_dictionary
from nmfsep.separate import separate

ROOT = Path(__file__).resolve().parents[1]
S = ROOT / "audio_samples"
CASES = {"mono": ("piano_flute/mix.flac", None), "stereo": ("piano_flute_44k/mix.flac", None),
         "long": ("piano_flute/mix.flac", 60.0), "long-stereo": ("piano_flute_44k/mix.flac", 60.0)}


def _mixture(case: str) -> tuple[np.ndarray, int]:
    """The case's mixture ``(n_channels, n_samples)`` and rate, tiled when the case says."""
    name, seconds = CASES[case]
    y, sr = io.load(S / name)
    if seconds is not None:
        y = np.tile(y, (1, int(np.ceil(seconds * sr / y.shape[1]))))[:, : int(seconds * sr)]
    return y, sr


def _run(y, sr, dictionaries, path: str, kw: dict) -> tuple[float, object]:
    """Seconds of one ``separate`` call and its result on ``path`` (dense, split or off)."""
    keep = sparse_path.MIN_SPARSE_ATOMS
    sparse_path.MIN_SPARSE_ATOMS = 10**9 if path == "dense" else keep
    # "on": the harmonic atoms whatever their fit; "auto" (the default) fits with and
    # without them and keeps one
    kw = {**kw, "harmonic": path if path in ("off", "auto") else "on"}
    try:
        t0 = time.perf_counter()
        res = separate(y, sr, dictionaries=dictionaries, **kw)
        return time.perf_counter() - t0, res
    finally:
        sparse_path.MIN_SPARSE_ATOMS = keep


def _snr(ref: dict, est: dict) -> float:
    """Worst stem SNR (dB) of ``ref`` against ``est - ref``."""
    worst = np.inf
    for name, r in ref.items():
        err = float(np.sum((est[name].astype(np.float64) - r) ** 2))
        power = float(np.sum(r.astype(np.float64) ** 2))
        worst = min(worst, np.inf if err == 0 else 10 * np.log10(power / err))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=["mono", "stereo"])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each path (best kept)")
    ap.add_argument("--max-iter", type=int, default=None, help="separate's max_iter")
    ap.add_argument("--tol", type=float, default=None, help="separate's tol (0: max-iter runs)")
    args = ap.parse_args()
    kw = {k: v for k, v in (("max_iter", args.max_iter), ("tol", args.tol)) if v is not None}
    dictionaries = [learn_dictionary([io.load(S / "train" / f"{n}.flac")], n)
                    for n in ("piano", "flute")]
    print("atoms (all, harmonic):", [(d.n_atoms, d.n_harmonic) for d in dictionaries])
    for case in args.cases:
        y, sr = _mixture(case)
        best = dict.fromkeys(("dense", "split", "off", "auto"), np.inf)
        out = {}
        for _ in range(args.repeat):  # alternate, so drifting machine load hits all alike
            for path in best:
                t, out[path] = _run(y, sr, dictionaries, path, kw)
                best[path] = min(best[path], t)
        n = {p: out[p].n_iter for p in out}
        print(f"{case}: {y.shape[0]} ch {y.shape[1] / sr:.1f} s at {sr} Hz | dense "
              f"{best['dense']:.2f} s ({n['dense']} it), split {best['split']:.2f} s "
              f"({n['split']} it), ratio {best['dense'] / best['split']:.1f}x | stems apart: "
              f"SNR {_snr(out['dense'].stems, out['split'].stems):.0f} dB | harmonic off "
              f"{best['off']:.2f} s ({n['off']} it) | the default (auto: both fits, "
              f"ratio {out['auto'].settings['harmonic_fit_ratio']:.2f}) "
              f"{best['auto'] / best['off']:.1f}x and harmonic on "
              f"{best['split'] / best['off']:.1f}x the plain atoms' time", flush=True)


if __name__ == "__main__":
    main()
