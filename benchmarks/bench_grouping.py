"""Blind separation: which way of grouping k NMF components into S sources works best.

Reads the material rendered by ``benchmarks/render.py --what bench`` (see its
manifest.json) and renders nothing itself. For every duo (piano + flute) and trio
(piano + flute + bass) mixture and every k in 8, 12, 16, 24, one blind factorization
(nmfsep defaults: KL on the magnitude spectrogram, seed 0) is grouped into the true
number of sources by each method of :func:`nmfsep.grouping.group_components`, and by
two references:

* ``oracle``: each component goes to the true source holding most of its energy
  under the ideal ratio mask (a strong reference, though not a bound on SDR);
* ``random``: a random partition (seeded), the floor.

Every grouping is turned into stems exactly as :func:`nmfsep.separate.separate` does
(α-Wiener masks with the default power, mixture phase) and scored with BSS Eval SDR
(``mir_eval.separation.bss_eval_sources``, best permutation); the table shows the
median over seeds and sources.

    nice python benchmarks/bench_grouping.py [--seeds 6] [--ks 8,12,16,24] [--tasks duo,trio]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nmfsep import io  # noqa: E402
from nmfsep.grouping import GROUPING_METHODS, group_components, source_names  # noqa: E402
from nmfsep.masks import apply_masks, group_models, masks  # noqa: E402
from nmfsep.plan import DEFAULT_MASK_POWER  # noqa: E402
from nmfsep.separate import separate  # noqa: E402
from nmfsep.spectral import istft, model_spectrogram, stft  # noqa: E402


def bss_sdr_best_permutation(refs: np.ndarray, ests: np.ndarray) -> np.ndarray:
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(
            refs.astype(np.float64), ests.astype(np.float64), compute_permutation=True
        )
    return sdr


def oracle_groups(W, H, sources_V, names):
    """Each component to the source that holds most of its energy under the IRM."""
    total = sum(sources_V)
    total = np.where(total > 0, total, 1.0)
    shares = np.zeros((H.shape[0], len(sources_V)))
    for i in range(H.shape[0]):
        C = np.outer(W[:, i], H[i])
        for j, Vj in enumerate(sources_V):
            shares[i, j] = np.sum(C * (Vj / total))
    owner = shares.argmax(axis=1)
    groups = {name: [int(i) for i in np.flatnonzero(owner == j)] for j, name in enumerate(names)}
    # A source that owns no component gets the component it holds most of (keeps S stems).
    for j, name in enumerate(names):
        if not groups[name]:
            donors = [i for i in np.argsort(-shares[:, j]) if len(groups[names[owner[i]]]) > 1]
            i = int(donors[0])
            groups[names[owner[i]]].remove(i)
            groups[name] = [i]
            owner[i] = j
    return groups


def random_groups(k, S, rng):
    while True:
        labels = rng.integers(0, S, size=k)
        if len(set(labels.tolist())) == S:
            return {f"g{j}": [int(i) for i in np.flatnonzero(labels == j)] for j in range(S)}


def stems_for(X, W, H, groups, cfg, n_samples):
    M = masks(group_models(W, H, groups), kind="soft", power=DEFAULT_MASK_POWER)
    return np.stack([istft(apply_masks(X, M[g:g + 1])[0], cfg, n_samples)[0]
                     for g in range(M.shape[0])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    ap.add_argument("--tasks", default="duo,trio")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--ks", default="8,12,16,24")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "grouping.json")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    manifest = json.loads((args.data / "manifest.json").read_text())
    methods = [*GROUPING_METHODS, "oracle", "random"]
    sdrs: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    t0 = time.perf_counter()
    for task in args.tasks.split(","):
        clips = [c for c in manifest["clips"]
                 if c["kind"] == "mixture" and c["task"] == task and c["seed"] < args.seeds]
        if not clips:
            raise SystemExit(f"no mixtures for task {task!r}; run benchmarks/render.py")
        for clip in clips:
            mix, sr = io.load(args.data / clip["mix"])
            names = list(clip["instruments"])
            refs = np.stack([io.load(args.data / clip["stems"][n])[0].mean(axis=0) for n in names])
            S = len(names)
            for k in ks:
                print(f"[{time.perf_counter() - t0:6.0f}s] {task} seed {clip['seed']} k={k}",
                      file=sys.stderr, flush=True)
                res = separate(mix, sr, n_components=k, random_state=0)
                cfg = res.stft
                X = stft(mix, cfg)
                W, H = res.W, res.H
                for method in methods:
                    if method in GROUPING_METHODS:
                        groups = group_components(W, H, S, method=method, sr=sr,
                                                  n_fft=cfg.n_fft)
                    elif method == "oracle":
                        power = res.settings["power"]
                        sources_V = [
                            model_spectrogram(stft(io.load(args.data / clip["stems"][n])[0], cfg),
                                              power).astype(np.float64) ** DEFAULT_MASK_POWER
                            for n in names
                        ]
                        groups = oracle_groups(W, H, sources_V, source_names(S))
                    else:
                        groups = random_groups(k, S, np.random.default_rng(clip["seed"] * 100 + k))
                    ests = stems_for(X, W, H, groups, cfg, mix.shape[1])
                    sdrs[(task, k, method)].extend(bss_sdr_best_permutation(refs, ests).tolist())

    out = []
    for task in args.tasks.split(","):
        print(f"\n## {task}: blind NMF (KL, magnitude) grouped into the true number of sources")
        print("median BSS Eval SDR (dB, best permutation) over seeds x sources\n")
        print("| method      | " + " | ".join(f"k={k:<3d}" for k in ks) + " | all k |")
        print("|-------------|" + "|".join("-------" for _ in ks) + "|-------|")
        for method in methods:
            vals = [np.median(sdrs[(task, k, method)]) for k in ks]
            allv = np.median([v for k in ks for v in sdrs[(task, k, method)]])
            print(f"| {method:11s} | " + " | ".join(f"{v:5.2f}" for v in vals)
                  + f" | {allv:5.2f} |")
            out.append({"task": task, "method": method,
                        "median_sdr": {str(k): float(v) for k, v in zip(ks, vals, strict=True)},
                        "median_sdr_all": float(allv)})
    print(f"\ntotal {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
