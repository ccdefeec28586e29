"""Supervised separation: which settings separate best, and how nmfsep compares.

One sound family only (FluidR3), with training clips that cover every note the mixtures
play: settings chosen here and reported here are in-family figures. The held-out
headline (several families, training clips in other registers, leave-one-family-out
selection of settings) is ``benchmarks/bench_heldout.py``, which reuses this module's
metrics and oracle.

Reads the material rendered by ``benchmarks/render.py --what bench`` (mixtures, true
stems and per-seed training clips; see its manifest.json) and renders nothing itself.
Task ``speech`` (speech + background piano) instead reads the committed
``audio_samples/speech_piano`` (``--samples``): a real LibriVox recording, 6 dB over a soft
piano part, 16 kHz mono, 8 s, with its two stems, and training clips disjoint from it
(``audio_samples/train/speech.flac``: other utterances of the same reader;
``train/piano.flac``: another piece, resampled from 22.05 to 16 kHz on loading). There
is a **single mixture** (seed 0; ``--seeds`` has no effect), so its medians are over the
two sources only.

For every mixture of the grid task (piano + flute by default) it learns one
dictionary per source from that seed's training clips and separates the mixture
with nmfsep, over a grid of

* atoms per source k: 32 / 48 / 64 and α-Wiener mask power 1 / 1.5 / 2, with atoms
  spanning 3 frames (temporal context, :mod:`nmfsep.context`),
* the context itself: 1, 3, 5 frames,
* Itakura-Saito (power spectrogram, unit-norm atoms) and sparse training activations,

all with dictionaries learned at nmfsep's default STFT (a window twice
``STFTConfig.for_sample_rate``'s; earlier defaults used that window itself, 32 atoms,
no context and mask power 1),

and compares with

* (a) the pipeline a user writes today: librosa STFT + one scikit-learn
  ``NMF(beta_loss="kullback-leibler", solver="mu")`` per source, ``components_``
  concatenated, ``non_negative_factorization(update_H=False)`` on the mixture,
  Wiener masks, librosa ISTFT;
* (b) the oracle ideal ratio mask (``|S_g|^2 / Σ_j |S_j|^2`` of the true stems).

Metrics: BSS Eval SDR (``mir_eval.separation.bss_eval_sources``, sources in their
known order) and SI-SDR, median over seeds and sources. Other tasks (``--tasks``: duo,
trio, duo2, drums_bass, speech) run the default settings, two alternatives and the two
references. Training clips are loaded at the mixture's sample rate, so both nmfsep and
the scikit-learn pipeline (n_fft 2048, hop 512 at any rate) learn at 16 kHz on speech.

    nice python benchmarks/bench_separation.py --tasks duo,trio,duo2,drums_bass,speech

runs the grid on duo and, on every other task, the default settings plus two
alternatives (``--other``).
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
from nmfsep.dictionary import (  # noqa: E402
    DEFAULT_ATOMS_PER_SOURCE,
    DEFAULT_CONTEXT_FRAMES,
    learn_dictionary,
)
from nmfsep.plan import SUPERVISED_MASK_POWER  # noqa: E402
from nmfsep.separate import separate  # noqa: E402
from nmfsep.spectral import STFTConfig, istft, stft  # noqa: E402


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB of one mono estimate (Le Roux et al. 2019)."""
    ref = ref.astype(np.float64) - ref.mean()
    est = est.astype(np.float64) - est.mean()
    alpha = (est @ ref) / max(ref @ ref, 1e-20)
    target = alpha * ref
    noise = est - target
    return float(10 * np.log10(max(target @ target, 1e-20) / max(noise @ noise, 1e-20)))


def bss_sdr(refs: np.ndarray, ests: np.ndarray) -> np.ndarray:
    """BSS Eval SDR of (n_src, n_samples) mono estimates, in the given order."""
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(
            refs.astype(np.float64), ests.astype(np.float64), compute_permutation=False
        )
    return sdr


def mono(y: np.ndarray) -> np.ndarray:
    return y.mean(axis=0)


# Tasks read from the committed audio samples (``--samples``) rather than ``--data``:
# benchmark task -> task in audio_samples/manifest.json (same clip format, seed 0 only).
SAMPLE_TASKS = {"speech": "speech_piano"}


def load_task(data: Path, task: str, n_seeds: int) -> list[dict]:
    manifest = json.loads((data / "manifest.json").read_text())
    out = []
    for clip in manifest["clips"]:
        if clip["kind"] != "mixture" or clip["task"] != task or clip["seed"] >= n_seeds:
            continue
        mix, sr = io.load(data / clip["mix"])
        stems = {name: io.load(data / p)[0] for name, p in clip["stems"].items()}
        # training clips at the mixture's rate (audio_samples/train/piano is 22.05 kHz)
        train = {name: io.load(data / p, sr=sr) for name, p in clip["train"].items()}
        out.append(
            {"seed": clip["seed"], "sr": sr, "mix": mix, "stems": stems, "train": train,
             "names": list(clip["instruments"])}
        )
    if not out:
        raise SystemExit(f"no mixtures for task {task!r} in {data}; run benchmarks/render.py")
    return out


def score(item: dict, estimates: dict[str, np.ndarray]) -> dict[str, list[float]]:
    names = item["names"]
    refs = np.stack([mono(item["stems"][n]) for n in names])
    ests = np.stack([mono(estimates[n]) for n in names])
    sdr = bss_sdr(refs, ests)
    return {
        "sdr": [float(v) for v in sdr],
        "si_sdr": [si_sdr(r, e) for r, e in zip(refs, ests, strict=True)],
    }


# ------------------------------------------------------------------------- methods


def run_nmfsep(item, cache, *, k, beta, alpha, mask_power, max_iter, norm="auto",
               sep_alpha=0.0, context=DEFAULT_CONTEXT_FRAMES, separate_kw=None):
    dicts = []
    for name in item["names"]:
        key = (item["seed"], name, k, beta, alpha, norm, max_iter, context)
        if key not in cache:
            y, sr = item["train"][name]
            cache[key] = learn_dictionary(
                [(y, sr)], name, k, beta=beta, alpha_W=alpha, l1_ratio=1.0,
                normalize_atoms=NORM[norm], max_iter=max_iter, tol=1e-4, random_state=0,
                context_frames=context,
            )
        dicts.append(cache[key])
    t1 = time.perf_counter()
    res = separate(item["mix"], item["sr"], dictionaries=dicts, mask_power=mask_power,
                   max_iter=max_iter, alpha_W=sep_alpha, l1_ratio=1.0, **(separate_kw or {}))
    t2 = time.perf_counter()
    return res.stems, t2 - t1


def run_sklearn(item, *, k, max_iter):
    """What a user writes today with librosa + scikit-learn."""
    import librosa
    from sklearn.decomposition import NMF, non_negative_factorization

    n_fft, hop = 2048, 512
    comps = []
    for name in item["names"]:
        y, _ = item["train"][name]
        S = np.abs(librosa.stft(mono(y), n_fft=n_fft, hop_length=hop))
        model = NMF(n_components=k, beta_loss="kullback-leibler", solver="mu",
                    max_iter=max_iter, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(S.T)
        comps.append(model.components_)
    H = np.concatenate(comps, axis=0)
    t1 = time.perf_counter()
    X = librosa.stft(mono(item["mix"]), n_fft=n_fft, hop_length=hop)
    V = np.abs(X).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W, _, _ = non_negative_factorization(
            V, H=H, n_components=H.shape[0], update_H=False, beta_loss="kullback-leibler",
            solver="mu", max_iter=max_iter, random_state=0,
        )
    models = [(W[:, i * k:(i + 1) * k] @ H[i * k:(i + 1) * k]) ** 2 for i in range(len(comps))]
    total = sum(models) + 1e-10
    stems = {}
    n = item["mix"].shape[1]
    for name, m in zip(item["names"], models, strict=True):
        stems[name] = librosa.istft((m / total).T * X, hop_length=hop, length=n)[None]
    t2 = time.perf_counter()
    return stems, t2 - t1


def run_oracle(item):
    cfg = STFTConfig.for_sample_rate(item["sr"])
    X = stft(item["mix"], cfg)
    powers = {n: np.abs(stft(item["stems"][n], cfg)) ** 2 for n in item["names"]}
    total = sum(powers.values())
    total = np.where(total > 0, total, 1.0)
    n = item["mix"].shape[1]
    return {name: istft(X * (p / total), cfg, n) for name, p in powers.items()}, 0.0


# ------------------------------------------------------------------------- main

BETA_SHORT = {"kullback-leibler": "KL", "itakura-saito": "IS"}
NORM = {"auto": None, "norm": True, "raw": False}
# Grid on the tuning task: atoms per source x mask power with 3-frame context, then the
# context itself (1, 5 frames), Itakura-Saito, and sparse activations.
FULL_GRID = ";".join(
    [f"KL:{k}:{p}:0:auto:3" for k in (32, 48, 64) for p in (1, 1.5, 2)]
    + [f"KL:48:1.5:0:auto:{t}" for t in (1, 5)]
    + ["IS:48:1.5:0:norm:3", "KL:48:1.5:0.002:auto:3"]
)
DEFAULT_CONFIG = (f"KL:{DEFAULT_ATOMS_PER_SOURCE}:{SUPERVISED_MASK_POWER:g}:0:auto:"
                  f"{DEFAULT_CONTEXT_FRAMES}")
OTHER_TASK_CONFIGS = f"{DEFAULT_CONFIG};KL:48:1.5:0:auto:1;KL:32:1:0:auto:1"


def parse_config(text: str) -> tuple[str, int, float, float, str, int]:
    """``BETA:K:MASK_POWER:ALPHA[:NORM[:CONTEXT]]``: BETA in KL/IS, NORM in auto/norm/raw.

    CONTEXT is the frames each atom spans (default :data:`DEFAULT_CONTEXT_FRAMES`).
    Dictionaries are learned with nmfsep's default STFT (a window twice
    ``STFTConfig.for_sample_rate``'s, see ``nmfsep.dictionary.default_learning_stft``).
    """
    parts = text.split(":")
    beta, k, p, alpha = parts[:4]
    norm = parts[4] if len(parts) > 4 else "auto"
    context = int(parts[5]) if len(parts) > 5 else DEFAULT_CONTEXT_FRAMES
    if norm not in NORM:
        raise SystemExit(f"NORM must be one of {list(NORM)}, got {norm!r}")
    beta = {"KL": "kullback-leibler", "IS": "itakura-saito"}[beta.upper()]
    return beta, int(k), float(p), float(alpha), norm, context


def label(config: tuple[str, int, float, float, str, int]) -> str:
    beta, k, p, alpha, norm, context = config
    text = f"nmfsep {BETA_SHORT[beta]} k={k} p={p:g} T={context}"
    if alpha:
        text += f" sparse a={alpha:g}"
    if norm == "norm" or (norm == "auto" and alpha > 0):
        text += " unit-norm"
    if config == parse_config(DEFAULT_CONFIG):
        text += " (default)"
    return text


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    ap.add_argument("--samples", type=Path, default=ROOT / "audio_samples",
                    help=f"audio samples folder, for the tasks {', '.join(SAMPLE_TASKS)}")
    ap.add_argument("--grid-task", default="duo")
    ap.add_argument("--tasks", default="duo", help="comma-separated tasks (defaults + refs)")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--no-grid", action="store_true")
    ap.add_argument("--separate", type=json.loads, default={},
                    help='extra keywords of nmfsep\'s separate, e.g. \'{"harmonic": "off"}\'')
    ap.add_argument("--sklearn-k", type=int, default=16, help="atoms per source, scikit-learn")
    ap.add_argument("--configs", default=FULL_GRID,
                    help="grid: ';'-separated BETA:K:MASK_POWER:ALPHA[:NORM] "
                         "(BETA = KL or IS, NORM = auto, norm or raw)")
    ap.add_argument("--other", default=OTHER_TASK_CONFIGS,
                    help="the nmfsep settings run on the non-grid tasks (same syntax)")
    ap.add_argument("--json", type=Path,
                    default=ROOT / "benchmarks" / "results" / "separation.json")
    return ap.parse_args()


def report(tasks: list[str], rows: dict, per_source: dict, times: dict) -> list[dict]:
    """Print one table per task (medians over seeds x sources); return the JSON rows."""
    out = []
    for task in tasks:
        over = "one mixture (no seeds) x sources" if task in SAMPLE_TASKS else "seeds x sources"
        print(f"\n## {task}  (median over {over}; SDR = mir_eval BSS Eval, dB)")
        methods = [m for (t, m) in rows if t == task]
        names = sorted({n for (t, m, n) in per_source if t == task})
        head = f"| {'method':46s} | " + " | ".join(f"SDR {n:7s}" for n in names)
        print(head + " | SDR all | SI-SDR all | sep s |")
        rule = "|".join("-" * 13 for _ in names)
        print("|" + "-" * 48 + "|" + rule + "|---------|------------|-------|")
        for m in methods:
            r = rows[(task, m)]
            cells = " | ".join(f"{np.median(per_source[(task, m, n)]):11.2f}" for n in names)
            print(f"| {m:46s} | {cells} | {np.median(r['sdr']):7.2f} | "
                  f"{np.median(r['si_sdr']):10.2f} | {np.median(times[(task, m)]):5.2f} |")
            out.append({"task": task, "method": m,
                        "sdr_median": float(np.median(r["sdr"])),
                        "si_sdr_median": float(np.median(r["si_sdr"])),
                        "sdr_per_source": {n: float(np.median(per_source[(task, m, n)]))
                                           for n in names},
                        "n": len(r["sdr"])})
    return out


def main() -> None:
    args = parse_args()

    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_source: dict[tuple[str, str, str], list[float]] = defaultdict(list)

    def record(task, method, item, stems, seconds):
        s = score(item, stems)
        for key, vals in s.items():
            rows[(task, method)][key].extend(vals)
        for name, v in zip(item["names"], s["sdr"], strict=True):
            per_source[(task, method, name)].append(v)
        times[(task, method)].append(seconds)

    tasks = [t for t in args.tasks.split(",") if t]
    if not args.no_grid and args.grid_task not in tasks:
        tasks.insert(0, args.grid_task)
    grid_configs = [parse_config(c) for c in args.configs.split(";") if c]
    other_configs = [parse_config(c) for c in args.other.split(";") if c]
    t_start = time.perf_counter()
    for task in tasks:
        if task in SAMPLE_TASKS:
            items = load_task(args.samples, SAMPLE_TASKS[task], args.seeds)
        else:
            items = load_task(args.data, task, args.seeds)
        grid = task == args.grid_task and not args.no_grid
        for item in items:
            cache: dict = {}
            print(f"[{time.perf_counter() - t_start:6.0f}s] {task} seed {item['seed']}",
                  file=sys.stderr, flush=True)
            record(task, "oracle IRM", item, *run_oracle(item))
            record(task, f"sklearn KL k={args.sklearn_k}", item,
                   *run_sklearn(item, k=args.sklearn_k, max_iter=args.max_iter))
            for config in grid_configs if grid else other_configs:
                beta, k, mp, alpha, norm, context = config
                stems, sec = run_nmfsep(item, cache, k=k, beta=beta, alpha=alpha, norm=norm,
                                        mask_power=mp, max_iter=args.max_iter, context=context,
                                        separate_kw=args.separate)
                record(task, label(config), item, stems, sec)

    out = report(tasks, rows, per_source, times)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s", file=sys.stderr)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
