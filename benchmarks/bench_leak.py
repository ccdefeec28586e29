"""Where a source's energy goes when its dictionary does not know the song (issue 13 diagnosis).

Each reference stem of the held-out set (``python benchmarks/render.py --what families``) is
separated *alone*, as if it were the mixture, with the dictionaries of every source of its
task (learned with the product's defaults from the family's training clips, as in
``bench_heldout.py``). A perfect separation gives all of it back to its own source; the
share of its energy that comes out in the other sources' stems is the leak, in dB
(``10 log10(E_other / E_total)``; -30 dB: 0.1 %, -3 dB: half), per seed with the source
that takes the most of it. Low SDR with a large leak
*from* another source's stem means that source's notes are claimed by this dictionary.

    python benchmarks/bench_leak.py --families timgm6mb --tasks duo       # 1 min
    python benchmarks/bench_leak.py --tasks duo,trio --harmonic off,auto --ceiling

``--ceiling`` adds dictionaries learned from the test stems themselves (the leak a
dictionary that knows the song leaves). Prints one row per family, task, source and
dictionary set: the median leak over the seeds.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout import attach_training, learn, load_items  # noqa: E402

from nmfsep.separate import separate  # noqa: E402

LEARN = {"pitch_shifts": [-2, -1, 1, 2], "harmonic": "auto", "harmonic_margin": 12}


def leak_db(stem: np.ndarray, sr: int, name: str, dicts: list, harmonic: str) -> tuple:
    """Share (dB) of ``stem``'s energy that ``separate`` gives to the other sources.

    Returns the share and the name of the source that takes the most of it.
    """
    stems = separate(stem, sr, dictionaries=dicts, harmonic=harmonic).stems
    energy = {k: float(np.sum(np.square(v, dtype=np.float64))) for k, v in stems.items()}
    total = sum(energy.values())
    other = total - energy[name]
    most = max((k for k in energy if k != name), key=energy.__getitem__)
    share = 10 * np.log10(max(other, 1e-12 * total) / total) if total > 0 else float("nan")
    return share, most


def measure(item: dict, learn_kw: dict, harmonics: list[str], ceiling: bool) -> list[tuple]:
    """Rows ``(family, task, source, dictionaries, (leak dB, main taker))`` of one mixture."""
    sets = {"train": [learn([item["train"][n]], n, learn_kw) for n in item["names"]]}
    if ceiling:
        sets["ceiling"] = [learn([(item["stems"][n], item["sr"])], n, learn_kw)
                           for n in item["names"]]
    rows = []
    for label, dicts in sets.items():
        for harmonic in harmonics:
            for name in item["names"]:
                rows.append((item["family"], item["task"], name, f"{label} harmonic={harmonic}",
                             leak_db(item["stems"][name], item["sr"], name, dicts, harmonic)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(__file__).resolve().parent / "data" / "families")
    ap.add_argument("--families", default="fluidr3,musescore,timgm6mb")
    ap.add_argument("--tasks", default="duo,trio")
    ap.add_argument("--harmonic", default="auto", help="comma-separated: off, auto, on")
    ap.add_argument("--ceiling", action="store_true")
    args = ap.parse_args()
    table: dict[tuple, list[float]] = defaultdict(list)
    for family in args.families.split(","):
        items = load_items(args.data, family, tuple(args.tasks.split(",")))
        attach_training(items, args.data)
        for item in items:
            for *key, value in measure(item, LEARN, args.harmonic.split(","), args.ceiling):
                table[tuple(key)].append(value)
    print("| family | task | source | dictionaries | leak to the others (dB, median) "
          "| per seed (taking the most) |")
    print("|---|---|---|---|---|---|")
    for (family, task, name, label), values in table.items():
        print(f"| {family} | {task} | {name} | {label} | "
              f"{np.median([v for v, _ in values]):.1f} | "
              + " ".join(f"{v:.1f} ({most})" for v, most in values) + " |")


if __name__ == "__main__":
    main()
