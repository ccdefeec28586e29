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

nmfsep's default for stereo is the model with a gain per channel and component
(``spatial="gains"``, separation by position too, 2-3x the work of one shared
spectrogram); ``--spatial shared`` times the model the baseline pipeline also uses.
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
s = separate_file(sys.argv[1], sys.argv[2], n_components=8, max_iter=200, tol=0, force=True,
                  **kw)
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
        for i in range(max(1, args.repeat)):
            ours = run(NMFSEP, str(path), str(Path(tmp) / f"nmfsep{i}"), args.spatial)
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
