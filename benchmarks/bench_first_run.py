"""First run on a fresh install: the README's separation with an empty numba cache.

Times the README command

    nmfsep separate audio_samples/piano_flute/mix.flac --sources 2 -o OUT --force

as a user runs it, each time in a fresh Python process (``python -m nmfsep``, wall
clock of the whole process: interpreter start, imports, separation, writing):

* **first run**: ``NUMBA_CACHE_DIR`` pointing to a new, empty folder, so anything
  compiled with numba is compiled in that process (a fresh install, a CI job, a new
  container);
* **cached**: the same command again ``--repeat`` times with that (now filled) cache;
  the median is reported.

It also checks that the stems of the first and the cached runs are bit-identical
(which path a problem takes must not depend on whether anything was compiled).

``--root`` measures another checkout (its ``nmfsep`` on ``PYTHONPATH``, its
``audio_samples``), e.g. the previous commit unpacked with
``git archive HEAD~1 | tar -x -C /tmp/base``; ``--compare`` measures both in
alternation and prints the ratios. Target of issue 17: first run <= 3 s.

    python benchmarks/bench_first_run.py [--repeat 5] [--root PATH] [--compare PATH] [--json F]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
MIXTURE = "audio_samples/piano_flute/mix.flac"
TARGET_FIRST_RUN_S = 3.0


def run_once(root: Path, cache_dir: Path, out_dir: Path) -> tuple[float, float]:
    """Run the README command once in a fresh process; return its wall and CPU seconds.

    CPU time (user + system, all threads) drifts less than wall time on a busy machine.
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "nmfsep", "separate", MIXTURE, "--sources", "2",
           "-o", str(out_dir), "--force"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def stems_digest(out_dir: Path) -> str:
    """SHA-256 of the samples of every stem the run wrote, in name order.

    Samples, not file bytes: libsndfile stamps float WAVs with the time of writing.
    """
    h = hashlib.sha256()
    for p in sorted(out_dir.rglob("*.wav")):
        y, sr = sf.read(p, dtype="float32", always_2d=True)
        h.update(f"{p.name}:{sr}:{y.shape}".encode())
        h.update(y.tobytes())
    return h.hexdigest()


def measure(root: Path, repeat: int) -> dict:
    """First-run and cached times of the README command for the checkout at ``root``."""
    with tempfile.TemporaryDirectory(prefix="nmfsep-first-run-") as tmp:
        cache, out = Path(tmp) / "numba-cache", Path(tmp) / "separated"
        cache.mkdir()
        first, first_cpu = run_once(root, cache, out)
        digest = stems_digest(out)
        cached = [run_once(root, cache, out) for _ in range(repeat)]
        same = digest == stems_digest(out)
        n_cache_files = sum(1 for p in cache.rglob("*") if p.is_file())
    return {"root": str(root), "first_run_s": first, "first_run_cpu_s": first_cpu,
            "cached_s": statistics.median(w for w, _ in cached),
            "cached_cpu_s": statistics.median(c for _, c in cached),
            "cached_all_s": [w for w, _ in cached], "numba_cache_files": n_cache_files,
            "first_and_cached_stems_identical": same}


def _report(name: str, r: dict) -> None:
    print(f"{name}: first run {r['first_run_s']:.2f} s (CPU {r['first_run_cpu_s']:.2f} s), "
          f"cached {r['cached_s']:.2f} s (CPU {r['cached_cpu_s']:.2f} s) "
          f"(median of {len(r['cached_all_s'])}; {r['numba_cache_files']} files compiled "
          f"into the numba cache; stems of first and cached runs "
          f"{'identical' if r['first_and_cached_stems_identical'] else 'DIFFER'})  [{r['root']}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="cached runs (median reported)")
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to measure")
    ap.add_argument("--compare", type=Path, help="a second checkout (e.g. the previous commit)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    results = {"this": measure(args.root.resolve(), args.repeat)}
    if args.compare is not None:
        results["other"] = measure(args.compare.resolve(), args.repeat)
    _report("this", results["this"])
    if "other" in results:
        _report("other", results["other"])
        for key in ("first_run_s", "first_run_cpu_s", "cached_s", "cached_cpu_s"):
            ratio = results["this"][key] / results["other"][key]
            print(f"  {key}: this / other = {ratio:.2f}")
    ok = results["this"]["first_run_s"] <= TARGET_FIRST_RUN_S
    print(f"target first run <= {TARGET_FIRST_RUN_S:g} s: {'met' if ok else 'NOT met'}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
