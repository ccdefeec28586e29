"""Online (streaming) β-NMF against batch nmf() on real audio.

The data are the magnitude spectrograms of every clip in audio_samples/train
(piano, flute, bass, drums, speech; mono mix of the channels, resampled to
22050 Hz, librosa.stft n_fft 2048 hop 512, float32), about 79 s or 3400 frames.
The stream reads and transforms one file at a time and yields blocks of
`--block` frames, so nothing holds the whole spectrogram; "10x" cycles through
the files ten times (a 13-minute stream).

For every dictionary the script re-solves the activations of the whole 1x
spectrogram with the atoms fixed and reports the loss per entry (lower is
better), the atoms' similarity to the batch dictionary (cosine, atoms matched
with the Hungarian method), the time to learn it, and the peak memory that
numpy allocated while learning it (tracemalloc, a separate run): the batch
figure includes V, the online one includes one file's spectrogram and one block.

    nice python benchmarks/bench_online.py              # KL, k=16
    nice python benchmarks/bench_online.py --beta itakura-saito   # power spectrogram

``--separation`` measures what matters for supervised separation instead: it
learns piano and flute dictionaries (k=32 by default) from
audio_samples/train/{piano,flute}.flac with the batch learn_dictionary and with
the streaming learn_dictionary_online (files read in blocks), separates
audio_samples/piano_flute/mix.flac with each pair, and prints per-stem SDR
(mir_eval bss_eval_sources) and the online - batch difference.

    nice python benchmarks/bench_online.py --separation --k 32 --passes 20
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR, N_FFT, HOP = 22050, 2048, 512


POWER = 1  # 2 (power spectrogram) for Itakura-Saito, set in main()


def file_spectrogram(path: Path) -> np.ndarray:
    """|STFT|^POWER (n_frames, 1025) float32 of one file (channels mixed to mono)."""
    import librosa

    from nmfsep.io import load

    y, _ = load(path, sr=SR)
    S = np.abs(librosa.stft(y.mean(axis=0), n_fft=N_FFT, hop_length=HOP)) ** POWER
    return np.ascontiguousarray(S.T, dtype=np.float32)


def train_files() -> list[Path]:
    return sorted((ROOT / "audio_samples" / "train").glob("*.flac"))


def stream(repeat: int, block: int):
    """A zero-argument callable giving a fresh generator of blocks (one file in memory)."""

    def gen():
        for _ in range(repeat):
            for path in train_files():
                S = file_spectrogram(path)
                for start in range(0, S.shape[0], block):
                    yield S[start : start + block]
                del S

    return gen


def similarity(Ha: np.ndarray, Hb: np.ndarray) -> float:
    from scipy.optimize import linear_sum_assignment

    A = Ha / np.maximum(np.linalg.norm(Ha, axis=1, keepdims=True), 1e-30)
    B = Hb / np.maximum(np.linalg.norm(Hb, axis=1, keepdims=True), 1e-30)
    C = A @ B.T
    r, c = linear_sum_assignment(-C)
    return float(C[r, c].mean())


def refit_loss(V: np.ndarray, H: np.ndarray, beta) -> float:
    """Loss per entry of V with the atoms H fixed and the activations solved."""
    from nmfsep import beta_divergence, nmf

    res = nmf(V, H.shape[0], beta=beta, H=H.astype(V.dtype), update_H=False, max_iter=300,
              tol=1e-5, warn=False)
    return beta_divergence(V, res.W, res.H, beta) / V.size


def peak_mib(fn) -> float:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / 2**20


def separation(args) -> None:
    """Batch vs online dictionaries: SDR of piano + flute separated with each."""
    import mir_eval

    warnings.filterwarnings("ignore", category=FutureWarning)

    from nmfsep.dictionary import learn_dictionary, learn_dictionary_online
    from nmfsep.io import load
    from nmfsep.separate import separate

    k = args.k
    train = ROOT / "audio_samples" / "train"
    task = ROOT / "audio_samples" / "piano_flute"
    names = ("piano", "flute")
    mix, sr = load(task / "mix.flac")
    refs = np.stack([load(task / f"{n}.flac", sr=sr)[0].mean(axis=0) for n in names])

    def sdr_of(dicts) -> np.ndarray:
        res = separate(mix, sr, dictionaries=dicts, beta=args.beta)
        est = np.stack([res.stems[n].mean(axis=0) for n in names])
        n = min(est.shape[1], refs.shape[1])
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(refs[:, :n], est[:, :n])
        return sdr

    rows = {}
    t0 = time.perf_counter()
    # single-frame atoms on both sides (online learning has no temporal context)
    batch = [learn_dictionary([load(train / f"{n}.flac")], n, k, beta=args.beta,
                              max_iter=args.batch_iter, clip_names=[f"{n}.flac"],
                              context_frames=1)
             for n in names]
    t_batch = time.perf_counter() - t0
    rows["batch"] = (sdr_of(batch), t_batch)
    for passes in sorted({1, args.passes}):
        t0 = time.perf_counter()
        online = [learn_dictionary_online([train / f"{n}.flac"], n, k, beta=args.beta,
                                          block_seconds=args.block_seconds, passes=passes)
                  for n in names]
        rows[f"online, {passes} pass{'es' if passes > 1 else ''}"] = (
            sdr_of(online), time.perf_counter() - t0)
    ref = rows["batch"][0]
    print(f"piano + flute, k={k} per source, beta={args.beta}, "
          f"block {args.block_seconds:g} s, batch max_iter {args.batch_iter}")
    print(f"{'dictionaries':<22}{'SDR piano':>11}{'SDR flute':>11}"
          f"{'d piano':>9}{'d flute':>9}{'learn s':>9}")
    for label, (sdr, t) in rows.items():
        d = sdr - ref
        print(f"{label:<22}{sdr[0]:>11.2f}{sdr[1]:>11.2f}{d[0]:>+9.2f}{d[1]:>+9.2f}{t:>9.2f}")
    print("SDR in dB (mir_eval bss_eval_sources on the mono stems); d: online - batch.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--beta", default="kullback-leibler")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--block", type=int, default=256, help="frames per block")
    ap.add_argument("--batch-iter", type=int, default=200)
    ap.add_argument("--passes", type=int, default=3, help="passes of the longest 1x online run")
    ap.add_argument("--forget", type=float, default=None, help="default: online_nmf's")
    ap.add_argument("--n-inner", type=int, default=None, help="default: online_nmf's")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    ap.add_argument("--separation", action="store_true",
                    help="compare batch and online dictionaries by separation SDR")
    ap.add_argument("--block-seconds", type=float, default=30.0,
                    help="--separation: seconds per block of learn_dictionary_online")
    args = ap.parse_args()
    if args.separation:
        separation(args)
        return

    from nmfsep import nmf
    from nmfsep.online import online_nmf

    global POWER
    beta, k = args.beta, args.k
    is_loss = beta in ("itakura-saito", "0", "0.0")
    if not is_loss and beta not in ("kullback-leibler", "frobenius"):
        beta = float(beta)
    if is_loss:
        beta, POWER = "itakura-saito", 2
    V = np.concatenate([file_spectrogram(p) for p in train_files()])
    if is_loss:
        V = V + np.float32(1e-6 * V.max())  # keep the batch run free of the IS floor
    print(f"V: {V.shape} float32, {V.shape[0] * HOP / SR:.1f} s, {V.nbytes / 2**20:.1f} MiB; "
          f"beta={beta}, k={k}, block={args.block} frames")
    okw = {}
    if args.forget is not None:
        okw["forget"] = args.forget
    if args.n_inner is not None:
        okw["n_inner"] = args.n_inner
    if is_loss:  # the same floor in the online runs (their stream is not offset)
        okw["eps"] = float(1e-6 * V.max())

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        rb = nmf(V, k, beta=beta, max_iter=args.batch_iter, tol=0, random_state=0)
        t_batch = time.perf_counter() - t0
    H_batch = rb.H
    loss_batch = refit_loss(V, H_batch, beta)
    mem_batch = mem_batch10 = float("nan")
    if not args.no_memory:
        mem_batch = peak_mib(lambda: nmf(np.concatenate(
            [file_spectrogram(p) for p in train_files()]), k, beta=beta, max_iter=2, tol=0,
            random_state=0, warn=False))
        mem_batch10 = peak_mib(lambda: nmf(np.concatenate(
            [file_spectrogram(p) for p in train_files()] * 10), k, beta=beta, max_iter=2,
            tol=0, random_state=0, warn=False))
    rows.append((f"batch nmf, {args.batch_iter} it", "1x", V.shape[0], t_batch, loss_batch, 1.0,
                 mem_batch))
    with warnings.catch_warnings():  # about the time of the online runs, for scale
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        short = nmf(V, k, beta=beta, max_iter=10, tol=0, random_state=0)
        t_short = time.perf_counter() - t0
    rows.append(("batch nmf, 10 it", "1x", V.shape[0], t_short, refit_loss(V, short.H, beta),
                 similarity(short.H, H_batch), mem_batch))
    rows.append(("batch nmf (memory only)", "10x", 10 * V.shape[0], float("nan"), float("nan"),
                 float("nan"), mem_batch10))

    cases = [(1, 1), (1, args.passes), (10, 1)]
    for repeat, passes in cases:
        src = stream(repeat, args.block)
        t0 = time.perf_counter()
        res = online_nmf(src if passes > 1 else src(), k, beta=beta, passes=passes,
                         random_state=0, **okw)
        t_on = time.perf_counter() - t0
        mem = float("nan")
        if not args.no_memory:
            mem = peak_mib(lambda src=src, passes=passes: online_nmf(
                src if passes > 1 else src(), k, beta=beta, passes=passes, random_state=0,
                **okw))
        rows.append((f"online, {passes} pass{'es' if passes > 1 else ''}", f"{repeat}x",
                     res.n_frames_seen, t_on, refit_loss(V, res.H, beta),
                     similarity(res.H, H_batch), mem))

    try:  # the same algorithm in scikit-learn, on the in-memory 1x data, as a reference
        from sklearn.decomposition import MiniBatchNMF
    except ImportError:
        MiniBatchNMF = None
    if MiniBatchNMF is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            sk = MiniBatchNMF(k, beta_loss=beta, batch_size=args.block, max_iter=args.passes,
                              tol=0, max_no_improvement=None, random_state=0).fit(V)
            t_sk = time.perf_counter() - t0
        rows.append((f"sklearn MiniBatchNMF, {args.passes} p", "1x", args.passes * V.shape[0],
                     t_sk, refit_loss(V, sk.components_, beta),
                     similarity(sk.components_, H_batch), float("nan")))

    print(f"\n{'dictionary':<26}{'data':>5}{'frames seen':>13}{'time s':>9}"
          f"{'loss/entry':>12}{'vs batch':>10}{'atom sim':>10}{'peak MiB':>10}")
    def fmt(x, spec, width):
        return f"{x:{width}{spec}}" if np.isfinite(x) else f"{'-':>{width}}"

    for name, data, frames, t, loss, sim, mem in rows:
        ratio = loss / loss_batch
        print(f"{name:<26}{data:>5}{frames:>13}{fmt(t, '.2f', 9)}{fmt(loss, '.5g', 12)}"
              f"{fmt(ratio, '.3f', 9)}{'x' if np.isfinite(ratio) else ' '}"
              f"{fmt(sim, '.3f', 10)}{fmt(mem, '.1f', 10)}")
    print("\nloss/entry: activations of the 1x spectrogram re-solved with the atoms fixed; "
          "atom sim: mean cosine to the batch atoms after Hungarian matching; "
          "peak MiB: numpy allocations while learning (tracemalloc, separate run).")


if __name__ == "__main__":
    main()
