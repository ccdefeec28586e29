"""How ``separate(harmonic="auto")`` chooses between plain and harmonic atoms, per mixture.

For every mixture of the in-family set (``benchmarks/render.py --what bench``: FluidR3,
training clips that play the mixtures' notes) and of the held-out set
(``render.py --what families``: training clips in other melodies, keys and registers),
dictionaries are learned with nmfsep's defaults (harmonic atoms included) and the
mixture is separated with ``harmonic="off"`` and ``harmonic="on"``. The script prints,
per mixture, the ratio of the two fits' final divergences (on / off), the median SDR
over sources of each, and which one ``"auto"`` keeps
(:data:`nmfsep.plan.HARMONIC_FIT_RATIO`); then the SDR of ``"auto"`` against always on
and always off, summed over mixtures.

    nice python benchmarks/bench_harmonic_choice.py [--sets bench,families] [--json OUT]

(about 25 minutes on 2 cores for both sets).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_heldout as BH  # noqa: E402
import bench_separation as BS  # noqa: E402

from nmfsep.dictionary import learn_dictionary  # noqa: E402
from nmfsep.plan import HARMONIC_FIT_RATIO  # noqa: E402
from nmfsep.separate import separate  # noqa: E402

DATA = BS.ROOT / "benchmarks" / "data"


def compare(tag: str, item: dict, dicts: list) -> dict:
    """Separate ``item`` with harmonic atoms off and on; the ratio of the fits and SDRs."""
    row: dict = {"mixture": tag}
    for use in ("off", "on"):
        res = separate(item["mix"], item["sr"], dictionaries=dicts, harmonic=use)
        row[use] = float(np.median(BS.score(item, res.stems)["sdr"]))
        row[f"loss_{use}"] = res.loss_history[-1]
    row["ratio"] = row["loss_on"] / row["loss_off"]
    row["auto"] = row["on"] if row["ratio"] < HARMONIC_FIT_RATIO else row["off"]
    print(f"{tag:24s} ratio {row['ratio']:.3f}  off {row['off']:6.2f}  on {row['on']:6.2f}"
          f"  auto keeps {'on ' if row['ratio'] < HARMONIC_FIT_RATIO else 'off'}", flush=True)
    return row


def in_family(tasks: tuple[str, ...], n_seeds: int) -> list[dict]:
    rows = []
    for task in tasks:
        for item in BS.load_task(DATA, task, n_seeds):
            dicts = [learn_dictionary([item["train"][n]], n) for n in item["names"]]
            rows.append(compare(f"bench/{task}/{item['seed']}", item, dicts))
    return rows


def held_out(families: tuple[str, ...]) -> list[dict]:
    rows, data = [], DATA / "families"
    for fam in families:
        items = BH.load_items(data, fam, ("duo", "trio"))
        BH.attach_training(items, data)
        learned: dict = {}
        for item in items:
            for n in item["names"]:
                path = item["train_files"][n]
                if path not in learned:
                    learned[path] = learn_dictionary([item["train"][n]], n)
            dicts = [learned[item["train_files"][n]] for n in item["names"]]
            rows.append(compare(f"{fam}/{item['task']}/{item['seed']}", item, dicts))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="bench,families")
    ap.add_argument("--tasks", default="duo,duo2,trio", help="in-family tasks")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--families", default="fluidr3,musescore,timgm6mb")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    if "bench" in args.sets:
        rows += in_family(tuple(args.tasks.split(",")), args.seeds)
    if "families" in args.sets:
        rows += held_out(tuple(args.families.split(",")))
    for name, pick in (("in-family", lambda r: r["mixture"].startswith("bench/")),
                       ("held-out", lambda r: not r["mixture"].startswith("bench/"))):
        sel = [r for r in rows if pick(r)]
        if sel:
            ratios = [r["ratio"] for r in sel]
            print(f"{name}: {len(sel)} mixtures, ratio {min(ratios):.3f}-{max(ratios):.3f}; "
                  f"summed SDR auto - on {sum(r['auto'] - r['on'] for r in sel):+.2f} dB, "
                  f"auto - off {sum(r['auto'] - r['off'] for r in sel):+.2f} dB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
