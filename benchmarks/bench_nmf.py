"""Speed of nmfsep's β-NMF against scikit-learn's NMF(solver="mu"), in one process.

Both run on the same V (the magnitude spectrogram of real audio from
audio_samples/, tiled to the wanted length, 22050 Hz, n_fft 2048, hop 512,
float32) from the same initial matrices, for the same number of iterations;
the script prints ms/iteration, the final losses (which must agree) and the
speed ratio. Absolute times drift on shared machines; the ratio is the figure.

The same work on both sides: with ``tol=0`` scikit-learn evaluates the loss once
(at the start), so nmfsep runs with ``check_every=n_iter`` (the loss at the start
and the end) instead of its default loss record every 10 iterations, which costs
about 5 % more per iteration at k = 32.

    python benchmarks/bench_nmf.py                 # 60 s cases + 10-minute case
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_nmf.py
                                                   # where these pin OpenBLAS to old kernels
    python benchmarks/bench_nmf.py --quick         # fewer iterations
    python benchmarks/bench_nmf.py --time-to-loss
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def spectrogram(seconds: float, sr: int = 22050) -> np.ndarray:
    """|STFT| (n_frames, 1025) float32 of real audio from audio_samples/, tiled to `seconds`."""
    import librosa

    from nmfsep.io import load

    clips = []
    for path in sorted((ROOT / "audio_samples").rglob("*.flac")):
        if path.name == "speech.flac" or "speech" in path.parent.name:
            continue
        y, _ = load(path, sr=sr)
        clips.append(y.mean(axis=0))
    y = np.concatenate(clips)
    n = int(seconds * sr)
    y = np.tile(y, -(-n // y.size))[:n]
    V = np.abs(librosa.stft(y, n_fft=2048, hop_length=512)).T
    return np.ascontiguousarray(V, dtype=np.float32)


def blas() -> str:
    """The BLAS scikit-learn runs on: library, kernel family and threads (threadpoolctl).

    Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to an older kernel
    family; a fair comparison unsets both for the benchmark command alone.
    """
    from threadpoolctl import threadpool_info

    return "BLAS: " + ", ".join(
        f"{i['internal_api']} {i.get('architecture', '?')} x{i['num_threads']}"
        for i in threadpool_info() if i["user_api"] == "blas"
    )


def timed(fn, repeat: int = 1):
    best = np.inf
    out = None
    for _ in range(repeat):
        # OpenBLAS's worker threads spin for a while after a call: let them go idle, so
        # that neither side is timed while the other side's threads still hold a core
        time.sleep(0.3)
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_case(V, beta, k, n_iter, repeat, solver="mu"):
    from sklearn.decomposition import non_negative_factorization

    from nmfsep import beta_divergence, nmf

    rng = np.random.default_rng(0)
    avg = np.sqrt(V.mean() / k)
    W0 = (avg * rng.random((V.shape[0], k)) + 1e-3).astype(np.float32)
    H0 = (avg * rng.random((k, V.shape[1])) + 1e-3).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # warm-up (thread pools, page faults, BLAS buffers) before timing either side
        non_negative_factorization(V, W=W0.copy(), H=H0.copy(), n_components=k, init="custom",
                                   solver="mu", beta_loss=beta, tol=0, max_iter=2)
        nmf(V, k, beta=beta, solver=solver, init="custom", W=W0, H=H0, tol=0, max_iter=2)
        # the two sides take turns, so that both see the same moments of a noisy machine
        t_sk = t_us = np.inf
        for _ in range(repeat):
            t, (Ws, Hs, _) = timed(
                lambda: non_negative_factorization(
                    V, W=W0.copy(), H=H0.copy(), n_components=k, init="custom", solver="mu",
                    beta_loss=beta, tol=0, max_iter=n_iter,
                )
            )
            t_sk = min(t_sk, t)
            t, res = timed(
                lambda: nmf(V, k, beta=beta, solver=solver, init="custom", W=W0, H=H0, tol=0,
                            max_iter=n_iter, check_every=n_iter)
            )
            t_us = min(t_us, t)
    loss_sk = beta_divergence(V, Ws, Hs, beta)
    loss_us = beta_divergence(V, res.W, res.H, beta)
    return dict(
        beta=beta, k=k, frames=V.shape[0], iters=n_iter,
        sk_ms=1e3 * t_sk / n_iter, us_ms=1e3 * t_us / n_iter,
        loss_sk=loss_sk, loss_us=loss_us, ratio=t_sk / t_us,
    )


def peak_memory(V, beta, k, n_iter=5):
    """Peak bytes allocated by numpy during a fit, beyond V itself (tracemalloc)."""
    from nmfsep import nmf

    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    nmf(V, k, beta=beta, init="random", random_state=0, tol=0, max_iter=n_iter)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def time_to_loss(V, beta, k=8, n_ref=200):
    """Time for each nmfsep solver to reach scikit-learn's `n_ref`-iteration loss."""
    from sklearn.decomposition import non_negative_factorization

    from nmfsep import beta_divergence, nmf

    if beta == "itakura-saito":
        V = V + 1e-6 * V.max()  # scikit-learn refuses zeros for IS
    rng = np.random.default_rng(0)
    avg = np.sqrt(V.mean() / k)
    W0 = (avg * rng.random((V.shape[0], k)) + 1e-3).astype(np.float32)
    H0 = (avg * rng.random((k, V.shape[1])) + 1e-3).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sk, (Ws, Hs, _) = timed(lambda: non_negative_factorization(
            V, W=W0.copy(), H=H0.copy(), n_components=k, init="custom", solver="mu",
            beta_loss=beta, tol=0, max_iter=n_ref))
    target = beta_divergence(V, Ws, Hs, beta)
    print(f"{beta} k={k}: scikit-learn {n_ref} iterations: {t_sk:.2f} s, loss {target:.7g}")
    for solver, variant in (("mu", {}), ("amu", {}), ("cd", {})):
        if solver == "cd" and beta != "kullback-leibler":
            continue
        hit = {}
        t0 = time.perf_counter()

        def cb(i, loss, hit=hit, t0=t0):
            if loss is not None and "t" not in hit and loss <= target:
                hit["t"], hit["i"] = time.perf_counter() - t0, i

        # the loss is recorded every iteration so the crossing is seen when it happens;
        # that costs mu a loss evaluation per iteration, which amu pays anyway
        nmf(V, k, beta=beta, solver=solver, init="custom", W=W0, H=H0, tol=0,
            max_iter=3 * n_ref if solver != "cd" else 60, callback=cb, check_every=1,
            warn=False, **variant)
        if hit:
            print(f"  nmfsep {solver:>4}: reached it after {hit['i']:>4} iterations, "
                  f"{hit['t']:6.2f} s -> {t_sk / hit['t']:.1f}x less time than scikit-learn")
        else:
            print(f"  nmfsep {solver:>4}: did not reach it")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer iterations, no 10-minute case")
    ap.add_argument("--time-to-loss", action="store_true",
                    help="time for each solver to reach scikit-learn's 200-iteration loss")
    ap.add_argument("--solver", default="mu")
    args = ap.parse_args()
    n_iter = 10 if args.quick else 30
    V60 = spectrogram(60)
    print(f"V: {V60.shape} float32 (60 s at 22050 Hz); {blas()}")
    if args.time_to_loss:
        for beta in ("kullback-leibler", "itakura-saito"):
            time_to_loss(V60, beta)
        return
    Vis = V60 + 1e-6 * V60.max()
    print(f"{'case':<14}{'frames':>8}{'sklearn ms/it':>15}{'nmfsep ms/it':>14}{'ratio':>8}"
          f"{'loss sklearn':>16}{'loss nmfsep':>16}")
    cases = [("kullback-leibler", 8, V60), ("itakura-saito", 8, Vis),
             ("kullback-leibler", 32, V60), ("itakura-saito", 32, Vis)]
    if not args.quick:
        cases.append(("kullback-leibler", 8, np.ascontiguousarray(np.tile(V60, (10, 1)))))
    for beta, k, V in cases:
        r = run_case(V, beta, k, n_iter if V.shape[0] < 5000 else max(5, n_iter // 3),
                     repeat=5 if V.shape[0] < 5000 else 2, solver=args.solver)
        name = f"{'KL' if beta[0] == 'k' else 'IS'} k={k}"
        print(f"{name:<14}{r['frames']:>8}{r['sk_ms']:>15.2f}{r['us_ms']:>14.2f}"
              f"{r['ratio']:>7.1f}x{r['loss_sk']:>16.7g}{r['loss_us']:>16.7g}")
    m1 = peak_memory(V60, "kullback-leibler", 8)
    m10 = peak_memory(np.ascontiguousarray(np.tile(V60, (10, 1))), "kullback-leibler", 8)
    print(f"peak extra memory during a KL k=8 fit: {m1 / 2**20:.1f} MiB for 60 s "
          f"(V = {V60.nbytes / 2**20:.1f} MiB), {m10 / 2**20:.1f} MiB for 10 min "
          f"(V = {10 * V60.nbytes / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
