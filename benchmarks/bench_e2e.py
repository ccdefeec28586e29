"""End-to-end separation: `nmfsep separate` vs the same job written with librosa + scikit-learn.

A 3-minute 44.1 kHz stereo song (audio_samples/piano_flute_44k/mix.flac tiled) is
separated blind with k = 8 components and 200 iterations (tol = 0) by

* nmfsep: ``separate_file(path, out, n_components=8, max_iter=200, tol=0)``
  (read, STFT, NMF, masks, iSTFT, atomic float-WAV writes), and
* the pipeline a user writes today: ``librosa.load(sr=None, mono=False)``,
  ``librosa.stft`` per channel with the same n_fft/hop, V = mean magnitude,
  ``sklearn.decomposition.NMF(8, beta_loss="kullback-leibler", solver="mu")``,
  one Wiener (ratio) mask per component applied to both channels,
  ``librosa.istft``, ``soundfile.write`` — same STFT, same k, same iterations.

Each runs in its own fresh subprocess (so peak RSS is its own); the script prints
time and peak memory of both, their ratio, and nmfsep's peak memory relative
to the mixture's complex STFT, against the targets of issue 3 (at least 4x faster,
peak RSS at most 4x the STFT). Absolute times drift on shared machines: with
``--repeat N`` the two alternate N times and the medians are compared (peak RSS:
the largest).

    python benchmarks/bench_e2e.py [--minutes 3] [--repeat 1] [--spatial shared|gains]

Both sides run with the machine's memory settings as they are. On the 2-core
development VM (transparent huge pages "madvise", so numpy asks for huge pages for
large arrays) fresh memory is slow to touch, and the ratio moves with it: with
``NUMPY_MADVISE_HUGEPAGE=0`` in the environment the baseline took 75 s instead of 45 s
while nmfsep's time did not change (10.5 vs 9.8-19.9 s), so that one setting took the
ratio from 3.1x to 7.1x on the same day. Compare ratios measured under the same
setting.

nmfsep's default for stereo is the model with a gain per channel and component
(``spatial="gains"``, separation by position too, 2-3x the work of one shared
spectrogram); ``--spatial shared`` times the model the baseline pipeline also uses.

``--percussive`` times ``separate_file(path, out, n_sources=3, percussive=True,
max_iter=200, tol=0)`` instead (issue 15's blind bands: the drums split off by
median-filter HPSS, two NMFs of 16 and 8 components and 30 joint iterations of all
24, on the shared model), against the same k = 8 baseline.

``--sources N`` times ``separate_file(path, out, n_sources=N, max_iter=200, tol=0)``
instead (blind grouped into N stems with the library's defaults: 8 components per
source for 2, 12 from 3 on, gains per channel), ``--sources N --k K`` with K components,
against the same k = 8 baseline.

``--supervised`` times supervised separation instead (issue 13's speed target). Before
the timed runs, outside them, dictionaries are learned from
``audio_samples/train/{piano,flute}.flac`` and saved as ``.npz``:

* nmfsep's with its defaults (``learn_dictionary_files(path, name)``: 48 atoms,
  3-frame context, pitch-shifted copies, harmonic atoms "auto"), at the clips' 22.05 kHz;
* the baseline's with ``sklearn.decomposition.NMF(k, beta_loss="kullback-leibler",
  solver="mu", init="nndsvda", max_iter=200)`` on the clips loaded at the song's rate
  (``librosa.load(sr=44100)``) with nmfsep's native STFT, k = nmfsep's plain atom
  count per source.

Timed: ``separate_file(song, out, dictionaries=[piano.npz, flute.npz])`` with every
default (tol 1e-4; stereo gains per channel; harmonic "auto" fits the plain and the
harmonic atoms and keeps one; analysis at the dictionaries' 22.05 kHz, masks brought to
the 44.1 kHz STFT), against ``non_negative_factorization(V, H=H_fixed,
init="custom", update_H=False, beta_loss="kullback-leibler", solver="mu",
max_iter=<nmfsep's iterations>, tol=0)`` on V = mean magnitude of the channels at
44.1 kHz, one Wiener mask per source on both channels, ``librosa.istft``, write.
``--two-pass`` also times nmfsep with the gains' own pass per iteration (the fit before
``plan.SUPERVISED_JOINT_GAINS``) and prints how far its stems are from the default's.

    python benchmarks/bench_e2e.py --supervised [--two-pass] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NMFSEP = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from nmfsep.files import separate_file
kw = {} if sys.argv[3] == "default" else {"spatial": sys.argv[3]}
if sys.argv[3] == "percussive":  # --sources 3 --percussive: 24 components
    kw = {"n_sources": 3, "percussive": True}
elif sys.argv[3].startswith("sources:"):  # --sources N [-k K]: the library's blind defaults
    _, n, *k = sys.argv[3].split(":")
    kw = {"n_sources": int(n), **({"n_components": int(k[0])} if k else {})}
else:
    kw["n_components"] = 8
s = separate_file(sys.argv[1], sys.argv[2], max_iter=200, tol=0, force=True, **kw)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "peak_rss_mib": rss,
                  "n_iter": s["n_iter"], "stft": s["settings"].get("stft")}))
"""

BASELINE = r"""
import json, resource, sys, time, warnings
t0 = time.perf_counter()
import numpy as np, librosa, soundfile as sf
from pathlib import Path
from sklearn.decomposition import NMF
n_fft, hop = int(sys.argv[3]), int(sys.argv[4])
y, sr = librosa.load(sys.argv[1], sr=None, mono=False)
y = np.atleast_2d(y)
X = librosa.stft(y, n_fft=n_fft, hop_length=hop)            # (n_ch, n_bins, n_frames)
V = np.abs(X).mean(axis=0).T                                 # (n_frames, n_bins)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = NMF(8, beta_loss="kullback-leibler", solver="mu", max_iter=200, tol=0, init="nndsvda")
    W = model.fit_transform(V)
H = model.components_
WH = W @ H + 1e-12
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
for j in range(8):
    M = (np.outer(W[:, j], H[j]) / WH).T                    # (n_bins, n_frames)
    stem = librosa.istft(X * M, hop_length=hop, n_fft=n_fft, length=y.shape[-1])
    sf.write(out / f"component_{j + 1:02d}.wav", stem.T, sr, subtype="FLOAT")
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "peak_rss_mib": rss,
                  "stft_mib": X.nbytes / 2**20}))
"""


NMFSEP_SUP = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import importlib
from nmfsep.files import separate_file
if sys.argv[3] == "two-pass":  # the gains' own pass, as before plan.SUPERVISED_JOINT_GAINS
    importlib.import_module("nmfsep.separate").SUPERVISED_JOINT_GAINS = False
s = separate_file(sys.argv[1], sys.argv[2], dictionaries=sys.argv[4:], force=True)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
st = s["settings"]
print(json.dumps({"seconds": dt, "peak_rss_mib": rss, "n_iter": s["n_iter"],
                  "stft": st["stft"], "harmonic_fit_ratio": st["harmonic_fit_ratio"],
                  "n_harmonic_in_use": [d["n_harmonic"] for d in st["dictionaries"]],
                  "spatial": st["spatial"], "analysis_sr": st["analysis_sr"]}))
"""

LEARN_BASE = r"""
import sys, warnings
import numpy as np, librosa
from sklearn.decomposition import NMF
sr, n_fft, hop, k = (int(a) for a in sys.argv[2:6])
Hs = []
for path in sys.argv[6:]:
    y, _ = librosa.load(path, sr=sr, mono=False)
    V = np.abs(librosa.stft(np.atleast_2d(y), n_fft=n_fft, hop_length=hop)).mean(axis=0).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(k, beta_loss="kullback-leibler", solver="mu", init="nndsvda",
                    max_iter=200, random_state=0).fit(V)
    Hs.append(model.components_)
np.save(sys.argv[1], np.concatenate(Hs))
"""

BASELINE_SUP = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np, librosa, soundfile as sf
from pathlib import Path
from sklearn.decomposition import non_negative_factorization
n_fft, hop, n_iter, k = (int(a) for a in sys.argv[4:8])
H = np.load(sys.argv[3])                                     # (n_sources * k, n_bins)
y, sr = librosa.load(sys.argv[1], sr=None, mono=False)
y = np.atleast_2d(y)
X = librosa.stft(y, n_fft=n_fft, hop_length=hop)            # (n_ch, n_bins, n_frames)
V = np.abs(X).mean(axis=0).T                                 # (n_frames, n_bins)
W, _, it = non_negative_factorization(
    V, H=H.astype(V.dtype), n_components=H.shape[0], init="custom", update_H=False,
    beta_loss="kullback-leibler", solver="mu", max_iter=n_iter, tol=0)
WH = W @ H + 1e-12
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
for j, name in enumerate(sys.argv[8:]):
    M = ((W[:, j * k:(j + 1) * k] @ H[j * k:(j + 1) * k]) / WH).T
    stem = librosa.istft(X * M, hop_length=hop, n_fft=n_fft, length=y.shape[-1])
    sf.write(out / f"{name}.wav", stem.T, sr, subtype="FLOAT")
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "peak_rss_mib": rss, "n_iter": it,
                  "stft_mib": X.nbytes / 2**20}))
"""

NAMES = ("piano", "flute")


LEARN_NMFSEP = r"""
import json, sys
from pathlib import Path
import numpy as np, soundfile as sf
from nmfsep.dictionary import learn_dictionary_files
from nmfsep.files import separate_file
tmp, train, sr = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
paths, plain = [], []
for name in sys.argv[4:]:
    d = learn_dictionary_files(train / f"{name}.flac", name)
    paths.append(str(d.save(tmp / f"{name}.npz")))
    plain.append(d.n_atoms - d.n_harmonic)
sf.write(tmp / "probe.wav", np.zeros((sr, 2), dtype=np.float32), sr, subtype="FLOAT")
s = separate_file(tmp / "probe.wav", tmp / "probe", dictionaries=paths, max_iter=0)
print(json.dumps({"paths": paths, "plain": plain, "stft": s["settings"]["stft"]}))
"""


def learn(tmp: Path, sr: int) -> tuple[list[str], str, dict]:
    """Learn both pipelines' dictionaries (untimed); nmfsep's paths, the baseline's H, info.

    The baseline's STFT is nmfsep's native one (the dictionaries' window and hop in
    seconds at ``sr``), read from a 1-second separation with nmfsep's dictionaries.
    Learning runs in subprocesses, so this process stays small (a child's peak RSS
    starts from its parent's).
    """
    train = ROOT / "audio_samples" / "train"
    info = run(LEARN_NMFSEP, str(tmp), str(train), str(sr), *NAMES)
    k = info["plain"][0]
    assert all(p == k for p in info["plain"]), info["plain"]
    base_h = str(tmp / "sklearn_H.npy")
    subprocess.run([sys.executable, "-c", LEARN_BASE, base_h, str(sr),
                    str(info["stft"]["n_fft"]), str(info["stft"]["hop_length"]), str(k),
                    *(str(train / f"{n}.flac") for n in NAMES)], check=True)
    return info["paths"], base_h, {"k": k, "stft": info["stft"]}


def supervised_runs(path: Path, tmp: Path, sr: int, repeat: int,
                    two_pass: bool = False) -> dict[str, list[dict]]:
    """Learn (untimed), then time nmfsep and the baseline ``repeat`` times, alternating.

    ``two_pass``: also time nmfsep with a pass of its own for the gains (the fit before
    :data:`nmfsep.plan.SUPERVISED_JOINT_GAINS`) and compare its stems with the default's.
    """
    paths, base_h, info = learn(tmp, sr)
    runs: dict[str, list[dict]] = {"ours": [], "base": []}
    for i in range(max(1, repeat)):
        ours = run(NMFSEP_SUP, str(path), str(tmp / f"nmfsep{i}"), "default", *paths)
        if two_pass:
            two = run(NMFSEP_SUP, str(path), str(tmp / f"two{i}"), "two-pass", *paths)
            print(f"run {i + 1}: nmfsep {ours['seconds']:.1f} s, with the gains' own pass "
                  f"{two['seconds']:.1f} s ({two['n_iter']} it); stems apart: SNR "
                  f"{stems_snr(tmp / f'two{i}', tmp / f'nmfsep{i}'):.1f} dB", flush=True)
        base = run(BASELINE_SUP, str(path), str(tmp / f"baseline{i}"), base_h,
                   str(info["stft"]["n_fft"]), str(info["stft"]["hop_length"]),
                   str(ours["n_iter"]), str(info["k"]), *NAMES)
        runs["ours"].append(ours)
        runs["base"].append(base)
        kept = "harmonic" if any(ours["n_harmonic_in_use"]) else "plain"
        print(f"run {i + 1}: nmfsep {ours['seconds']:.1f} s {ours['peak_rss_mib']:.0f} MiB "
              f"({ours['n_iter']} it, {ours['spatial']}, analysis at {ours['analysis_sr']} Hz, "
              f"harmonic fit ratio {ours['harmonic_fit_ratio']:.3f}: kept the {kept} atoms); "
              f"baseline {base['seconds']:.1f} s {base['peak_rss_mib']:.0f} MiB "
              f"({base['n_iter']} it, k = {info['k']} per source)", flush=True)
    return runs


def stems_snr(ref: Path, est: Path) -> float:
    """Worst SNR (dB) of the stems under ``ref`` against their difference from ``est``'s."""
    import numpy as np
    import soundfile as sf

    worst = np.inf
    for f in sorted(ref.rglob("*.wav")):
        r = sf.read(f, dtype="float64")[0]
        e = sf.read(est / f.relative_to(ref), dtype="float64")[0]
        worst = min(worst, 10 * np.log10(np.sum(r**2) / max(np.sum((e - r) ** 2), 1e-300)))
    return float(worst)


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, alternating")
    ap.add_argument("--spatial", choices=("default", "shared", "gains"), default="default",
                    help="nmfsep's stereo model (default: the library's default)")
    ap.add_argument("--percussive", action="store_true",
                    help="time --sources 3 --percussive (drums split off first) instead")
    ap.add_argument("--sources", type=int, default=None,
                    help="time blind separation into this many stems instead")
    ap.add_argument("--k", type=int, default=None, help="--sources: components (default: the "
                    "library's per source)")
    ap.add_argument("--supervised", action="store_true",
                    help="supervised separation with learned piano and flute dictionaries")
    ap.add_argument("--two-pass", action="store_true",
                    help="--supervised: also time the gains' own pass (SUPERVISED_JOINT_GAINS off)")
    args = ap.parse_args()
    import numpy as np
    import soundfile as sf

    y, sr = sf.read(ROOT / "audio_samples/piano_flute_44k/mix.flac", dtype="float32",
                    always_2d=True)
    n = int(args.minutes * 60 * sr)
    song = np.tile(y, (-(-n // len(y)), 1))[:n]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "song.wav"
        sf.write(path, song, sr, subtype="FLOAT")
        runs: dict[str, list[dict]] = {"ours": [], "base": []}
        if args.supervised:
            runs = supervised_runs(path, Path(tmp), sr, args.repeat, args.two_pass)
            n_fft = runs["ours"][0]["stft"]["n_fft"]
            hop = runs["ours"][0]["stft"]["hop_length"]
        for i in range(0 if args.supervised else max(1, args.repeat)):
            mode = ("percussive" if args.percussive else args.spatial if args.sources is None
                    else f"sources:{args.sources}" + (f":{args.k}" if args.k else ""))
            ours = run(NMFSEP, str(path), str(Path(tmp) / f"nmfsep{i}"), mode)
            n_fft, hop = ours["stft"]["n_fft"], ours["stft"]["hop_length"]
            base = run(BASELINE, str(path), str(Path(tmp) / f"baseline{i}"), str(n_fft),
                       str(hop))
            runs["ours"].append(ours)
            runs["base"].append(base)
            if args.repeat > 1:
                print(f"run {i + 1}: nmfsep {ours['seconds']:.1f} s "
                      f"{ours['peak_rss_mib']:.0f} MiB, baseline {base['seconds']:.1f} s "
                      f"{base['peak_rss_mib']:.0f} MiB", flush=True)
    stft_mib = runs["base"][0]["stft_mib"]
    seconds = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["peak_rss_mib"] for r in v) for k, v in runs.items()}
    print(f"{args.minutes:g} min, {sr} Hz, {song.shape[1]} channels; n_fft {n_fft}, hop {hop}; "
          f"complex STFT = {stft_mib:.0f} MiB")
    print(f"{'':<22}{'seconds':>10}{'peak RSS MiB':>15}")
    print(f"{'librosa + sklearn':<22}{seconds['base']:>10.1f}{rss['base']:>15.0f}")
    print(f"{'nmfsep separate':<22}{seconds['ours']:>10.1f}{rss['ours']:>15.0f}")
    speed, memory = seconds["base"] / seconds["ours"], rss["ours"] / stft_mib
    print(f"speed ratio: {speed:.1f}x (target >= 4: {'met' if speed >= 4 else 'NOT met'}); "
          f"nmfsep peak RSS = {memory:.1f}x the complex STFT (target <= 4: "
          f"{'met' if memory <= 4 else 'NOT met'}; baseline {rss['base'] / stft_mib:.1f}x)")


if __name__ == "__main__":
    main()
