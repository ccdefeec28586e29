"""Held-out separation benchmark over independent sound families (issue 13).

Reads the set ``python benchmarks/render.py --what families`` writes (default
``benchmarks/data/families``): per sound family (FluidR3, MuseScore General, TimGM6mb,
AVL acoustic drum kit, OPL3 FM synthesis; see ``manifest.json``'s ``families``) the
tasks piano + flute (``duo``), piano + flute + bass (``trio``), drums + bass
(``drums_bass``) and real LibriVox speech over a background from the family
(``speech``), a few mixtures each, and one training clip per instrument and family
whose melody, key and register differ from every mixture's (test parts moved up 2
semitones, training parts down 2, other seeds).

For every family x task it reports the median BSS Eval SDR (mir_eval, sources in their
known order, median over mixtures x sources) of

* the product: ``learn_dictionary`` on the training clips then ``separate``, with the
  keyword arguments of a candidate (``--learn JSON`` / ``--separate JSON`` give the
  candidate ``product``, by default nmfsep's defaults; ``--candidate NAME=JSON`` with
  ``{"learn": {...}, "separate": {...}}`` adds more);
* the pipeline: librosa STFT + one scikit-learn ``NMF(solver="mu")`` per source, Wiener
  masks (as in ``bench_separation.run_sklearn``), with the best k in {8, 16, 32} and β in
  {KL, IS} for that family x task in hindsight (a strong baseline);
* the dictionary ceiling: the ``product`` candidate with dictionaries learned from the
  test stems themselves;
* the oracle ideal ratio mask.

``--select`` does leave-one-family-out: for each held-out family the candidate with the
best median (over the per-family x task medians) on the families sharing no sample
lineage with it (``groups`` in the manifest) is chosen and reported on the held-out
family. That held-out figure is the headline.

Pipeline, ceiling and oracle figures do not depend on the candidates; they are stored in
``--refs`` (keyed by the manifest's render command) and reused by later runs unless
``--fresh``.

``--reuse OLD.json`` (repeatable) takes the rows of a candidate from an earlier ``--json``
output of the same render when that output has a candidate with literally the same
``learn`` and ``separate`` keywords, for the families and tasks it has rows of (only for
candidates whose code path did not change since: ``{}`` means the defaults of the day, so
spell out a default that changed); with
``--reuse-ceiling`` its ceiling rows too (which that run's product candidate made; say
so when reporting them). Issue 13's adaptation runs, which reuse the fixed-atom rows of
``sel1.json`` (its candidate ``ps2`` is today's default augmentation), are in the
docstring of ``nmfsep/adaptation.py``.

    nice python benchmarks/render.py --what families
    nice python benchmarks/bench_heldout.py --json benchmarks/results/heldout.json
    nice python benchmarks/bench_heldout.py --select \\
        --candidate k32='{"learn": {"n_components": 32}}' \\
        --candidate p2='{"separate": {"mask_power": 2}}'
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
import warnings
import zlib
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_separation import ROOT, bss_sdr, mono, run_oracle  # noqa: E402

from nmfsep import io  # noqa: E402
from nmfsep.dictionary import DEFAULT_ATOMS_PER_SOURCE, learn_dictionary  # noqa: E402
from nmfsep.separate import separate  # noqa: E402

PIPE_KS = (8, 16, 32)
PIPE_BETAS = {"KL": "kullback-leibler", "IS": "itakura-saito"}
# tasks that share training clips run in one work unit (learned once per family)
UNITS = (("duo", "trio"), ("drums_bass",), ("speech",))

# ------------------------------------------------------------------------- data


def load_items(data: Path, family: str, tasks: tuple[str, ...]) -> list[dict]:
    """The mixtures of ``family`` for ``tasks``, with their stems and training clip paths."""
    manifest = json.loads((data / "manifest.json").read_text())
    out = []
    for c in manifest["clips"]:
        if c["kind"] != "mixture" or c.get("family") != family or c["task"] not in tasks:
            continue
        mix, sr = io.load(data / c["mix"])
        out.append({
            "family": family, "task": c["task"], "seed": c["seed"], "sr": sr, "mix": mix,
            "stems": {n: io.load(data / p)[0] for n, p in c["stems"].items()},
            "names": list(c["instruments"]), "train_files": dict(c["train"]),
        })
    return out


def attach_training(items: list[dict], data: Path) -> None:
    """``item["train"][name] = (y, sr)``: the training clip at the mixture's rate."""
    loaded: dict[tuple[str, int], tuple[np.ndarray, int]] = {}
    for item in items:
        item["train"] = {}
        for name, path in item["train_files"].items():
            key = (path, item["sr"])
            if key not in loaded:
                loaded[key] = io.load(data / path, sr=item["sr"])
            item["train"][name] = loaded[key]


# ------------------------------------------------------------------------- methods


def learn(clips: list[tuple[np.ndarray, int]], name: str, kwargs: dict):
    """``learn_dictionary`` with ``kwargs``; n_components defaults to the product's default."""
    kw = dict(kwargs)
    params = inspect.signature(learn_dictionary).parameters
    if "n_components" not in kw and params["n_components"].default is inspect.Parameter.empty:
        kw["n_components"] = DEFAULT_ATOMS_PER_SOURCE
    return learn_dictionary(clips, name, **kw)


def run_product(item: dict, cand: dict, cache: dict, *, ceiling: bool = False) -> dict:
    """Separate ``item`` with dictionaries learned from its training clips (or its stems)."""
    dicts = []
    for name in item["names"]:
        if ceiling:
            dicts.append(learn([(item["stems"][name], item["sr"])], name, cand["learn"]))
            continue
        key = (json.dumps(cand["learn"], sort_keys=True), item["train_files"][name], item["sr"])
        if key not in cache:
            cache[key] = learn([item["train"][name]], name, cand["learn"])
        dicts.append(cache[key])
    res = separate(item["mix"], item["sr"], dictionaries=dicts, **cand["separate"])
    return res.stems


def pipeline_atoms(y: np.ndarray, k: int, beta: str, max_iter: int) -> np.ndarray:
    import librosa
    from sklearn.decomposition import NMF

    S = np.abs(librosa.stft(mono(y), n_fft=2048, hop_length=512)).T
    if beta == "itakura-saito":  # IS needs V > 0 (digital silence); scikit-learn raises
        S = S + 1e-8 * S.max()
    model = NMF(n_components=k, beta_loss=beta, solver="mu", max_iter=max_iter, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(S)
    return model.components_


def cached_atoms(job: dict, path: str, y: np.ndarray, sr: int, k: int, beta: str) -> np.ndarray:
    """Pipeline atoms of one training clip, kept on disk across processes and runs."""
    f = Path(job["cache_dir"]) / f"{path.replace('/', '_')}-{sr}-{beta[:2]}-{k}.npy"
    if f.exists():
        return np.load(f)
    H = pipeline_atoms(y, k, beta, job["max_iter"])
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, H)
    tmp.replace(f)
    return H


def run_pipeline(item: dict, k: int, beta: str, job: dict) -> dict:
    """librosa + scikit-learn: per-source NMF atoms, fixed-atom NMF of the mixture, Wiener."""
    import librosa
    from sklearn.decomposition import non_negative_factorization

    comps = [cached_atoms(job, item["train_files"][n], item["train"][n][0], item["sr"], k, beta)
             for n in item["names"]]
    max_iter = job["max_iter"]
    H = np.concatenate(comps, axis=0)
    X = librosa.stft(mono(item["mix"]), n_fft=2048, hop_length=512)
    V = np.abs(X).T
    if beta == "itakura-saito":
        V = V + 1e-8 * V.max()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W, _, _ = non_negative_factorization(
            V, H=H, n_components=H.shape[0], update_H=False, beta_loss=beta, solver="mu",
            max_iter=max_iter, random_state=0)
    models = [(W[:, i * k:(i + 1) * k] @ H[i * k:(i + 1) * k]) ** 2 for i in range(len(comps))]
    total = sum(models) + 1e-10
    n = item["mix"].shape[1]
    return {name: librosa.istft((m / total).T * X, hop_length=512, length=n)[None]
            for name, m in zip(item["names"], models, strict=True)}


def sdrs(item: dict, stems: dict) -> list[float]:
    refs = np.stack([mono(item["stems"][n]) for n in item["names"]])
    ests = np.stack([mono(stems[n]) for n in item["names"]])
    return [float(v) for v in bss_sdr(refs, ests)]


def ref_methods() -> list[str]:
    """The references stored in ``--refs`` (they depend on neither nmfsep nor a candidate)."""
    return ["oracle"] + [f"pipeline {b} k={k}" for b in PIPE_BETAS for k in PIPE_KS]


def estimate(item: dict, method: str, job: dict, cache: dict) -> dict:
    """The stems of one method: ``cand NAME``, ``ceiling``, ``oracle``, ``pipeline B k=K``."""
    if method == "oracle":
        return run_oracle(item)[0]
    if method == "ceiling":
        return run_product(item, job["product"], cache, ceiling=True)
    if method.startswith("cand "):
        (cand,) = [c for c in job["candidates"] if c["name"] == method[5:]]
        return run_product(item, cand, cache)
    _, b, kk = method.split()
    return run_pipeline(item, int(kk[2:]), PIPE_BETAS[b], job)


def run_unit(job: dict) -> list[dict]:
    """One family x task group: every candidate and every missing reference, every mixture."""
    t0 = time.perf_counter()
    items = load_items(Path(job["data"]), job["family"], job["tasks"])
    attach_training(items, Path(job["data"]))
    cache: dict = {}
    rows = []
    for item in items:
        ident = f"{item['family']}/{item['task']}/seed{item['seed']:03d}"
        base = {"family": item["family"], "task": item["task"], "seed": item["seed"],
                "names": item["names"], "id": ident}
        todo = [f"cand {c['name']}" for c in job["candidates"] if c["name"] not in job["reused"]]
        todo += [] if job["reuse_ceiling"] else ["ceiling"]
        todo += [m for m in ref_methods() if f"{ident}|{m}" not in job["have"]]
        for method in todo:
            rows.append({**base, "method": method,
                         "sdr": sdrs(item, estimate(item, method, job, cache))})
    print(f"  {job['family']:10s} {','.join(job['tasks']):9s} {len(items)} mixtures "
          f"{time.perf_counter() - t0:5.0f} s", file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------- report


def medians(rows: list[dict]) -> dict[tuple[str, str, str], float]:
    """(method, family, task) -> median SDR over mixtures x sources."""
    pool: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in rows:
        pool[(r["method"], r["family"], r["task"])].extend(r["sdr"])
    return {key: float(np.median(v)) for key, v in pool.items()}


def select(med: dict, cands: list[str], families: dict, cells: list[tuple[str, str]]) -> dict:
    """Leave-one-family-out: held-out family -> (chosen candidate, families it was chosen on)."""
    out = {}
    for held in sorted({f for f, _ in cells}):
        groups = set(families[held]["groups"])
        others = [f for f in sorted({f for f, _ in cells})
                  if f != held and not groups & set(families[f]["groups"])]
        scores = {c: float(np.median([med[(f"cand {c}", f, t)] for f, t in cells
                                      if f in others]))
                  for c in cands} if others else {}
        best = max(scores, key=scores.get) if scores else cands[0]
        out[held] = {"candidate": best, "chosen_on": others, "scores": scores}
    return out


def report(rows: list[dict], cands: list[str], families: dict, do_select: bool) -> dict:
    med = medians(rows)
    order = {"duo": 0, "trio": 1, "drums_bass": 2, "speech": 3}
    cells = sorted({(r["family"], r["task"]) for r in rows},
                   key=lambda c: (list(families).index(c[0]), order.get(c[1], 9)))
    chosen = select(med, cands, families, cells) if do_select else {
        f: {"candidate": cands[0], "chosen_on": [], "scores": {}} for f, _ in cells}
    pipes = [m for m in ref_methods() if m.startswith("pipeline")]
    table = []
    head = "held-out product" if do_select else f"product ({cands[0]})"
    print(f"\n| family | task | {head} | candidate | pipeline best | (k, β) | ceiling | "
          "oracle | product − pipeline | ceiling − product |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for fam, task in cells:
        c = chosen[fam]["candidate"]
        prod = med[(f"cand {c}", fam, task)]
        best = max(pipes, key=lambda m: med[(m, fam, task)])
        pipe, ceil, orac = med[(best, fam, task)], med[("ceiling", fam, task)], \
            med[("oracle", fam, task)]
        table.append({"family": fam, "task": task, "candidate": c, "product": prod,
                      "pipeline": pipe, "pipeline_setting": best, "ceiling": ceil,
                      "oracle": orac})
        print(f"| {fam} | {task} | {prod:.2f} | {c} | {pipe:.2f} | {best[9:]} | {ceil:.2f} | "
              f"{orac:.2f} | {prod - pipe:+.2f} | {ceil - prod:+.2f} |")
    if len(cands) > 1:
        print("\nevery candidate (median SDR, dB):\n")
        print("| family | task | " + " | ".join(cands) + " |")
        print("|---|---|" + "---|" * len(cands))
        for fam, task in cells:
            vals = " | ".join(f"{med[(f'cand {c}', fam, task)]:.2f}" for c in cands)
            print(f"| {fam} | {task} | {vals} |")
    if do_select:
        print("\nselection (leave-one-family-out):")
        for fam, s in chosen.items():
            print(f"  held out {fam}: chose {s['candidate']} on {', '.join(s['chosen_on'])}")
    return {"table": table, "selection": chosen if do_select else None,
            "medians": [{"method": m, "family": f, "task": t, "sdr_median": v}
                        for (m, f, t), v in sorted(med.items())]}


# ------------------------------------------------------------------------- main


def parse_candidates(args: argparse.Namespace) -> list[dict]:
    cands = [{"name": "product", "learn": json.loads(args.learn),
              "separate": json.loads(args.separate)}]
    for text in args.candidate:
        name, _, spec = text.partition("=")
        spec = json.loads(spec or "{}")
        unknown = set(spec) - {"learn", "separate"}
        if not name or unknown:
            raise SystemExit(f"--candidate NAME=JSON with keys learn/separate, got {text!r}")
        cands.append({"name": name, "learn": spec.get("learn", {}),
                      "separate": spec.get("separate", {})})
    names = [c["name"] for c in cands]
    if len(set(names)) != len(names):
        raise SystemExit(f"candidate names must differ, got {names}")
    return cands


def reused_rows(args: argparse.Namespace, cands: list[dict], render: str,
                families: list[str]) -> list[dict]:
    """Rows of ``--reuse`` for candidates with identical keywords (and the ceiling)."""
    if not args.reuse:
        return []
    rows: dict[tuple, dict] = {}
    for path in args.reuse:
        old = json.loads(path.read_text())
        if old.get("render") != render:
            raise SystemExit(f"--reuse {path} was rendered by another command")
        rename = {}
        for c in cands:
            for o in old["candidates"]:
                if (o["learn"], o["separate"]) == (c["learn"], c["separate"]):
                    rename[f"cand {o['name']}"] = f"cand {c['name']}"
        if args.reuse_ceiling and path == args.reuse[0]:
            rename["ceiling"] = "ceiling"
        for r in old["rows"]:
            if r["method"] in rename and r["family"] in families:
                new = {**r, "method": rename[r["method"]]}
                rows.setdefault((new["id"], new["method"]), new)
        print(f"reused from {path}: {sorted(set(rename.values()))}", file=sys.stderr)
    tasks = args.tasks.split(",") if args.tasks else None
    return [r for r in rows.values() if tasks is None or r["task"] in tasks]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "families")
    ap.add_argument("--learn", default="{}", help="JSON kwargs of learn_dictionary (product)")
    ap.add_argument("--separate", default="{}", help="JSON kwargs of separate (product)")
    ap.add_argument("--candidate", action="append", default=[],
                    help='NAME={"learn": {...}, "separate": {...}} (repeatable)')
    ap.add_argument("--select", action="store_true", help="leave-one-family-out selection")
    ap.add_argument("--families", default="", help="comma-separated subset (default all)")
    ap.add_argument("--max-iter", type=int, default=200, help="scikit-learn pipeline")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--refs", type=Path,
                    default=ROOT / "benchmarks" / "results" / "heldout_refs.json")
    ap.add_argument("--fresh", action="store_true", help="recompute the stored references")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--reuse", type=Path, action="append", default=[],
                    help="earlier --json output: reuse the rows of identical candidates "
                    "(repeatable; the first file that has a row gives it)")
    ap.add_argument("--reuse-ceiling", action="store_true",
                    help="with --reuse: also the ceiling rows of the first file")
    ap.add_argument("--tasks", default="", help="comma-separated subset (default all)")
    return ap.parse_args()


def make_jobs(args: argparse.Namespace, cands: list[dict], families: dict,
              chosen: list[str], stored: dict, cache_dir: Path, reused: list[dict]) -> list[dict]:
    """One work unit per family x group of tasks (:data:`UNITS`), minus what is reused."""
    found = defaultdict(set)  # (family, task) -> methods reused (runs store whole families)
    for r in reused:
        found[(r["family"], r["task"])].add(r["method"])
    jobs = []
    for fam in chosen:
        for tasks in UNITS:
            tasks = tuple(t for t in tasks if t in families[fam]["tasks"]
                          and (not args.tasks or t in args.tasks.split(",")))
            if tasks:
                jobs.append({"data": str(args.data), "family": fam, "tasks": tasks,
                             "candidates": cands, "product": cands[0],
                             "have": set(stored), "max_iter": args.max_iter,
                             "cache_dir": str(cache_dir),
                             "reused": {n[5:] for n in set.intersection(
                                 *(found[(fam, t)] for t in tasks)) if n.startswith("cand ")},
                             "reuse_ceiling": all("ceiling" in found[(fam, t)] for t in tasks)})
    return jobs


def main() -> None:
    args = parse_args()

    cands = parse_candidates(args)
    manifest = json.loads((args.data / "manifest.json").read_text())
    families = manifest["families"]
    chosen = [f for f in args.families.split(",") if f] or [
        f for f in families if f != "librivox"]
    stored = {}
    if args.refs.exists() and not args.fresh:
        saved = json.loads(args.refs.read_text())
        if saved.get("render") == manifest["command"]:
            stored = {f"{r['id']}|{r['method']}": r for r in saved["rows"]}
    key = zlib.crc32(f"{manifest['command']} {args.max_iter}".encode())
    cache_dir = args.refs.parent / f"heldout_atoms_{key:08x}"
    reused = reused_rows(args, cands, manifest["command"], chosen)
    jobs = make_jobs(args, cands, families, chosen, stored, cache_dir, reused)
    t0 = time.perf_counter()
    if args.jobs > 1:
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = "1"
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as ex:
            results = list(ex.map(run_unit, jobs))
    else:
        results = [run_unit(j) for j in jobs]
    new = [r for res in results for r in res] + reused
    refs = {k: v for k, v in stored.items()}
    refs.update({f"{r['id']}|{r['method']}": r for r in new if r["method"] in ref_methods()})
    args.refs.parent.mkdir(parents=True, exist_ok=True)
    args.refs.write_text(json.dumps({"render": manifest["command"], "rows": list(refs.values())}))
    rows = [r for r in new if r["method"] not in ref_methods()] + [
        r for r in refs.values() if r["family"] in chosen
        and (not args.tasks or r["task"] in args.tasks.split(","))]
    out = report(rows, [c["name"] for c in cands], families, args.select)
    wall = time.perf_counter() - t0
    print(f"\nwall {wall:.0f} s ({args.jobs} processes)", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out.update({"candidates": cands, "wall_s": wall, "render": manifest["command"],
                    "families": families, "rows": rows})
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
