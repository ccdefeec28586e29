"""Stereo separation benchmark (issue 14): one model of the channels combined vs a gain per channel.

Stereo 44.1 kHz mixtures are built from the rendered family clips
(``python benchmarks/render.py --what families``, ``benchmarks/data/families``; mono 22.05 kHz
stems, resampled to 44.1 kHz) under five conditions:

``hard``      sources panned hard left / hard right (pan -/+0.95: 28 dB down in the other
              channel, which BSS Eval images needs non-zero; a third one in the centre);
``moderate``  panned half way (pan -0.5 / +0.5, a third one in the centre);
``same``      every source at the same place (pan +0.3): position cannot help;
``width``     moderate panning of "stereo-sampled" instruments: each source's right channel
              is its own signal delayed by 0.2-0.6 ms (its own width);
``reverb``    moderate panning plus light reverb: every source and channel convolved with its
              own exponentially decaying noise (RT60 0.4 s, -6 dB wet).

Panning is constant-power, gains ``(cos θ, sin θ)`` with ``θ = (pan + 1) π / 4``. The tasks are
the families' ``duo`` (piano + flute), ``trio`` (+ bass) and ``drums_bass``. Methods:

``sup-shared`` / ``sup-gains``      supervised: dictionaries learned with today's defaults from
                                    the family's training clips (at 44.1 kHz, cached in
                                    ``benchmarks/results/stereo-dicts``), ``spatial="shared"`` or
                                    ``"gains"``;
``blind-shared`` / ``blind-gains``  blind, ``n_sources=2`` (two-source tasks only).

A method may carry a variant after a colon: ``sup-gains:uniform`` / ``:share`` / ``:peaks``
sets the initial gains (:func:`nmfsep.ntf.initial_gains`), ``sup-gains:untied`` gives every atom
its own gains (instead of one per source), ``blind-gains:w1`` the position weight of the grouping,
``:joint`` updates the gains from the products of the activations' update
(:data:`nmfsep.ntf.JOINT_GAINS`), ``sup-gains:twopass`` gives the supervised gains a pass
of their own (before :data:`nmfsep.plan.SUPERVISED_JOINT_GAINS`),
``sup-gains:wiener0`` sets the spatial Wiener filter's EM iterations (0: the per-channel
masks; :data:`nmfsep.spatial_wiener.WIENER_ITER`; ``:wiener4e0.2`` also the width of its
start, :data:`nmfsep.spatial_wiener.START_WIDTH`), ``blind-gains:p2c100f30j`` sets the
blind coarse-to-fine
fit (frames pooled, coarse and fine iterations, ``j``: joint gain updates;
:data:`nmfsep.plan.BLIND_POOL_FRAMES`); ``:p1c0f200`` is every frame and three passes per
iteration throughout, as before.

Stems are scored as stereo source images with the project's BSS Eval
(:func:`nmfsep.bsseval.bss_eval_images`' decomposition: SDR and ISR; blind stems in the better
of the two orders), each method's time is measured in the same process, one mixture after the other.
Results go to ``--json`` (merged with what is there, so runs can be split by family); the
summary prints, per condition and task, the median SDR of each method, gains - shared and the
median time ratio gains / shared, and with ``--select`` chooses the stereo default
("gains" or "shared", by the median gain over every condition with distinct positions and the
"same" condition within 0.3 dB) on ``--choose-on`` families and reports it on the others.

    nice python benchmarks/bench_stereo.py --families fluidr3 --tasks duo drums_bass
    nice python benchmarks/bench_stereo.py --families timgm6mb
    python benchmarks/bench_stereo.py --summary --select --choose-on fluidr3
    python benchmarks/bench_stereo.py --timing 3 --families timgm6mb --conditions moderate
    python benchmarks/bench_stereo.py --bundled   # the bundled stereo mixtures, shared vs gains
    python benchmarks/bench_stereo.py --bundled --methods sup-gains:wiener0 sup-gains \
        sup-gains:wiener4e0.02 sup-gains:wiener4e0.2
    python benchmarks/bench_stereo.py --timing-bundled 3 --tile 6   # timing on 30 s
    python benchmarks/bench_stereo.py --timing-bundled 5 --tile 6 --timing-variants gains:p1c0f200
    python benchmarks/bench_stereo.py --joint-check --families timgm6mb --tasks duo trio \
        --seeds 2 [--stacked]
    python benchmarks/bench_stereo.py --semi-check --families timgm6mb avl --seeds 2
    python benchmarks/bench_stereo.py --semi-check joint --families timgm6mb avl --seeds 2

The figures of the README (and of ``DEFAULT_SPATIAL`` in ``nmfsep/plan.py``) came from the
first three commands (one mixture per family and task; about 45 minutes on a loaded 2-core
machine); MuseScore General (same lineage as FluidR3) and the AVL kit were not run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nmfsep import io  # noqa: E402
from nmfsep.bsseval import BSSEval, bss_eval_images  # noqa: E402
from nmfsep.dictionary import Dictionary, learn_dictionary  # noqa: E402
from nmfsep.separate import separate  # noqa: E402

# the modules (``nmfsep.separate`` is also the function): their defaults are varied below
SEPARATE = importlib.import_module("nmfsep.separate")
GROUPING = importlib.import_module("nmfsep.grouping")
NTF = importlib.import_module("nmfsep.ntf")
SW = importlib.import_module("nmfsep.spatial_wiener")
ROOT = Path(__file__).resolve().parent
SR = 44100
CONDITIONS = ("hard", "moderate", "same", "width", "reverb")
PANS = {"hard": (-0.95, 0.95, 0.0), "moderate": (-0.5, 0.5, 0.0), "same": (0.3, 0.3, 0.3),
        "width": (-0.5, 0.5, 0.0), "reverb": (-0.5, 0.5, 0.0)}
DELAYS_MS = (0.2, 0.6, 0.4)  # "width": per source, right channel behind the left
TASKS = ("duo", "trio", "drums_bass")
METHODS = ("sup-shared", "sup-gains", "blind-shared", "blind-gains")


# ------------------------------------------------------------------------- mixtures


def pan_gains(pan: float) -> np.ndarray:
    """Constant-power gains (left, right) of a pan position in [-1, 1]."""
    theta = (pan + 1.0) * np.pi / 4
    return np.array([np.cos(theta), np.sin(theta)])


def reverb_ir(seed: int, rt60: float = 0.4, wet_db: float = -6.0) -> np.ndarray:
    """A direct path plus exponentially decaying noise (decays 60 dB in ``rt60`` s)."""
    rng = np.random.default_rng(seed)
    n = int(rt60 * SR)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    tail *= 10 ** (wet_db / 20) / np.sqrt(np.sum(tail**2))
    tail[0] += 1.0
    return tail


def image(x: np.ndarray, j: int, condition: str, seed: int) -> np.ndarray:
    """The stereo image (2, n) of mono source ``x`` (source j) under ``condition``."""
    g = pan_gains(PANS[condition][j])
    y = np.stack([g[0] * x, g[1] * x])
    if condition == "width":
        d = int(round(DELAYS_MS[j] * SR / 1000))
        y[1] = np.concatenate([np.zeros(d), y[1, : len(x) - d]])
    elif condition == "reverb":
        y = np.stack([fftconvolve(y[c], reverb_ir(1000 * seed + 10 * j + c))[: len(x)]
                      for c in range(2)])
    return y.astype(np.float32)


def load_items(data: Path, family: str, tasks: tuple[str, ...], n_seeds: int) -> list[dict]:
    """Mono stems at 44.1 kHz of the family's mixtures, with their training clips' paths."""
    manifest = json.loads((data / "manifest.json").read_text())
    out = []
    for c in manifest["clips"]:
        if (c["kind"] != "mixture" or c.get("family") != family or c["task"] not in tasks
                or c["seed"] >= n_seeds):
            continue
        stems = {n: io.load(data / p, sr=SR)[0][0] for n, p in c["stems"].items()}
        out.append({"family": family, "task": c["task"], "seed": c["seed"],
                    "names": list(c["instruments"]), "stems": stems,
                    "train": dict(c["train"])})
    return out


def dictionary(data: Path, path: str, name: str, cache: Path) -> Dictionary:
    """The dictionary of a training clip at 44.1 kHz with today's defaults (cached on disk)."""
    f = cache / f"{path.replace('/', '_')}-{SR}.npz"
    if f.exists():
        return Dictionary.load(f)
    d = learn_dictionary([io.load(data / path, sr=SR)], name)
    cache.mkdir(parents=True, exist_ok=True)
    d.save(f, force=True)
    return d


# ------------------------------------------------------------------------- methods


def run_method(method: str, mix: np.ndarray, dicts: list[Dictionary],
               sr: int = SR) -> tuple[dict, float]:
    """Separate ``mix`` with ``method`` (and its variant); return stems and seconds."""
    kind, _, variant = method.partition(":")
    mode, spatial = kind.split("-")
    saved = (SEPARATE.GAIN_INIT_SUPERVISED, SEPARATE.GAIN_INIT_BLIND,
             GROUPING.POSITION_WEIGHT, SEPARATE.TIE_GAINS, NTF.JOINT_GAINS,
             SEPARATE.BLIND_POOL_FRAMES, SEPARATE.BLIND_COARSE_ITER, SEPARATE.BLIND_FINE_ITER,
             SEPARATE.BLIND_JOINT_GAINS, SEPARATE.SUPERVISED_JOINT_GAINS)
    coarse = re.fullmatch(r"p(\d+)c(\d+)f(\d+)(j?)", variant)
    wiener = re.fullmatch(r"wiener(\d+)(?:e([0-9.e-]+))?", variant)
    extra = {"wiener_iter": int(wiener.group(1))} if wiener else {}
    width = SW.START_WIDTH
    if wiener and wiener.group(2):
        SW.START_WIDTH = float(wiener.group(2))
    if coarse:
        (SEPARATE.BLIND_POOL_FRAMES, SEPARATE.BLIND_COARSE_ITER,
         SEPARATE.BLIND_FINE_ITER) = (int(v) for v in coarse.groups()[:3])
        SEPARATE.BLIND_JOINT_GAINS = coarse.group(4) == "j"
    elif variant in ("uniform", "share", "peaks"):
        SEPARATE.GAIN_INIT_SUPERVISED = SEPARATE.GAIN_INIT_BLIND = variant
    elif variant.startswith("w") and not wiener:
        GROUPING.POSITION_WEIGHT = float(variant[1:])
    elif variant == "untied":
        SEPARATE.TIE_GAINS = False
    elif variant == "joint":
        NTF.JOINT_GAINS = True
    elif variant == "twopass":
        SEPARATE.SUPERVISED_JOINT_GAINS = False
    try:
        kwargs = {"dictionaries": dicts} if mode == "sup" else {"n_sources": 2}
        t0 = time.perf_counter()
        res = separate(mix, sr, spatial=spatial, **kwargs, **extra)
        return res.stems, time.perf_counter() - t0
    finally:
        SW.START_WIDTH = width
        (SEPARATE.GAIN_INIT_SUPERVISED, SEPARATE.GAIN_INIT_BLIND,
         GROUPING.POSITION_WEIGHT, SEPARATE.TIE_GAINS, NTF.JOINT_GAINS,
         SEPARATE.BLIND_POOL_FRAMES, SEPARATE.BLIND_COARSE_ITER,
         SEPARATE.BLIND_FINE_ITER, SEPARATE.BLIND_JOINT_GAINS,
         SEPARATE.SUPERVISED_JOINT_GAINS) = saved


def score(bss: BSSEval, stems: dict, names: list[str], blind: bool) -> tuple[list, list]:
    """SDR and ISR of every source image (blind: the better order of the two stems)."""
    ests = list(stems.values())
    orders = [ests, ests[::-1]] if blind else [[stems[n] for n in names]]
    best = None
    for order in orders:
        out = np.array([bss.image_scores(e, j) for j, e in enumerate(order)])
        if best is None or np.mean(out[:, 0]) > np.mean(best[:, 0]):
            best = out
    return [float(v) for v in best[:, 0]], [float(v) for v in best[:, 1]]


def run_family(args: argparse.Namespace, family: str, results: list[dict]) -> None:
    data = Path(args.data)
    done = {(r["family"], r["task"], r["seed"], r["condition"], r["method"]) for r in results}
    for item in load_items(data, family, tuple(args.tasks), args.seeds):
        dicts = [dictionary(data, item["train"][n], n, ROOT / "results" / "stereo-dicts")
                 for n in item["names"]]
        for condition in args.conditions:
            refs = np.stack([image(item["stems"][n], j, condition, item["seed"])
                             for j, n in enumerate(item["names"])])
            mix = refs.sum(axis=0)
            bss = None
            for method in args.methods:
                key = (family, item["task"], item["seed"], condition, method)
                blind = method.startswith("blind")
                if key in done or (blind and len(item["names"]) != 2):
                    continue
                stems, seconds = run_method(method, mix, dicts)
                bss = BSSEval(refs) if bss is None else bss  # one projection set per mixture
                sdr, isr = score(bss, stems, item["names"], blind)
                results.append(dict(zip(("family", "task", "seed", "condition", "method"), key,
                                        strict=True), sdr=sdr, isr=isr, seconds=seconds))
                print(f"{family:9s} {item['task']:10s} {item['seed']} {condition:8s} "
                      f"{method:18s} SDR {np.median(sdr):6.2f}  ISR {np.median(isr):6.2f}  "
                      f"{seconds:6.2f} s", flush=True)
                save(args.json, results)


def save(path: str, results: list[dict]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(p)


# ------------------------------------------------------------------------- summary


def paired(results: list[dict], method: str, base: str, families: set[str]) -> dict:
    """(condition, task) -> lists of (median SDR of method - of base, time ratio, SDRs)."""
    by_key = {(r["family"], r["task"], r["seed"], r["condition"], r["method"]): r
              for r in results}
    out: dict = {}
    for (fam, task, seed, cond, m), r in by_key.items():
        b = by_key.get((fam, task, seed, cond, base))
        if m != method or b is None or fam not in families:
            continue
        cell = out.setdefault((cond, task), {"delta": [], "ratio": [], "new": [], "old": []})
        cell["delta"].append(float(np.median(r["sdr"]) - np.median(b["sdr"])))
        cell["ratio"].append(r["seconds"] / b["seconds"])
        cell["new"] += r["sdr"]
        cell["old"] += b["sdr"]
    return out


def table(results: list[dict], method: str, base: str, families: set[str]) -> None:
    cells = paired(results, method, base, families)
    if not cells:
        return
    print(f"\n{method} vs {base} on {', '.join(sorted(families))}: median SDR (dB) of "
          "source images, their difference (median over mixtures), time ratio")
    print(f"  {'condition':9s} {'task':10s} {'n':>2s} {base:>13s} {method:>18s} "
          f"{'delta':>6s} {'time':>5s}")
    for cond in CONDITIONS:
        for task in TASKS:
            c = cells.get((cond, task))
            if c:
                print(f"  {cond:9s} {task:10s} {len(c['delta']):2d} {np.median(c['old']):13.2f} "
                      f"{np.median(c['new']):18.2f} {np.median(c['delta']):+6.2f} "
                      f"{np.median(c['ratio']):5.2f}")


def choose(results: list[dict], method: str, base: str, families: set[str]) -> str:
    """Pick ``method`` if it gains at distinct positions and stays within 0.3 dB at one."""
    cells = paired(results, method, base, families)
    distinct = [d for (cond, _), c in cells.items() if cond != "same" for d in c["delta"]]
    same = [d for (cond, _), c in cells.items() if cond == "same" for d in c["delta"]]
    if not distinct:
        return base
    ok = np.median(distinct) > 0 and (not same or np.median(same) >= -0.3)
    print(f"\nchoice on {', '.join(sorted(families))}: {method if ok else base} (median "
          f"delta at distinct positions {np.median(distinct):+.2f} dB, at one position "
          f"{np.median(same) if same else float('nan'):+.2f} dB)")
    return method if ok else base


def summary(args: argparse.Namespace, results: list[dict]) -> None:
    families = {r["family"] for r in results}
    methods = sorted({r["method"] for r in results})
    for method in methods:
        base = method.split("-")[0] + "-shared"
        if method == base:
            continue
        if args.select:
            chosen = set(args.choose_on) & families
            held = families - chosen
            choose(results, method, base, chosen)
            table(results, method, base, chosen)
            table(results, method, base, held)
        else:
            table(results, method, base, families)


def timing(args: argparse.Namespace) -> None:
    """Time shared and gains alternately ``--timing`` times on one mixture per task."""
    data = Path(args.data)
    for family in args.families:
        seen = set()
        for item in load_items(data, family, tuple(args.tasks), 1):
            if item["task"] in seen:
                continue
            seen.add(item["task"])
            dicts = [dictionary(data, item["train"][n], n, ROOT / "results" / "stereo-dicts")
                     for n in item["names"]]
            for condition in args.conditions:
                mix = sum(image(item["stems"][n], j, condition, 0)
                          for j, n in enumerate(item["names"]))
                for mode in ("sup", "blind"):
                    if mode == "blind" and len(item["names"]) != 2:
                        continue
                    times: dict[str, list[float]] = {"shared": [], "gains": []}
                    for _ in range(args.timing):
                        for spatial in times:
                            times[spatial].append(run_method(f"{mode}-{spatial}", mix, dicts)[1])
                    old, new = np.median(times["shared"]), np.median(times["gains"])
                    print(f"{family:9s} {item['task']:10s} {condition:8s} {mode:5s} shared "
                          f"{old:6.2f} s  gains {new:6.2f} s  ratio {new / old:4.2f} "
                          f"(medians of {args.timing})", flush=True)


def timing_bundled(n: int, tile: int = 1, variants: tuple[str, ...] = ()) -> None:
    """Time shared and gains on the bundled 44.1 kHz piano + flute stems, panned half way
    (the 5 s mixture repeated ``tile`` times); ``variants`` (e.g. ``gains:p1c0f200``) too."""
    d = ROOT.parent / "audio_samples"
    stems = [io.load(d / "piano_flute_44k" / f"{name}.flac", sr=SR)[0][0]
             for name in ("piano", "flute")]
    mix = np.tile(sum(image(x, j, "moderate", 0) for j, x in enumerate(stems)), tile)
    dicts = [learn_dictionary([io.load(d / "train" / f"{name}.flac")], name)
             for name in ("piano", "flute")]
    for mode in ("sup", "blind"):
        times: dict[str, list[float]] = {m: [] for m in ("shared", "gains", *variants)}
        for _ in range(n):
            for spatial in times:
                times[spatial].append(run_method(f"{mode}-{spatial}", mix, dicts)[1])
        old = np.median(times["shared"])
        for spatial in list(times)[1:]:
            new = np.median(times[spatial])
            print(f"bundled piano+flute 44.1 kHz moderate x{tile} {mode:5s} shared {old:6.2f} s  "
                  f"{spatial} {new:6.2f} s  ratio {new / old:4.2f} (medians of {n})", flush=True)


def image_snr(refs: list[np.ndarray], ests: list[np.ndarray]) -> list[float]:
    """SNR (dB) of every estimated stereo image against its reference, in order."""
    return [float(10 * np.log10(np.sum(r**2) / np.sum((r - e)**2)))
            for r, e in zip(refs, ests, strict=True)]


def joint_check(families: list[str], tasks: tuple[str, ...], n_seeds: int,
                stacked: bool = False) -> None:
    """Supervised gains with and without the gains' own pass (plan.SUPERVISED_JOINT_GAINS).

    Without, these 8 s mixtures keep their group models whole (:func:`nmfsep.ntf.ntf`'s
    cached products, gains then W); with, one stacked pass per iteration (as a 3-minute
    song, whose models do not fit, had two: ``--stacked`` compares those two). Conditions
    ``moderate`` and ``hard``, dictionaries as ``sup-gains``; per source the SNR of the
    stereo image (dB; BSS Eval images is minutes per mixture) and the time ratio, in one
    process.
    """
    data, plan = Path(ROOT / "data" / "families"), importlib.import_module("nmfsep.plan")
    keep = (NTF._CACHE_BYTES, SEPARATE.SUPERVISED_JOINT_GAINS)
    NTF._CACHE_BYTES = 0 if stacked else keep[0]
    diffs, times = [], {False: 0.0, True: 0.0}
    try:
        for family in families:
            for item in load_items(data, family, tasks, n_seeds):
                dicts = [dictionary(data, item["train"][n], n, ROOT / "results" / "stereo-dicts")
                         for n in item["names"]]
                for cond in ("moderate", "hard"):
                    refs = [image(item["stems"][n], j, cond, 0)
                            for j, n in enumerate(item["names"])]
                    snr = {}
                    for joint in (False, True):
                        SEPARATE.SUPERVISED_JOINT_GAINS = joint
                        t0 = time.perf_counter()
                        res = separate(sum(refs), SR, dictionaries=dicts, spatial="gains")
                        times[joint] += time.perf_counter() - t0
                        snr[joint] = image_snr(refs, [res.stems[n] for n in item["names"]])
                    diffs.extend(np.subtract(snr[True], snr[False]))
                    print(f"{family} {item['task']} seed {item['seed']} {cond}: before "
                          f"{np.round(snr[False], 2)} dB, joint {np.round(snr[True], 2)} dB",
                          flush=True)
    finally:
        NTF._CACHE_BYTES, SEPARATE.SUPERVISED_JOINT_GAINS = keep
    print(f"joint - before, per source: median {np.median(diffs):+.3f} dB, "
          f"{np.min(diffs):+.3f} to {np.max(diffs):+.3f} over {len(diffs)}; time "
          f"{times[True] / times[False]:.2f}x (default now: {plan.SUPERVISED_JOINT_GAINS})")


#: --semi-check's settings: plan constant, the value compared against, its label.
SEMI_SETTINGS = {"pool": ("SEMI_POOL_FRAMES", 1, "every frame"),
                 "joint": ("SEMI_JOINT_GAINS", True, "gains with the activations")}


def semi_check(families: list[str], tasks: tuple[str, ...], n_seeds: int,
               setting: str = "pool") -> None:
    """Semi-supervised gains at the default of a ``setting`` vs without it.

    ``pool``: coarse to fine (plan.SEMI_POOL_FRAMES) vs every frame; ``joint``: the gains
    in a pass of their own (plan.SEMI_JOINT_GAINS) vs updated with the activations. Every
    source but the last has its dictionary (as ``sup-gains``); the last is left to 8 free
    atoms, whose stem (``residual``) is scored against it. Conditions ``moderate`` and
    ``hard``; per source the SNR of the stereo image (dB) and the time ratio, in one
    process.
    """
    data = Path(ROOT / "data" / "families")
    name, other, label = SEMI_SETTINGS[setting]
    keep = getattr(SEPARATE, name)
    diffs, times = [], {other: 0.0, keep: 0.0}
    try:
        for family in families:
            for item in load_items(data, family, tasks, n_seeds):
                names = item["names"]
                dicts = [dictionary(data, item["train"][n], n, ROOT / "results" / "stereo-dicts")
                         for n in names[:-1]]
                for cond in ("moderate", "hard"):
                    refs = [image(item["stems"][n], j, cond, 0) for j, n in enumerate(names)]
                    snr = {}
                    for value in (other, keep):
                        setattr(SEPARATE, name, value)
                        t0 = time.perf_counter()
                        res = separate(sum(refs), SR, dictionaries=dicts, n_free=8,
                                       spatial="gains")
                        times[value] += time.perf_counter() - t0
                        got = [res.stems[n] for n in names[:-1]] + [res.stems["residual"]]
                        snr[value] = image_snr(refs, got)
                    diffs.extend(np.subtract(snr[keep], snr[other]))
                    print(f"{family} {item['task']} seed {item['seed']} {cond}: {label} "
                          f"{np.round(snr[other], 2)} dB, default {np.round(snr[keep], 2)} dB",
                          flush=True)
    finally:
        setattr(SEPARATE, name, keep)
    print(f"default ({name} = {keep}) - {label}, per source: median {np.median(diffs):+.3f} "
          f"dB, {np.min(diffs):+.3f} to {np.max(diffs):+.3f} over {len(diffs)}; time "
          f"{times[keep] / times[other]:.2f}x")


def bundled_quality(methods: tuple[str, ...] = ("sup-shared", "sup-gains"),
                    seconds: float = 4.0) -> None:
    """Supervised ``methods`` on the bundled stereo mixtures as they ship.

    ``audio_samples/piano_flute_44k`` and ``audio_samples/trio`` (rendered by FluidSynth in
    stereo: their own panning, and FluidR3's pianos are stereo samples, so the two channels
    are not one signal at two levels), dictionaries learned with today's defaults from
    ``audio_samples/train``; median source-image SDR over the first ``seconds`` (BSS Eval
    images of the whole 8 s at 44.1 kHz takes minutes), each method's gain over the first.
    Bundled material is the in-family check ("no task of today's benchmark worse"), not a
    held-out figure.
    """
    d = ROOT.parent / "audio_samples"
    for task, names in (("piano_flute_44k", ("piano", "flute")),
                        ("trio", ("piano", "flute", "bass"))):
        y, sr = io.load(d / task / "mix.flac")
        refs = np.stack([io.load(d / task / f"{n}.flac")[0] for n in names])
        dicts = [learn_dictionary([io.load(d / "train" / f"{n}.flac")], n) for n in names]
        n = int(seconds * sr)
        sdr = {}
        for method in methods:
            stems = run_method(method, y, dicts, sr)[0]
            est = np.stack([stems[name] for name in names])
            sdr[method] = float(np.median(bss_eval_images(refs[..., :n], est[..., :n])[0]))
        base = sdr[methods[0]]
        print(f"bundled {task:16s} supervised, first {seconds:g} s: " + "  ".join(
            f"{m} {v:6.2f} dB ({v - base:+.2f})" for m, v in sdr.items()), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "families"))
    ap.add_argument("--families", nargs="+", default=["fluidr3", "musescore", "timgm6mb", "avl"])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--seeds", type=int, default=1, help="mixtures per family and task")
    ap.add_argument("--json", default=str(ROOT / "results" / "stereo.json"))
    ap.add_argument("--summary", action="store_true", help="only summarise --json")
    ap.add_argument("--select", action="store_true", help="choose on --choose-on, report the rest")
    ap.add_argument("--choose-on", nargs="+", default=["fluidr3"])
    ap.add_argument("--timing", type=int, default=0, metavar="N",
                    help="only time shared and gains, N times each, alternately")
    ap.add_argument("--timing-bundled", type=int, default=0, metavar="N",
                    help="time shared and gains N times on the bundled audio_samples")
    ap.add_argument("--tile", type=int, default=1,
                    help="--timing-bundled: repeat the 5 s mixture this many times")
    ap.add_argument("--timing-variants", nargs="*", default=[], metavar="VARIANT",
                    help="--timing-bundled: also time these (e.g. gains:p1c0f200, the old blind)")
    ap.add_argument("--joint-check", action="store_true",
                    help="only compare supervised gains with and without their own pass "
                         "(--families, --tasks, --seeds)")
    ap.add_argument("--stacked", action="store_true",
                    help="--joint-check: both on the stacked passes (as a long song)")
    ap.add_argument("--semi-check", nargs="?", const="pool", default=None,
                    choices=sorted(SEMI_SETTINGS),
                    help="only compare semi-supervised gains at a default and without "
                         "it: pool (coarse to fine vs every frame, the default) or joint "
                         "(the gains' own pass vs with the activations); --families, "
                         "--tasks, --seeds")
    ap.add_argument("--bundled", action="store_true",
                    help="only compare shared and gains on the bundled stereo mixtures")
    args = ap.parse_args(argv)
    if args.bundled:
        bundled_quality(tuple(args.methods) if args.methods != list(METHODS)
                        else ("sup-shared", "sup-gains"))
        return
    if args.joint_check:
        joint_check(args.families, tuple(args.tasks), args.seeds, args.stacked)
        return
    if args.semi_check:
        semi_check(args.families, tuple(args.tasks), args.seeds, args.semi_check)
        return
    if args.timing_bundled:
        timing_bundled(args.timing_bundled, args.tile, tuple(args.timing_variants))
        return
    if args.timing:
        timing(args)
        return
    p = Path(args.json)
    results = json.loads(p.read_text()) if p.exists() else []
    if not args.summary:
        for family in args.families:
            run_family(args, family, results)
    summary(args, results)


if __name__ == "__main__":
    main()
