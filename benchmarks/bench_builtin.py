"""Built-in dictionaries on sound families they were not built from (issue 15).

Reads the held-out set of ``benchmarks/bench_heldout.py`` (``render.py --what families``:
FluidR3, MuseScore General, TimGM6mb, the AVL Black Pearl kit; LibriVox speech; tasks
piano + flute, piano + flute + bass, drums + bass, speech over a background) and
separates every mixture three ways, median BSS Eval SDR over mixtures x sources:

* ``built-in``: the built-in dictionaries of the task's instruments (piano -> ``piano``,
  flute -> ``winds``, bass -> ``bass``, drums -> ``drums``, speech -> ``speech``) with
  ``separate``'s defaults. Held out by construction: a family that shares no sample
  lineage (``groups`` in the manifest) with the shipped fonts (FluidR3, MuseScore
  General, sf_GMbank) is separated with **the shipped files themselves** (timgm6mb, avl);
  the FluidR3-lineage families (fluidr3, musescore) with dictionaries built here by
  ``build_builtins.build`` (same recipe) from every font of ``build_builtins.FONTS``
  sharing no lineage with them (sf_GMbank, TimGM6mb, both AVL kits for the drums);
* ``own``: bench_heldout's product, dictionaries learned (nmfsep's defaults) on that
  family's own training clips (other melodies, keys and registers than the mixtures);
* ``blind``: ``separate(mix, sr, n_sources=S)`` with the defaults, stems matched to the
  references by the best permutation (optimistic for blind).

The best librosa + scikit-learn pipeline and the oracle mask come from bench_heldout's
stored references (``benchmarks/results/heldout_refs.json``) when they are there.
``--timing N`` instead times built-in separation of a 3-minute 44.1 kHz stereo song (as
``bench_e2e.py``) against the librosa + scikit-learn anchor of bench_e2e, N times each.

    nice python benchmarks/render.py --what families
    nice python benchmarks/bench_builtin.py --json benchmarks/results/builtin.json  # 25 min
    nice python benchmarks/bench_builtin.py --timing 3                  # 200 iterations
    nice python benchmarks/bench_builtin.py --timing 3 --timing-iterations '{}'   # defaults
    nice python benchmarks/bench_builtin.py --timing 2 --timing-iterations '{"_semi_pool": 1}'
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_builtins as bb  # noqa: E402
from bench_heldout import UNITS, attach_training, load_items, medians, run_product, sdrs  # noqa: E402
from bench_separation import ROOT, bss_sdr, mono  # noqa: E402

from nmfsep.builtins import load_builtin  # noqa: E402
from nmfsep.dictionary import Dictionary  # noqa: E402
from nmfsep.separate import separate  # noqa: E402

#: Task instrument -> built-in dictionary.
BUILTIN_OF = {"piano": "piano", "flute": "winds", "bass": "bass", "drums": "drums",
              "speech": "speech"}
LOFO_DIR = HERE / "results" / "builtin_lofo"
OWN = {"name": "product", "learn": {}, "separate": {}}


def heldout_fonts(groups: list[str]) -> tuple[str, ...] | None:
    """None: the shipped fonts share no lineage with ``groups``; else the fonts that don't."""
    if not {bb.FONTS[f].lineage for f in bb.SHIPPED_FONTS} & set(groups):
        return None
    return tuple(f for f, font in bb.FONTS.items() if font.lineage not in groups)


def builtin_dict(name: str, fonts: tuple[str, ...] | None, learn: dict) -> Dictionary:
    """The shipped built-in, or one built from ``fonts`` (None: the shipped fonts) with
    ``learn_dictionary`` options ``learn`` on top of the script's (cached on disk)."""
    if not learn and (fonts is None or name == "speech"):
        return load_builtin(name)
    fonts = bb.SHIPPED_FONTS if fonts is None else fonts
    tag = json.dumps(learn, sort_keys=True).replace(" ", "") if learn else ""
    folder = f"v{bb.SCRIPT_VERSION}-{'+'.join(fonts)}{tag}".replace("/", "_")
    path = LOFO_DIR / folder / f"{name}.npz"
    if path.exists():
        return Dictionary.load(path)
    d = bb.build(name, fonts, **learn)
    d.save(path, force=True, compress=True)
    return d


def blind_sdrs(item: dict) -> list[float]:
    """SDR of ``separate(n_sources=S)`` under the best permutation of its stems."""
    res = separate(item["mix"], item["sr"], n_sources=len(item["names"]))
    refs = np.stack([mono(item["stems"][n]) for n in item["names"]])
    ests = [mono(s) for s in res.stems.values()]
    best = None
    for perm in itertools.permutations(range(len(ests))):
        v = bss_sdr(refs, np.stack([ests[i] for i in perm]))
        if best is None or np.mean(v) > np.mean(best):
            best = v
    return [float(x) for x in best]


def run_family(job: dict) -> list[dict]:
    """Every mixture of one family: built-in, own-family and blind SDRs."""
    t0 = time.perf_counter()
    data = Path(job["data"])
    fonts = job["fonts"]
    fonts = None if fonts is None else tuple(fonts)
    rows: list[dict] = []
    for tasks in UNITS:
        items = load_items(data, job["family"], tasks)
        if not items:
            continue
        attach_training(items, data)
        cache: dict = {}
        for item in items:
            base = {"family": item["family"], "task": item["task"], "seed": item["seed"],
                    "names": item["names"],
                    "id": f"{item['family']}/{item['task']}/seed{item['seed']:03d}"}
            dicts = [builtin_dict(BUILTIN_OF[n], fonts, job["learn"]) for n in item["names"]]
            t1 = time.perf_counter()
            res = separate(item["mix"], item["sr"], dictionaries=dicts, **job["separate"])
            sec = time.perf_counter() - t1
            stems = {n: res.stems[BUILTIN_OF[n]] for n in item["names"]}
            rows.append({**base, "method": "built-in", "sdr": sdrs(item, stems),
                         "seconds": sec})
            if job["builtin_only"]:
                continue
            rows.append({**base, "method": "own",
                         "sdr": sdrs(item, run_product(item, OWN, cache))})
            rows.append({**base, "method": "blind", "sdr": blind_sdrs(item)})
    print(f"  {job['family']:10s} {time.perf_counter() - t0:5.0f} s", file=sys.stderr,
          flush=True)
    return rows


def reference_medians(refs: Path, render_cmd: str) -> dict:
    """(method, family, task) -> median of bench_heldout's stored oracle / pipelines."""
    if not refs.exists():
        return {}
    saved = json.loads(refs.read_text())
    if saved.get("render") != render_cmd:
        return {}
    return medians(saved["rows"])


def report(rows: list[dict], refs: dict, fonts_of: dict) -> list[dict]:
    med = medians(rows)
    order = {"duo": 0, "trio": 1, "drums_bass": 2, "speech": 3}
    cells = sorted({(r["family"], r["task"]) for r in rows},
                   key=lambda c: (list(fonts_of).index(c[0]), order.get(c[1], 9)))
    print("\n| family | task | built-in from | built-in | own family | blind | "
          "built-in − own | built-in − blind | pipeline best | oracle |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    table = []
    for fam, task in cells:
        b, o, z = (med.get((m, fam, task), float("nan")) for m in ("built-in", "own", "blind"))
        pipes = [v for (m, f, t), v in refs.items() if f == fam and t == task
                 and m.startswith("pipeline")]
        pipe = max(pipes) if pipes else float("nan")
        orac = refs.get(("oracle", fam, task), float("nan"))
        src = "shipped" if fonts_of[fam] is None else "+".join(fonts_of[fam])
        print(f"| {fam} | {task} | {src} | {b:.2f} | {o:.2f} | {z:.2f} | {b - o:+.2f} | "
              f"{b - z:+.2f} | {pipe:.2f} | {orac:.2f} |")
        table.append({"family": fam, "task": task, "built_in_from": src, "built_in": b,
                      "own": o, "blind": z, "pipeline_best": pipe, "oracle": orac})
    per_source: dict = {}
    for r in rows:
        for name, v in zip(r["names"], r["sdr"], strict=True):
            per_source.setdefault((r["method"], r["task"], name), []).append(v)
    print("\nper source, median over families and mixtures (dB):")
    for (m, t, n), v in sorted(per_source.items()):
        print(f"  {t:10s} {n:7s} {m:9s} {np.median(v):6.2f}")
    secs = [r["seconds"] for r in rows if "seconds" in r]
    print(f"\nbuilt-in separation of an 8 s mixture: median {np.median(secs):.2f} s")
    return table


BUILTIN_RUN = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from nmfsep.files import separate_file
kw = json.loads(sys.argv[3])
if "_semi_pool" in kw:  # plan.SEMI_POOL_FRAMES of this run (1: every frame throughout)
    sys.modules["nmfsep.separate"].SEMI_POOL_FRAMES = kw.pop("_semi_pool")
s = separate_file(sys.argv[1], sys.argv[2], dictionaries=["drums", "bass", "piano"], n_free=8,
                  force=True, **kw)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "peak_rss_mib": rss, "n_iter": s["n_iter"],
                  "stft": s["settings"].get("stft")}))
"""


def timing(repeat: int, iterations: dict) -> None:
    """Built-in separation (drums, bass, piano + 8 free atoms) of bench_e2e's 3-minute
    44.1 kHz stereo song vs bench_e2e's librosa + scikit-learn anchor (blind k=8, 200
    iterations, nmfsep's blind STFT), alternating, medians. ``iterations``: the
    built-in run's ``max_iter``/``tol`` (empty: the product's defaults), and
    ``_semi_pool``: its ``plan.SEMI_POOL_FRAMES`` (1: the fit on every frame throughout)."""
    import tempfile

    import bench_e2e
    import soundfile as sf

    from nmfsep.spectral import STFTConfig

    y, sr = sf.read(ROOT / "audio_samples/piano_flute_44k/mix.flac", dtype="float32",
                    always_2d=True)
    n = 3 * 60 * sr
    song = np.tile(y, (-(-n // len(y)), 1))[:n]
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "song.wav"
        sf.write(path, song, sr, subtype="FLOAT")
        stft = STFTConfig.for_sample_rate(sr)
        n_fft, hop = stft.n_fft, stft.hop_length
        for i in range(repeat):
            ours.append(bench_e2e.run(BUILTIN_RUN, str(path), str(Path(tmp) / f"b{i}"),
                                      json.dumps(iterations)))
            base.append(bench_e2e.run(bench_e2e.BASELINE, str(path), str(Path(tmp) / f"a{i}"),
                                      str(n_fft), str(hop)))
    t_ours = float(np.median([r["seconds"] for r in ours]))
    t_base = float(np.median([r["seconds"] for r in base]))
    print(f"3-min 44.1 kHz stereo song: built-in separation {t_ours:.1f} s "
          f"(peak RSS {max(r['peak_rss_mib'] for r in ours):.0f} MiB), librosa + scikit-learn "
          f"anchor {t_base:.1f} s ({max(r['peak_rss_mib'] for r in base):.0f} MiB): "
          f"{t_base / t_ours:.1f}x (median of {repeat}; built-in {iterations or 'defaults'}, "
          f"{ours[0]['n_iter']} iterations)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "families")
    ap.add_argument("--families", default="", help="comma-separated subset (default all)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--refs", type=Path,
                    default=ROOT / "benchmarks" / "results" / "heldout_refs.json")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--learn", default="{}",
                    help="JSON learn_dictionary options of a variant recipe: every built-in "
                    "is rebuilt with them (the shipped ones too)")
    ap.add_argument("--timing-iterations", default='{"max_iter": 200, "tol": 0}',
                    help="JSON max_iter/tol of the timed built-in run ({}: the defaults)")
    ap.add_argument("--separate", default="{}",
                    help="JSON separate options of the built-in runs (e.g. mask_power)")
    ap.add_argument("--builtin-only", action="store_true", help="skip own-family and blind")
    ap.add_argument("--timing", type=int, default=0,
                    help="instead: time the 3-min song N times against the anchor")
    args = ap.parse_args()
    if args.timing:
        timing(args.timing, json.loads(args.timing_iterations))
        return
    manifest = json.loads((args.data / "manifest.json").read_text())
    families = {f: v for f, v in manifest["families"].items() if f != "librivox"}
    chosen = [f for f in args.families.split(",") if f] or list(families)
    fonts_of = {f: heldout_fonts(families[f]["groups"]) for f in chosen}
    learn = json.loads(args.learn)
    for fonts in set(fonts_of.values()):  # build once, not per job
        for name in sorted(set(BUILTIN_OF.values())):
            builtin_dict(name, fonts, learn)
    jobs = [{"data": str(args.data), "family": f, "fonts": fonts_of[f], "learn": learn,
             "separate": json.loads(args.separate), "builtin_only": args.builtin_only}
            for f in chosen]
    t0 = time.perf_counter()
    if args.jobs > 1:
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = "1"
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as ex:
            rows = [r for res in ex.map(run_family, jobs) for r in res]
    else:
        rows = [r for j in jobs for r in run_family(j)]
    table = report(rows, reference_medians(args.refs, manifest["command"]), fonts_of)
    wall = time.perf_counter() - t0
    print(f"\nwall {wall:.0f} s ({args.jobs} processes)", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"table": table, "rows": rows, "wall_s": wall,
                                         "fonts": fonts_of, "learn": learn,
                                         "render": manifest["command"]},
                                        indent=1))


if __name__ == "__main__":
    main()
