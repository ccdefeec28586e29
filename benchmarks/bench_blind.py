"""Blind separation of bands (drums + bass + keys) and harmonic duos, held-out (issue 15).

Reads the set ``python benchmarks/render.py --what families`` writes (default
``benchmarks/data/families``) and renders nothing. Mixtures, per sound family:

* ``band``: drums + bass of the family's ``drums_bass`` mixture seed s plus the piano of
  its ``duo`` mixture seed s (AVL has no duo: its piano is TimGM6mb's, as its bass), summed
  as rendered — three sources;
* ``duo``: the family's piano + flute mixtures, as rendered — two sources (guards today's
  blind result);
* ``trio``: the family's piano + flute + bass mixtures, as rendered — three sources;
* ``quartet``: the trio seed s plus the drums of the ``drums_bass`` mixture seed s — four
  sources (AVL has no trio).

Methods (every stem set scored with nmfsep's BSS Eval v3 SDR, the estimates matched to
the references by the permutation with the best mean SDR; median over mixtures x sources,
and the drums stem's median for bands):

* ``pipeline``: what a user writes with librosa + scikit-learn: ``librosa.stft`` (2048 /
  512), ``sklearn.decomposition.NMF`` (KL, mu, 200 iterations, seed 0) of the magnitude,
  the atoms' MFCCs (c1..c12 of the log-mel atom) clustered into S groups by
  ``sklearn.cluster.KMeans`` (seed 0), Wiener masks; the best k in {8, 16, 24, 32} for
  that family x task in hindsight (a strong baseline);
* ``today``: ``separate(mix, sr, n_sources=S)`` (the blind default);
* ``percussive``: ``separate(mix, sr, n_sources=S, percussive=True)`` (mixtures with
  drums: bands and quartets);
* ``auto`` (``--auto``, also on trios with ``today``): ``separate(mix, sr, n_sources="auto")``,
  the number of sources :func:`nmfsep.sources.suggest_sources` finds (``percussive`` when
  it finds drums). Its stems need not be as many as the references: the best one-to-one
  matching of stems and references is scored (stems left over are dropped, so what they
  took of a source is lost to it); a reference left without a stem (too few stems) is
  scored against the stem that serves it best, though another reference has it too;
* candidates ``p:<margin>:<kernel_h>x<kernel_p>:<components per source>``: the
  percussion-aware factorization (:func:`nmfsep.percussive.factorize_percussive`) with
  those settings, masks and stems as in ``separate`` (mixtures with drums);
* candidates ``b:<components per source>:<ward|kmeans|register>:<mag|pow>`` (any task):
  the blind default's factorization with that many components per source, grouped by the
  timbre features (:func:`nmfsep.grouping.timbre_features`) of its atoms ``H`` (``mag``)
  or of ``H ** 2`` (``pow``, as the pipeline computes them), clustered by Ward linkage
  (grouping "timbre") or by k-means (grouping "kmeans", the pipeline's clustering), or
  grouped by "register" (``--percussive``'s grouping of its harmonic part);
  masks and stems as in ``separate``, of exponent ``<power>``
  with ``:m<power>`` (the blind default, 1, without). ``b:8:ward:mag`` is ``today``
  on duos, ``b:12:kmeans:pow`` on trios and bands.

Ceilings (``--ceilings``), what the targets are measured against:

* ``oracle``: the ideal ratio mask (the references' power ratios) on nmfsep's STFT;
* ``grouped:pipeline:<k>`` (reported at its best k) and ``grouped:<candidate>`` (the
  product's: :data:`PRODUCT`): that factorization with every component given to the
  reference whose power its soft mask takes most of (:func:`oracle_groups`): how well
  the grouping step could do with the references' help. A reference point, not a
  bound: the rule is greedy, one component at a time, and a blind grouping can beat it
  (``--percussive`` does on FluidR3). The oracle mask is the bound the targets meet.

``--select`` does leave-one-family-out over the candidates: for each held-out family the
candidate with the best median SDR on the families sharing no sample lineage with it (the
manifest's ``groups``) is chosen and reported on the held-out family; a family's SDR is
the mean over the tasks the candidates ran on of its median (bands only for ``p:``).

The blind default's grouping and components per source (``nmfsep.plan``; first chosen
on FluidR3 alone) were chosen that way on 8 duos and 8 trios a family (``render.py
--what families --n 8 --out benchmarks/data/families8``, 3 min; then 10 min a task)::

    C=$(for n in 8 12 16 24; do for g in ward:mag ward:pow kmeans:mag kmeans:pow; do \
        printf "b:$n:$g,"; done; done)
    nice python benchmarks/bench_blind.py --data benchmarks/data/families8 --seeds 8 \
        --tasks trio --no-pipeline --methods "" --candidates "$C" --select   # and duo

Trios: ``b:12:kmeans:pow`` on three folds of four (OPL3's: ``b:24:ward:pow``), held out
+0.5 to +4.0 dB over ``b:8:ward:mag`` on every family: the default from three sources
on (``nmfsep.plan.MANY_SOURCES``). Duos: the folds' choices lost 3.5 dB (FluidR3) and
0.6 dB (TimGM6mb) held out, so two sources keep ``b:8:ward:mag``. Duos and trios chosen
together (``--tasks duo,trio``) lose on FluidR3's duos too. Bands, which took no part:
``--tasks band --candidates b:8:ward:mag,b:12:kmeans:pow`` (3 min). Four sources, which
took no part either (15 min)::

    nice python benchmarks/bench_blind.py --data benchmarks/data/families8 --seeds 8 \
        --tasks quartet --methods today,percussive --candidates b:8:ward:mag

"register" grouping of blind factorizations from three sources on (the low group, then
k-means above it, as ``--percussive`` groups its harmonic part) was tried on trios, bands
and quartets (8 a family, 7 min) and not kept: held out it gained on FluidR3's trios and
TimGM6mb's quartets (+1.6, +2.7 dB) and lost MuseScore's and TimGM6mb's bands (-2.4,
-1.6) and OPL3's trios (-2.1)::

    nice python benchmarks/bench_blind.py --data benchmarks/data/families8 --seeds 8 \
        --tasks trio,band,quartet --no-pipeline --methods "" --select --candidates \
        b:12:kmeans:pow,b:12:register:mag,b:8:register:mag,b:16:register:mag

``--auto`` reports beside each family's median the count ``auto`` used (right of all).
``--sources`` measures how often :func:`nmfsep.sources.suggest_sources` finds the number
of sources (2 on duos, 3 on bands), and how sure it says it is.

    nice python benchmarks/bench_blind.py --tasks band --select      # bands: 15-30 min
    nice python benchmarks/bench_blind.py --tasks band,duo,trio --sources --no-pipeline \
        --candidates ""                                               # duos, sources: 5 min
    nice python benchmarks/bench_blind.py --families fluidr3 --seeds 1 --candidates p:1:17x17:8
    nice python benchmarks/bench_blind.py --tasks band,duo,trio --auto --no-pipeline \
        --candidates "" --seeds 2                       # auto vs the true count: 10-15 min
    nice python benchmarks/bench_blind.py --tasks band --methods percussive --candidates "" \
        --ceilings                                      # bands against their ceilings: 15 min

Settings tried in exploratory runs (2-3 seeds) and left out of the default list, none
better: 31 x 31 kernels, margins 2 and 4, 12 components per source, "combined"
grouping, an extra harmonic group given to the drums by activation correlation.
"register" grouping (the share of each atom below 200 Hz, exact 1-D k-means) beat
"timbre" on every family and became the default of ``--percussive``; 150 and 300 Hz
were no better on the choosing families (exploratory, 3 seeds). ``--cross`` checks such
a choice on 9 bands a family (every drums + bass part with every piano part)::

    nice python benchmarks/bench_blind.py --tasks band --cross --no-pipeline \
        --methods percussive --candidates p:1:17x17:8:timbre:plain:f0.1   # 5 min

The joint iterations after the split (``:r<N>``, ``nmfsep.percussive.DEFAULT_REFINE_ITER``)
were chosen the same way, on 9 bands a family (8 min)::

    B=p:1:17x17:8:register:plain:f0.1
    nice python benchmarks/bench_blind.py --tasks band --cross --no-pipeline --methods "" \
        --candidates "$B,$B:r10,$B:r20,$B:r30,$B:r50,$B:r100" --select

(At stop 31 the components were grouped before the joint iterations; they are now
grouped after them, so these candidates no longer give that stop's figures.) The
tonal-attack rule (``:t<flatness>``, ``nmfsep.percussive.DEFAULT_TONAL``: percussive
components more tonal than that and mostly above 200 Hz join the harmonic ones) was
chosen the same way (8 min)::

    B=p:1:17x17:8:register:plain:f0.1:r30
    nice python benchmarks/bench_blind.py --tasks band --cross --no-pipeline --methods "" \
        --candidates "$B,$B:t0.005,$B:t0.01,$B:t0.02,$B:t0.03,$B:t0.05" --select

With the fifth family (OPL3) the flatness rule (``:f0.1``) was chosen again, and none
won on every fold (``nmfsep.percussive.DEFAULT_FLATNESS``; 7 min on five families)::

    N=p:1:17x17:8:register:plain:r30:t0.02
    nice python benchmarks/bench_blind.py --tasks band --cross --no-pipeline --methods "" \
        --candidates "p:1:17x17:8:register:plain:f0.1:r30:t0.02,$N" --select
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_separation import run_oracle  # noqa: E402

from nmfsep import io  # noqa: E402
from nmfsep.bsseval import BSSEval  # noqa: E402
from nmfsep.masks import GroupMasks  # noqa: E402
from nmfsep.percussive import factorize_percussive  # noqa: E402
from nmfsep.plan import DEFAULT_MASK_POWER  # noqa: E402
from nmfsep.separate import separate  # noqa: E402
from nmfsep.spectral import STFTConfig, istft, max_magnitude, model_spectrogram, stft  # noqa: E402

PIPE_KS = (8, 16, 24, 32)
PIANO_FROM = {"avl": "timgm6mb"}
#: The tasks whose mixtures have drums (percussion-aware methods run on them).
DRUM_TASKS = ("band", "quartet")
#: The candidate ``separate(..., percussive=True)`` runs (nmfsep.percussive's defaults).
PRODUCT = "p:1:17x17:8:register:plain:r30:t0.02"
DEFAULT_CANDIDATES = ("p:1:17x17:8:timbre:plain", "p:1:17x17:8:timbre:plain:f0.03",
                      "p:1:17x17:8:timbre:plain:f0.05", "p:1:17x17:8:timbre:plain:f0.1",
                      "p:2:17x17:8:timbre:plain:f0.05", "p:1:17x17:8:register:plain:f0.1",
                      *(f"p:1:17x17:8:register:plain:f0.1:r{n}" for n in (10, 20, 30, 50, 100)))


# ------------------------------------------------------------------------- data


def load_items(data: Path, families: list[str], seeds: int, tasks: list[str],
               cross: bool = False) -> list[dict]:
    """The mixtures of ``tasks``: ``{"family", "task", "seed", "sr", "mix", "refs", "names"}``.

    ``cross``: a band from every drums + bass seed s with every piano seed p (seeds**2
    bands per family, ``seed`` = 10 s + p), more mixtures from the same stems.
    """
    manifest = json.loads((data / "manifest.json").read_text())
    clips = {(c["family"], c["task"], c["seed"]): c for c in manifest["clips"]
             if c["kind"] == "mixture"}
    sets = []  # (family, task, seed, stems)
    for fam, seed in itertools.product(families, range(seeds)):
        if "band" in tasks and (fam, "drums_bass", seed) in clips:
            db = clips[(fam, "drums_bass", seed)]
            for p in range(seeds) if cross else [seed]:
                duo = clips[(PIANO_FROM.get(fam, fam), "duo", p)]
                sets.append((fam, "band", 10 * seed + p if cross else seed,
                             [("drums", db["stems"]["drums"]), ("bass", db["stems"]["bass"]),
                              ("piano", duo["stems"]["piano"])]))
        for task in ("duo", "trio"):
            if task in tasks and (fam, task, seed) in clips:
                c = clips[(fam, task, seed)]
                sets.append((fam, task, seed, [(n, c["stems"][n]) for n in c["instruments"]]))
        if "quartet" in tasks and {(fam, "trio", seed), (fam, "drums_bass", seed)} <= set(clips):
            c, db = clips[(fam, "trio", seed)], clips[(fam, "drums_bass", seed)]
            sets.append((fam, "quartet", seed, [*((n, c["stems"][n]) for n in c["instruments"]),
                                                ("drums", db["stems"]["drums"])]))
    out = []
    for fam, task, seed, stems in sets:
        loaded = [io.load(data / p) for _, p in stems]
        n = min(y.shape[1] for y, _ in loaded)
        refs = np.stack([y.mean(axis=0)[:n] for y, _ in loaded])
        out.append({"family": fam, "task": task, "seed": seed, "sr": loaded[0][1],
                    "mix": refs.sum(axis=0, keepdims=True).astype(np.float32),
                    "refs": refs, "names": [name for name, _ in stems]})
    return out


def groups_of(data: Path) -> dict[str, set[str]]:
    manifest = json.loads((data / "manifest.json").read_text())
    return {f: set(v["groups"]) for f, v in manifest["families"].items() if "groups" in v}


# ------------------------------------------------------------------------- methods


def oracle_groups(W: np.ndarray, H: np.ndarray, powers: np.ndarray) -> np.ndarray:
    """Group components by the references: each to the source whose power it takes most of.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)]
    H : np.ndarray [shape=(k, n_bins)]
    powers : np.ndarray [shape=(n_sources, n_frames, n_bins)]
        The references' power spectrograms on the factorization's grid.

    Returns
    -------
    np.ndarray [shape=(k,)], int
        The source of every component: the one maximising the reference power its soft
        mask ``W[:, c] H[c] / (W H)`` takes (an oracle grouping, greedy: a reference
        point for the grouping step, not an upper bound). A source no component chose gets the
        component with the largest share of its power among those whose source has
        others, so that no stem is empty.
    """
    W, H = np.asarray(W, dtype=np.float64), np.asarray(H, dtype=np.float64)
    total = W @ H + 1e-12
    taken = np.stack([((W.T @ (P / total)) * H).sum(axis=1) for P in powers], axis=1)
    labels = np.argmax(taken, axis=1)
    share = taken / np.maximum(taken.sum(axis=1, keepdims=True), 1e-300)
    for j in range(taken.shape[1]):
        if not (labels == j).any():
            spare = [c for c in range(labels.size) if (labels == labels[c]).sum() > 1]
            if spare:
                labels[max(spare, key=lambda c: share[c, j])] = j
    return labels


def run_pipeline(item: dict, k: int, oracle: bool = False) -> np.ndarray:
    """librosa + scikit-learn blind NMF, MFCC k-means grouping, Wiener masks; (S, n).

    ``oracle``: the components grouped by the references (:func:`oracle_groups`) instead.
    """
    import librosa
    from sklearn.cluster import KMeans
    from sklearn.decomposition import NMF

    y, sr, S = item["mix"][0], item["sr"], len(item["names"])
    X = librosa.stft(y, n_fft=2048, hop_length=512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(n_components=k, beta_loss="kullback-leibler", solver="mu", max_iter=200,
                    random_state=0)
        W = model.fit_transform(np.abs(X).T)
    H = model.components_
    if oracle:
        powers = np.stack([np.abs(librosa.stft(r, n_fft=2048, hop_length=512)).T ** 2
                           for r in item["refs"]])
        labels = oracle_groups(W, H, powers)
    else:
        mel = librosa.feature.melspectrogram(S=H.T ** 2, sr=sr, n_mels=40)
        feats = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=np.max), n_mfcc=13)[1:].T
        labels = KMeans(n_clusters=S, n_init=10, random_state=0).fit_predict(feats)
    models = [(W[:, labels == g] @ H[labels == g]) ** 2 for g in range(S)]
    total = sum(models) + 1e-10
    return np.stack([librosa.istft((m / total).T * X, hop_length=512, length=y.shape[0])
                     for m in models])


def parse_candidate(text: str) -> dict:
    """Parse ``p:<margin>:<kh>x<kp>:<per source>[:<grouping>[:<option>...]]``.

    Options: ``plain``: the harmonic components are grouped into S - 1 sources (no extra group
    for the drums); ``f0.05``: harmonic atoms flatter than 0.05 join the drums (none
    without it); ``r30``: 30 joint iterations on the whole spectrogram after the split
    (none without it); ``m1.5``: masks of exponent 1.5 (1 without it); ``t0.02``:
    percussive atoms more tonal than flatness 0.02 and mostly above 200 Hz join the
    harmonic ones (none without it). Returns factorize_percussive's keyword arguments
    and ``power``.
    """
    _, margin, kernel, per, *rest = text.split(":")
    kh, kp = kernel.split("x")
    flat = [float(r[1:]) for r in rest if r.startswith("f")]
    refine = [int(r[1:]) for r in rest if r.startswith("r") and r[1:].isdigit()]
    power = [float(r[1:]) for r in rest if r.startswith("m")]
    tonal = [float(r[1:]) for r in rest if r.startswith("t") and r[1:2].isdigit()]
    return {"margin": float(margin), "kernel": (int(kh), int(kp)), "per_source": int(per),
            "grouping": rest[0] if rest else "timbre", "extra": "plain" not in rest,
            "flatness": flat[0] if flat else None, "refine": refine[0] if refine else 0,
            "power": power[0] if power else 1.0, "tonal": tonal[0] if tonal else None}


def run_candidate(item: dict, cand: dict, oracle: bool = False) -> np.ndarray:
    """Percussion-aware factorization with ``cand``'s settings, stems as ``separate``'s.

    ``oracle``: the components grouped by the references (:func:`oracle_groups`).
    """
    y, sr, S = item["mix"], item["sr"], len(item["names"])
    cfg = STFTConfig.for_sample_rate(sr)
    X = stft(y, cfg)
    V = model_spectrogram(X, 1.0, scale=max_magnitude(X))
    V /= np.float32(V.mean(dtype=np.float64))
    fit = factorize_percussive(
        V, cand["per_source"] * S, S, sr=sr, n_fft=cfg.n_fft, kernel=cand["kernel"],
        margin=cand["margin"], grouping=cand["grouping"], extra_cluster=cand["extra"],
        flatness=cand["flatness"], refine_iter=cand["refine"], tonal=cand["tonal"],
        beta=1.0, max_iter=200, tol=1e-4, random_state=0, warn=False,
    )
    groups = fit.groups
    if oracle:
        powers = np.stack([np.abs(stft(r[None], cfg))[0].T ** 2 for r in item["refs"]])
        labels = oracle_groups(fit.W, fit.H, powers)
        groups = {str(j): np.flatnonzero(labels == j).tolist() for j in range(S)
                  if (labels == j).any()}
    M = GroupMasks(fit.W, fit.H, groups, kind="soft", power=cand["power"])(0, X.shape[2])
    return np.stack([istft(M[g].T[None] * X, cfg, y.shape[1])[0] for g in range(M.shape[0])])


def parse_blind(text: str) -> tuple[int, str, str, float]:
    """Parse ``b:<components per source>:<ward|kmeans|register>:<mag|pow>[:m<mask power>]``."""
    _, per, how, scale, *rest = text.split(":")
    if (how not in ("ward", "kmeans", "register") or scale not in ("mag", "pow")
            or len(rest) > 1 or (rest and not rest[0].startswith("m"))):
        raise ValueError(
            f"{text}: expected b:<per source>:<ward|kmeans|register>:<mag|pow>[:m<power>]")
    return int(per), how, scale, float(rest[0][1:]) if rest else DEFAULT_MASK_POWER


_BLIND_FIT: dict = {}  # the last (id(item), per source) -> (separate's result, mixture STFT)


def run_blind(item: dict, cand: str) -> np.ndarray:
    """The blind default's factorization, grouped as ``cand`` says (:func:`parse_blind`)."""
    from nmfsep.grouping import group_components

    per, how, scale, power = parse_blind(cand)
    y, sr, S = item["mix"], item["sr"], len(item["names"])
    key = (id(item), per)
    if key not in _BLIND_FIT:  # one factorization for every grouping of it
        _BLIND_FIT.clear()
        res = separate(y, sr, n_sources=S, n_components=per * S, random_state=0)
        _BLIND_FIT[key] = (res, stft(y, res.stft))
    res, X = _BLIND_FIT[key]
    # the product's groupings, given the atoms whose features are wanted: "timbre" takes
    # the MFCCs of the atoms it is given, "kmeans" of their squares
    H = {("ward", "mag"): res.H, ("ward", "pow"): res.H ** 2,
         ("kmeans", "mag"): np.sqrt(res.H), ("kmeans", "pow"): res.H,
         ("register", "mag"): res.H, ("register", "pow"): res.H ** 2}[how, scale]
    method = {"ward": "timbre", "kmeans": "kmeans", "register": "register"}[how]
    groups = group_components(res.W, H, S, method=method, sr=sr, n_fft=res.stft.n_fft)
    M = GroupMasks(res.W, res.H, groups, kind="soft", power=power)(0, X.shape[2])
    return np.stack([istft(M[g].T[None] * X, res.stft, y.shape[1])[0]
                     for g in range(M.shape[0])])


def run_oracle_mask(item: dict) -> np.ndarray:
    """The ideal ratio mask (``bench_separation.run_oracle``) of a band or duo; (S, n)."""
    refs = dict(zip(item["names"], item["refs"], strict=True))
    stems, _ = run_oracle({"sr": item["sr"], "mix": item["mix"], "names": item["names"],
                           "stems": {n: r[None] for n, r in refs.items()}})
    return np.stack([stems[n][0] for n in item["names"]])


def run_method(item: dict, method: str) -> np.ndarray:
    S = len(item["names"])
    if method == "oracle":
        return run_oracle_mask(item)
    if method.startswith("grouped:pipeline:"):
        return run_pipeline(item, int(method.split(":")[2]), oracle=True)
    if method.startswith("grouped:p:"):
        return run_candidate(item, parse_candidate(method.removeprefix("grouped:")), oracle=True)
    if method.startswith("pipeline:"):
        return run_pipeline(item, int(method.split(":")[1]))
    if method.startswith("p:"):
        return run_candidate(item, parse_candidate(method))
    if method.startswith("b:"):
        return run_blind(item, method)
    # "today": the blind default; "percussive": separate(..., percussive=True); "auto"
    res = separate(item["mix"], item["sr"], n_sources="auto" if method == "auto" else S,
                   random_state=0, percussive=method == "percussive" and S >= 2)
    return np.stack([s[0] for s in res.stems.values()])


def score(bss: BSSEval, ests: np.ndarray, n_refs: int) -> list[float]:
    """SDR of each reference under the one-to-one matching with the best mean SDR.

    With fewer estimates than references, a reference left without one gets the SDR of
    the estimate that serves it best (shared with another reference).
    """
    E, S = ests.shape[0], n_refs
    M = np.array([[bss.scores(e, j)[0] for j in range(S)] for e in ests])  # (est, ref)
    if E >= S:
        best = max(itertools.permutations(range(E), S),
                   key=lambda p: sum(M[p[j], j] for j in range(S)))
        return [float(M[best[j], j]) for j in range(S)]
    refs = max(itertools.permutations(range(S), E),
               key=lambda p: sum(M[e, p[e]] for e in range(E)))
    out = [float(M[:, j].max()) for j in range(S)]
    for e, j in enumerate(refs):
        out[j] = float(M[e, j])
    return out


# ------------------------------------------------------------------------- report


def heldout_threshold(guesses: list[dict], families: list[str], lineage: dict) -> None:
    """Drums threshold chosen on unrelated families (midpoint of the gap), held-out accuracy."""
    print("drums share threshold, leave one family out:")
    for held in families:
        dev = [g for g in guesses if g["family"] != held
               and not lineage.get(g["family"], set()) & lineage.get(held, set())]
        low = max((g["share"] for g in dev if g["task"] not in DRUM_TASKS), default=0.0)
        high = min((g["share"] for g in dev if g["task"] in DRUM_TASKS), default=1.0)
        t = (low + high) / 2
        test = [g for g in guesses if g["family"] == held]
        ok = sum((g["share"] >= t) == (g["task"] in DRUM_TASKS) for g in test)
        print(f"  {held:10s} chosen {t:.3f} (gap {low:.3f}..{high:.3f}); held out: {ok} of "
              f"{len(test)} right")


def median(rows: list[dict], method: str, family: str | None, task: str,
           source: str | None = None) -> float:
    vals = [v for r in rows if r["method"] == method and r["task"] == task
            and (family is None or r["family"] == family)
            for n, v in zip(r["names"], r["sdr"], strict=True) if source in (None, n)]
    return float(np.median(vals)) if vals else float("nan")


def best_pipeline(rows: list[dict], family: str, task: str, prefix: str = "pipeline") -> str:
    ks = [f"{prefix}:{k}" for k in PIPE_KS
          if any(r["method"] == f"{prefix}:{k}" and r["task"] == task for r in rows)] or ["-:-"]
    return max(ks, key=lambda m: np.nan_to_num(median(rows, m, family, task), nan=-1e9))


def select(rows: list[dict], cands: list[str], families: list[str], lineage: dict) -> dict:
    """Leave one family out: the candidate best on the families unrelated to the held-out one.

    A family's figure is the mean of its median SDR over the tasks the candidates ran on.
    """
    tasks = sorted({r["task"] for r in rows if r["method"] in cands})
    chosen = {}
    for held in families:
        others = [f for f in families if f != held and not lineage.get(f, set())
                  & lineage.get(held, set())]
        def dev(c: str, others: list[str] = others) -> float:
            per_family = []  # families without these tasks (AVL has no duos) are left out
            for f in others:
                meds = [median(rows, c, f, t) for t in tasks]
                if any(np.isfinite(meds)):
                    per_family.append(np.nanmean(meds))
            return float(np.median(per_family)) if per_family else -np.inf
        chosen[held] = {"candidate": max(cands, key=dev), "chosen_on": others}
    return chosen


def report(rows: list[dict], families: list[str], cands: list[str], chosen: dict | None) -> dict:
    out: dict = {}
    for task in ("band", "duo", "trio", "quartet"):
        if not any(r["task"] == task for r in rows):
            continue
        methods = [m for m in ("today", "percussive", "auto")
                   if any(r["method"] == m and r["task"] == task for r in rows)]
        methods += sorted({r["method"] for r in rows if r["task"] == task
                           and (r["method"] == "oracle" or r["method"].startswith("grouped:p:"))})
        grouped_pipe = any(r["method"].startswith("grouped:pipeline:") for r in rows)
        methods += cands
        drums = task in DRUM_TASKS
        print(f"\n## {task}: median SDR (dB)" + ("; drums / bass stems in brackets" * drums))
        print(f"{'family':10s} {'pipeline(k)':>16s} " + " ".join(f"{m:>22s}" for m in methods)
              + ("  held-out choice" if chosen else ""))
        for fam in families:
            if not any(r["family"] == fam and r["task"] == task for r in rows):
                continue
            pipe = best_pipeline(rows, fam, task)
            cell = {"pipeline": median(rows, pipe, fam, task), "pipeline_k": pipe}
            if grouped_pipe:  # the pipeline's factorization grouped by the references, best k
                gp = best_pipeline(rows, fam, task, "grouped:pipeline")
                cell["grouped_pipeline_k"] = gp
                for src in (None, "drums", "bass") if drums else (None,):
                    cell["grouped:pipeline" + (f"_{src}" if src else "")] = median(
                        rows, gp, fam, task, src)
            for m in methods:
                cell[m] = median(rows, m, fam, task)
                if drums:
                    cell[m + "_drums"] = median(rows, m, fam, task, "drums")
                    cell[m + "_bass"] = median(rows, m, fam, task, "bass")
            if drums:
                cell["pipeline_drums"] = median(rows, pipe, fam, task, "drums")
                cell["pipeline_bass"] = median(rows, pipe, fam, task, "bass")

            def fmt(m: str, cell: dict = cell, drums: bool = drums) -> str:
                d = (f" [{cell[m + '_drums']:5.1f} /{cell[m + '_bass']:5.1f}]"
                     if drums else "")
                return f"{cell[m]:6.2f}{d}"
            line = f"{fam:10s} {fmt('pipeline'):>9s} ({pipe.split(':')[1]:>2s}) " + " ".join(
                f"{fmt(m):>22s}" for m in methods)
            if grouped_pipe:
                line += f"  grouped:pipeline ({cell['grouped_pipeline_k'].split(':')[-1]}): " \
                    + fmt("grouped:pipeline")
            if chosen and fam in chosen and np.isfinite(cell.get(chosen[fam]["candidate"], np.nan)):
                c = chosen[fam]["candidate"]
                cell["heldout"], cell["heldout_drums"] = cell.get(c), cell.get(c + "_drums")
                cell["heldout_candidate"] = c
                line += f"  {c}: {fmt(c)}"
            auto = [r for r in rows if r["method"] == "auto" and r["task"] == task
                    and r["family"] == fam]
            if auto:
                cell["auto_right"] = sum(r["n_est"] == len(r["names"]) for r in auto)
                line += f"  auto count right {cell['auto_right']} of {len(auto)}"
            print(line)
            out[f"{task}/{fam}"] = cell
    return out


def parse_args() -> argparse.Namespace:
    """The command line of this benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "families")
    ap.add_argument("--families", default="",
                    help="comma-separated subset (default: every family of the manifest)")
    ap.add_argument("--tasks", default="band,duo", help="band, duo, trio, quartet")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cross", action="store_true",
                    help="bands of every drums + bass seed with every piano seed (9 a family)")
    ap.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES))
    ap.add_argument("--methods", default="today,percussive",
                    help="fixed methods besides the pipeline and the candidates")
    ap.add_argument("--ceilings", action="store_true",
                    help="also the oracle mask and the grouping ceilings (grouped:...)")
    ap.add_argument("--no-pipeline", action="store_true",
                    help="compute no pipeline rows (those of --reuse are kept)")
    ap.add_argument("--select", action="store_true")
    ap.add_argument("--auto", action="store_true",
                    help="also separate with n_sources='auto' (and run today's blind on trios)")
    ap.add_argument("--sources", action="store_true",
                    help="also measure nmfsep.sources.suggest_sources on every mixture")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--reuse", type=Path, default=None,
                    help="a --json of an earlier run: its rows are kept, not recomputed")
    return ap.parse_args()


def guess_sources(item: dict) -> dict:
    """nmfsep.sources.suggest_sources on one mixture, beside the true number of sources."""
    from nmfsep.sources import suggest_sources

    s = suggest_sources(item["mix"], item["sr"])
    print(f"  sources: true {len(item['names'])}, suggested {s.n_sources} "
          f"({s.confidence:.2f})", file=sys.stderr, flush=True)
    return {"family": item["family"], "task": item["task"], "seed": item["seed"],
            "true": len(item["names"]), "suggested": s.n_sources, "confidence": s.confidence,
            "drums": s.drums, "share": s.share, "votes": s.to_dict()["votes"]}


def report_sources(guesses: list[dict], families: list[str], data: Path) -> None:
    """Print how often the suggested number of sources (and drums or not) was right."""
    right = sum(g["true"] == g["suggested"] for g in guesses)
    drums = sum(g["drums"] == (g["task"] in DRUM_TASKS) for g in guesses)
    print(f"\nnumber of sources: {right} of {len(guesses)} right; drums or not: {drums} "
          f"of {len(guesses)} right")
    for task in sorted({g["task"] for g in guesses}):
        mine = [g for g in guesses if g["task"] == task]
        print(f"  {task}: {sum(g['true'] == g['suggested'] for g in mine)} of {len(mine)}"
              f" right, suggested {sorted(g['suggested'] for g in mine)}")
    heldout_threshold(guesses, families, groups_of(data))


def main() -> None:
    args = parse_args()
    manifest = json.loads((args.data / "manifest.json").read_text())
    families = (args.families.split(",") if args.families else
                [f for f, v in manifest["families"].items() if "groups" in v])  # no librivox
    cands = [c for c in args.candidates.split(",") if c]
    methods = [m for m in args.methods.split(",") if m] + cands
    methods += ["auto"] if args.auto else []
    methods += [f"pipeline:{k}" for k in PIPE_KS]
    if args.ceilings:
        methods += ["oracle", f"grouped:{PRODUCT}", *(f"grouped:pipeline:{k}" for k in PIPE_KS)]
    items = load_items(args.data, families, args.seeds, args.tasks.split(","), args.cross)
    if not items:
        sys.exit(f"no {args.tasks} mixtures of {families} in {args.data}: see its manifest.json "
                 "(python benchmarks/render.py --what families renders them)")
    rows, guesses, t0 = [], [], time.perf_counter()
    old = json.loads(args.reuse.read_text())["rows"] if args.reuse else []
    for item in items:
        bss = BSSEval(item["refs"])
        trio = ["today", "auto"] if args.auto else []  # trios: --sources, --auto and b:
        for m in methods if item["task"] != "trio" else [
                m for m in methods if m in trio or m.startswith("b:")]:
            banded = m.startswith(("p:", "grouped:p:")) or m == "percussive"
            if banded and item["task"] not in DRUM_TASKS:
                continue
            key = (item["family"], item["task"], item["seed"], m)
            done = [r for r in old if (r["family"], r["task"], r["seed"], r["method"]) == key]
            if done:
                rows.append(done[0])
                continue
            if m.startswith("pipeline:") and args.no_pipeline:
                continue
            ests = run_method(item, m)
            sdr = score(bss, ests, len(item["names"]))
            rows.append({"family": item["family"], "task": item["task"], "seed": item["seed"],
                         "method": m, "names": item["names"], "sdr": sdr,
                         "n_est": int(ests.shape[0])})
            print(f"[{time.perf_counter() - t0:5.0f}s] {item['family']} {item['task']} "
                  f"{item['seed']} {m}: {np.round(sdr, 2).tolist()}", file=sys.stderr, flush=True)
        if args.sources:
            guesses.append(guess_sources(item))
    chosen = select(rows, cands, families, groups_of(args.data)) if args.select and cands else None
    summary = report(rows, families, cands, chosen)
    if guesses:
        report_sources(guesses, families, args.data)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary, "chosen": chosen,
                                         "sources": guesses}, indent=1))

if __name__ == "__main__":
    main()
