"""Post-processing experiments on supervised separation: MISI, 3 resolutions, DNMF atoms.

**An experiment outside the product.** nmfsep separates with one STFT resolution,
one α-Wiener soft mask and the mixture's phase; it does none of what follows, and its
dictionary file format holds atoms of a single resolution. This script measures
what a few post-processing steps would add on the benchmark tasks of
``benchmarks/bench_separation.py`` (whose loaders, scoring and references it
imports), so the figures can be reproduced by one command.

Every variant starts from the product's own supervised separation
(:func:`nmfsep.separate.separate` with dictionaries from
:func:`nmfsep.dictionary.learn_dictionary`, its defaults: 48 atoms per source,
3-frame context, Kullback-Leibler on magnitudes, max_iter 200, mask power 1.5, STFT
``nmfsep.dictionary.default_learning_stft``: n_fft 4096 / hop 1024 at 22.05 kHz,
2048 / 512 at 16 kHz for ``speech``). Variants (``--variants``):

* ``base``: the product's stems, unchanged (must match ``bench_separation``'s
  default row).
* ``misi3``: the product's masked STFTs ``M_j X`` refined by 3 iterations of MISI
  (multiple input spectrogram inversion, Gunawan & Sen 2010): the magnitudes
  ``|M_j X|`` stay fixed, each stem's phase becomes that of
  ``STFT(iSTFT(Y_j)) + E / J`` with ``E = X - Σ_k STFT(iSTFT(Y_k))`` the mixture's
  error shared among the J stems.
* ``res3``: three STFT resolutions (n_fft / 2, n_fft, 2 n_fft, hop n_fft / 4 each),
  dictionaries learned and the mixture separated at each with the product, the three
  stems of every source averaged in the time domain.
* ``res3_misi3``: ``res3`` with ``misi3`` at each resolution before averaging.
* ``dnmf_misi3``: reconstruction atoms (discriminative NMF in the manner of Weninger
  et al. 2014): the sources' training clips are summed into a training mixture,
  its activations computed with the learned atoms (fixed), and each source's atoms
  refitted (activations fixed, 200 KL iterations) so that ``W_j H'_j`` approximates
  that source's own spectrogram in the training mixture. On the mixture, the
  product's activations ``W_j`` are kept and the models become ``W_j H'_j``; mask
  power 2, then MISI 3 iterations. One resolution.
* ``res3_dnmf_misi3``: ``dnmf_misi3`` at the three resolutions, stems averaged (the
  best on drums_bass).

Learning (dictionaries, reconstruction atoms) is not timed; "sep s" is the median
per mixture of the product's separation at every resolution used plus the
post-processing. Metrics and medians as ``bench_separation``: BSS Eval SDR
(``mir_eval``), median over seeds x sources; ``speech`` is one mixture (seed 0), so
its medians are over its two sources. The baseline is ``bench_separation``'s
librosa + scikit-learn pipeline (KL, 16 atoms per source); "gain" is the variant's
median minus the baseline's. Nothing is written or cached on disk.

Measured (6 seeds, median SDR in dB, gain over the scikit-learn baseline in
brackets; first found in a scratch search, reproduced to 0.01 dB by this script,
all tasks in 19 min on one core):

| variant         | duo           | trio          | duo2          | drums_bass    | speech        |
|-----------------|---------------|---------------|---------------|---------------|---------------|
| sklearn k=16    | 17.41         | 8.85          | 11.27         | 10.02         | 7.36          |
| base            | 20.82 (+3.41) | 11.77 (+2.92) | 15.36 (+4.09) | 11.49 (+1.47) | 9.36 (+2.00)  |
| misi3           | 20.77 (+3.36) | 11.62 (+2.77) | 15.25 (+3.98) | 11.78 (+1.77) | 9.25 (+1.90)  |
| res3            | 20.59 (+3.18) | 11.09 (+2.24) | 14.40 (+3.13) | 11.88 (+1.87) | 9.81 (+2.45)  |
| res3_misi3      | 20.57 (+3.17) | 11.07 (+2.23) | 14.42 (+3.16) | 12.22 (+2.20) | 9.85 (+2.50)  |
| dnmf_misi3      | 20.99 (+3.58) | 11.46 (+2.62) | 15.36 (+4.09) | 11.91 (+1.89) | 9.32 (+1.97)  |
| res3_dnmf_misi3 | 20.78 (+3.38) | 11.12 (+2.28) | 14.55 (+3.29) | 12.35 (+2.33) | 10.04 (+2.68) |

The best variant, res3_dnmf_misi3, helps drums_bass (+0.86 dB over base) and speech
(+0.68 dB), leaves duo unchanged (-0.04 dB) and costs 0.65 dB on trio and 0.81 dB on
duo2; MISI alone helps only drums_bass. The three resolutions make separation about
four times slower: median separation seconds per drums_bass mixture 0.08 (sklearn),
0.50 (base), 0.64 (misi3, dnmf_misi3), 1.50 (res3), 1.93 (res3_misi3), 1.94
(res3_dnmf_misi3).

    taskset -c 1 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
        python benchmarks/bench_post.py --tasks drums_bass --variants base,res3_dnmf_misi3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_separation as B  # noqa: E402

from nmfsep.context import stack_frames  # noqa: E402
from nmfsep.dictionary import (  # noqa: E402
    DEFAULT_ATOMS_PER_SOURCE,
    DEFAULT_CONTEXT_FRAMES,
    default_learning_stft,
    learn_dictionary,
)
from nmfsep.masks import group_models, masks  # noqa: E402
from nmfsep.nmf import nmf  # noqa: E402
from nmfsep.plan import SUPERVISED_MASK_POWER  # noqa: E402
from nmfsep.separate import separate  # noqa: E402
from nmfsep.spectral import (  # noqa: E402
    STFTConfig,
    istft,
    max_magnitude,
    model_spectrogram,
    stft,
)

MAX_ITER = 200
SKLEARN_K = 16


@dataclass(frozen=True)
class Variant:
    resolutions: tuple[float, ...]  # n_fft relative to the product's; stems averaged
    dnmf: bool = False  # reconstruction atoms W_j H'_j instead of W_j H_j
    mask_power: float = SUPERVISED_MASK_POWER
    misi: int = 0  # MISI iterations


RES3 = (1.0, 0.5, 2.0)
VARIANTS = {
    "base": Variant((1.0,)),
    "misi3": Variant((1.0,), misi=3),
    "res3": Variant(RES3),
    "res3_misi3": Variant(RES3, misi=3),
    "dnmf_misi3": Variant((1.0,), dnmf=True, mask_power=2.0, misi=3),
    "res3_dnmf_misi3": Variant(RES3, dnmf=True, mask_power=2.0, misi=3),
}
DEFAULT_VARIANTS = "base,misi3,res3_misi3,res3_dnmf_misi3"


def stft_at(sr: int, rel: float) -> STFTConfig:
    """The product's learning STFT scaled by ``rel`` (hop n_fft / 4)."""
    base = default_learning_stft(sr)
    if rel == 1.0:
        return base
    n_fft = int(base.n_fft * rel)
    return STFTConfig(n_fft=n_fft, hop_length=n_fft // 4)


# ------------------------------------------------------------------ per-mixture state


class Mixture:
    """One benchmark mixture; dictionaries, separations and atoms computed once."""

    def __init__(self, item: dict):
        self.item = item
        self.names = item["names"]
        self._dicts: dict[float, list] = {}
        self._sep: dict[float, tuple] = {}
        self._recon: dict[float, list[np.ndarray]] = {}

    def dictionaries(self, rel: float) -> list:
        if rel not in self._dicts:
            cfg = stft_at(self.item["sr"], rel)
            self._dicts[rel] = [
                learn_dictionary([self.item["train"][n]], n, DEFAULT_ATOMS_PER_SOURCE,
                                 stft=cfg, max_iter=MAX_ITER, tol=1e-4, random_state=0,
                                 context_frames=DEFAULT_CONTEXT_FRAMES)
                for n in self.names
            ]
        return self._dicts[rel]

    def separation(self, rel: float):
        """(product's SeparationResult, mixture STFT, seconds of separate())."""
        if rel not in self._sep:
            dicts = self.dictionaries(rel)
            t0 = time.perf_counter()
            res = separate(self.item["mix"], self.item["sr"], dictionaries=dicts,
                           max_iter=MAX_ITER, n_threads=1)
            sec = time.perf_counter() - t0
            X = stft(self.item["mix"], res.stft)  # the STFT separate() masked
            self._sep[rel] = (res, X, sec)
        return self._sep[rel]

    def reconstruction_atoms(self, rel: float) -> list[np.ndarray]:
        """Per source ``H'_j (k, T * n_bins)``: ``W_j H'_j ≈ S_j`` on the training mixture."""
        if rel in self._recon:
            return self._recon[rel]
        dicts = self.dictionaries(rel)
        d0 = dicts[0]
        T, cfg, power, beta = d0.context_frames, d0.stft, d0.power, d0.beta
        ys = [self.item["train"][n][0].astype(np.float64) for n in self.names]
        n = min(y.shape[1] for y in ys)
        ys = [y[:, :n] for y in ys]
        Xm = stft(sum(ys).astype(np.float32), cfg)
        peak = max_magnitude(Xm)
        V = stack_frames(model_spectrogram(Xm, power, scale=peak), T)
        scale = V.mean()
        H = np.concatenate([d.atoms for d in dicts], axis=0)
        W = nmf(V / scale, H.shape[0], beta=beta, fixed_atoms=H, max_iter=MAX_ITER, tol=1e-4,
                random_state=0, warn=False, n_threads=1).W
        out, o = [], 0
        for y, d in zip(ys, dicts, strict=True):
            k = d.atoms.shape[0]
            Wj = W[:, o:o + k]
            o += k
            S = stack_frames(model_spectrogram(stft(y.astype(np.float32), cfg), power,
                                               scale=peak), T) / scale
            # transposed problem S^T ≈ H'^T W_j^T with W_j^T fixed: update the atoms only
            r = nmf(np.ascontiguousarray(S.T), k, beta=beta, init="custom",
                    W=np.ascontiguousarray(d.atoms.T), H=np.ascontiguousarray(Wj.T) + 1e-12,
                    update_H=False, max_iter=MAX_ITER, tol=0, random_state=0, warn=False,
                    n_threads=1)
            out.append(np.ascontiguousarray(r.W.T))
        self._recon[rel] = out
        return out


# ------------------------------------------------------------------ post-processing


def expanded_atoms(atoms: list[np.ndarray], groups: dict[str, list[int]], T: int,
                   shape: tuple[int, int]) -> np.ndarray:
    """Atoms of T frames laid out as ``separate()``'s single-frame H (expand_factors)."""
    H2 = np.empty(shape, dtype=np.float32)
    for a, idx in zip(atoms, groups.values(), strict=True):
        H2[idx] = a.reshape(a.shape[0] * T, -1)
    return H2


def misi(X: np.ndarray, M: np.ndarray, cfg: STFTConfig, length: int,
         n_iter: int) -> list[np.ndarray]:
    """Stems of masks ``M (J, n_frames, n_bins)`` on ``X`` after ``n_iter`` MISI iterations."""
    Y = [X * m.T[None] for m in M]
    A = [np.abs(y) for y in Y]
    J = len(Y)
    for _ in range(n_iter):
        Z = [stft(istft(y, cfg, length), cfg) for y in Y]
        E = X - sum(Z)
        Y = [a * np.exp(1j * np.angle(z + E / J)) for a, z in zip(A, Z, strict=True)]
    return [istft(y, cfg, length) for y in Y]


def run_variant(mix: Mixture, v: Variant) -> tuple[dict[str, np.ndarray], float]:
    """Stems of one variant and its separation seconds (learning excluded)."""
    length = mix.item["mix"].shape[1]
    outs, seconds = [], 0.0
    for rel in v.resolutions:
        res, X, sec = mix.separation(rel)
        recon = mix.reconstruction_atoms(rel) if v.dnmf else None  # learning: not timed
        t0 = time.perf_counter()
        if not v.dnmf and v.misi == 0 and v.mask_power == SUPERVISED_MASK_POWER:
            stems = dict(res.stems)  # the product's output
        else:
            if v.dnmf:
                T = res.settings["context_frames"]
                H2 = expanded_atoms(recon, res.groups, T, res.H.shape)
                M = masks(group_models(res.W, H2, res.groups), power=v.mask_power)
            elif v.mask_power == SUPERVISED_MASK_POWER:
                M = res.masks
            else:
                M = masks(group_models(res.W, res.H, res.groups), power=v.mask_power)
            ests = misi(X, M, res.stft, length, v.misi)
            stems = dict(zip(mix.names, ests, strict=True))
        seconds += sec + time.perf_counter() - t0
        outs.append(stems)
    if len(outs) == 1:
        return outs[0], seconds
    return {n: sum(o[n] for o in outs) / len(outs) for n in mix.names}, seconds


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    ap.add_argument("--samples", type=Path, default=ROOT / "audio_samples",
                    help=f"audio samples folder, for the tasks {', '.join(B.SAMPLE_TASKS)}")
    ap.add_argument("--tasks", default="duo,trio,duo2,drums_bass,speech")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help=f"comma-separated, from {', '.join(VARIANTS)}")
    args = ap.parse_args()

    tasks = [t for t in args.tasks.split(",") if t]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    t_start = time.perf_counter()
    sdr: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_source: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    names_of: dict[str, list[str]] = {}
    ORACLE, SKLEARN = "oracle IRM", f"sklearn KL k={SKLEARN_K} (baseline)"

    def record(task, method, item, stems, seconds):
        s = B.score(item, stems)["sdr"]
        sdr[(task, method)].extend(s)
        for name, x in zip(item["names"], s, strict=True):
            per_source[(task, method, name)].append(x)
        times[(task, method)].append(seconds)

    for task in tasks:
        if task in B.SAMPLE_TASKS:
            items = B.load_task(args.samples, B.SAMPLE_TASKS[task], args.seeds)
        else:
            items = B.load_task(args.data, task, args.seeds)
        names_of[task] = list(items[0]["names"])
        for item in items:
            print(f"[{time.perf_counter() - t_start:6.0f}s] {task} seed {item['seed']}",
                  file=sys.stderr, flush=True)
            record(task, ORACLE, item, *B.run_oracle(item))
            record(task, SKLEARN, item, *B.run_sklearn(item, k=SKLEARN_K, max_iter=MAX_ITER))
            mix = Mixture(item)
            for name in variants:
                record(task, name, item, *run_variant(mix, VARIANTS[name]))

    for task in tasks:
        over = "one mixture x sources" if task in B.SAMPLE_TASKS else "seeds x sources"
        print(f"\n## {task}  (median over {over}; SDR = mir_eval BSS Eval, dB)\n")
        names = names_of[task]
        print("| variant | SDR | gain | " + " | ".join(f"SDR {n}" for n in names)
              + " | sep s |")
        print("|---|---:|---:|" + "---:|" * len(names) + "---:|")
        ref = float(np.median(sdr[(task, SKLEARN)]))
        for method in [ORACLE, SKLEARN, *variants]:
            med = float(np.median(sdr[(task, method)]))
            cells = " | ".join(f"{np.median(per_source[(task, method, n)]):.2f}" for n in names)
            print(f"| {method} | {med:.2f} | {med - ref:+.2f} | {cells} | "
                  f"{np.median(times[(task, method)]):.2f} |")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
