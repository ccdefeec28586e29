"""The compiled KL/IS kernel against the numpy path of the same update (the reference)."""

import platform

import numpy as np
import pytest

from nmfsep._mu import MUSettings, mu_exponent, mu_pass, split_rows


def _problem(n_frames, n_bins, k, dtype, seed=0, zeros=False):
    rng = np.random.default_rng(seed)
    V = rng.gamma(0.5, 1.0, (n_frames, n_bins))
    if zeros:
        V[rng.random(V.shape) < 0.2] = 0.0  # digital silence
    W = rng.random((n_frames, k)) + 0.05
    H = rng.random((k, n_bins)) + 0.05
    return (np.ascontiguousarray(a, dtype=dtype) for a in (V, W, H))


def _both(V, W, H, free=None, update_H=True, **settings):
    """Run the fused kernel and the numpy path; return (W, num, den) of each."""
    out = []
    for fused in (True, False):
        s = MUSettings(fused=fused, **settings)
        Wc = W.copy()
        acc = mu_pass(V, Wc, H, s, update_W=True, update_H=update_H, free=free, pool=None,
                      n_parts=3)
        out.append((Wc, *(acc if acc is not None else (None, None))))
    return out


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("n_frames,k,n_bins", [(37, 5, 33), (64, 8, 100), (9, 1, 33), (3, 4, 48),
                                               (50, 12, 33), (75, 6, 97)])
def test_fused_kernel_matches_numpy_path(dtype, rtol, beta, n_frames, k, n_bins):
    # row counts that are not multiples of 4 (and shorter than a group of 4) exercise
    # the padded tail, more than 32 rows several blocks; k = 1, 5, 6 the atoms left over
    # from groups of four; bins that are not a multiple of 48 the padded last panel
    V, W, H = _problem(n_frames, n_bins, k, dtype)
    (Wf, nf, df), (Wn, nn, dn) = _both(V, W, H, beta=beta, exponent=mu_exponent(beta))
    np.testing.assert_allclose(Wf, Wn, rtol=rtol)
    np.testing.assert_allclose(nf, nn, rtol=rtol)
    np.testing.assert_allclose(df, dn, rtol=rtol)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_fused_kernel_penalties_exponent_free_atoms_and_floors(beta):
    V, W, H = _problem(41, 29, 7, np.float64, seed=1, zeros=True)
    free = np.array([1, 4, 5, 6])
    (Wf, nf, df), (Wn, nn, dn) = _both(
        V, W, H, free=free, beta=beta, exponent=1.7 * mu_exponent(beta), l1_W=0.3, l2_W=0.2,
        v_floor=1e-3 if beta == 0 else 0.0,
    )
    np.testing.assert_allclose(Wf, Wn, rtol=1e-12)
    assert nf.shape == (4, 29)
    np.testing.assert_allclose(nf, nn, rtol=1e-12)
    np.testing.assert_allclose(df, dn, rtol=1e-12)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_fused_kernel_updates_only_W_when_atoms_are_fixed(beta):
    V, W, H = _problem(30, 17, 6, np.float32, seed=2)
    (Wf, nf, _), (Wn, nn, _) = _both(V, W, H, update_H=False, beta=beta,
                                     exponent=mu_exponent(beta))
    assert nf is None and nn is None
    np.testing.assert_allclose(Wf, Wn, rtol=2e-5)


def test_fused_kernel_leaves_inputs_untouched_and_snaps_tiny_activations():
    V, W, H = _problem(21, 13, 3, np.float64, seed=3)
    W[0, 0] = 1e-300  # β < 1: scikit-learn sets activations below float64 eps to zero
    V0, H0 = V.copy(), H.copy()
    s = MUSettings(beta=0.0, exponent=0.5)
    mu_pass(V, W, H, s, update_W=True, update_H=True, free=None, pool=None, n_parts=2)
    assert W[0, 0] == 0.0
    np.testing.assert_array_equal(V, V0)
    np.testing.assert_array_equal(H, H0)


def test_row_ranges_cover_every_row_once():
    for n in (1, 5, 63, 64, 65, 1000):
        parts = split_rows(n, 8, 16)
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))


@pytest.mark.parametrize("n", [128, 2584, 25_800, 25_833])
def test_row_ranges_are_nearly_equal_and_the_longer_ones_come_first(n):
    # the slowest range sets the time of a pass (ranges of whole 128-row blocks
    # used to differ by 20 % on a 60-s spectrogram)
    parts = split_rows(n, 4)
    sizes = [b - a for a, b in parts]
    assert len(parts) == 4
    assert all(a % 32 == 0 for a, _ in parts)
    assert max(sizes) - min(sizes) < 2 * 32  # one unit, plus a last unit that is partial
    assert sizes == sorted(sizes, reverse=True)


def test_generated_tiles_are_up_to_date():
    import hashlib
    from pathlib import Path

    import nmfsep._gen_tiles as gen
    from nmfsep._kernels import TILES_SHA256

    text = Path(gen.__file__).with_name("_tiles.py").read_text()
    assert text == gen.source(), "nmfsep/_tiles.py is stale: run python -m nmfsep._gen_tiles"
    # else numba would keep running its cached build of the old tiles
    assert TILES_SHA256 == hashlib.sha256(text.encode()).hexdigest()


def test_kernel_compiles_with_the_slp_vectoriser_and_restores_numba_config():
    import numba

    from nmfsep._kernels import compiled, mu_rows

    V, W, H = _problem(8, 50, 4, np.float32, seed=4)
    args = (V, W, H, np.arange(4), np.ones(4), False, 0.0, 0.0, 1.0, False, 0.0, True, True,
            0, 8, 64, np.zeros((4, 50)), np.zeros((4, 1)))
    before = numba.config.SLP_VECTORIZE
    assert compiled(*args) is mu_rows
    assert numba.config.SLP_VECTORIZE == before
    assert len(mu_rows.signatures) >= 1


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"),
    reason="inspects x86 assembly for packed FMA/multiply instructions",
)
def test_tiles_become_vector_code_only_with_the_slp_vectoriser():
    # The tiles are plain scalar code per lane; only the SLP vectoriser packs them into
    # vector FMAs (else they run ~20x slower). Guards against a numba / LLVM change.
    import re

    from numba import types

    from nmfsep._kernels import slp_vectorizer
    from nmfsep._tiles import wh_tile

    def packed_fmas(sig) -> int:
        asm = wh_tile.inspect_asm(sig)
        return len(re.findall(r"\tv?f?n?madd\w*p[sd]\s|\tv?mulp[sd]\s", asm))

    def sig(dtype):  # a read-only Hp: a signature the kernel itself never compiles
        c2 = types.Array(dtype, 2, "C")
        return (c2, types.int64, types.Array(dtype, 3, "C", readonly=True), c2)

    sig_on, sig_off = sig(types.float64), sig(types.float32)
    with slp_vectorizer():
        wh_tile.compile(sig_on)
    wh_tile.compile(sig_off)
    assert packed_fmas(sig_on) >= 12  # 4 rows x 48 lanes: 24 FMAs of 8 doubles (AVX-512)
    assert packed_fmas(sig_off) < 8


@pytest.mark.skipif(platform.system() == "Windows", reason="flock is POSIX")
def test_the_cache_lock_is_held_across_processes(tmp_path):
    # a batch's worker processes compile under one machine-wide lock (numba's cache is
    # not safe for concurrent compiles): while one process holds it, no other gets it
    import fcntl
    import os
    import subprocess
    import sys
    import tempfile

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom nmfsep._kernels import cache_lock\n"
         "with cache_lock():\n    print('held', flush=True)\n    sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"  # (the child made the file)
        fd = os.open(os.path.join(tempfile.gettempdir(), "nmfsep-numba-cache.lock"),
                     os.O_RDONLY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        child.stdin.close()  # the child leaves the lock and ends
        assert child.wait(timeout=60) == 0
        # free now (blocking: another pytest-xdist worker may be compiling under it)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.close(fd)
    finally:
        if child.poll() is None:
            child.kill()


def test_compile_once_compiles_for_the_arguments_types_once():
    from nmfsep._kernels import compile_once
    from nmfsep._wiener_kernels import masks_stereo

    class Counting:  # a dispatcher that counts its compiles
        calls: list = []

        def compile(self, signature):
            self.calls.append(signature)

    fake = Counting()
    a32, a64 = np.ones(3, np.float32), np.ones(3)
    assert compile_once(fake, a32, 1) is fake
    compile_once(fake, a32, 2)  # the same types: not again
    compile_once(fake, a64, 1)  # other types: once more
    assert len(fake.calls) == 2 and fake.calls[0] != fake.calls[1]
    # and a real kernel, compiled, runs
    x = np.ones((3, 4), np.complex64)
    v = np.ones((2, 3, 4), np.float32)
    r = [np.ones((2, 4)) for _ in range(4)]
    M = np.zeros((2, 2, 3, 4), np.complex64)
    args = (x, x, v, *r, 1e-6, 0, 3, 0, 4, M)
    compile_once(masks_stereo, *args)(*args)
    np.testing.assert_allclose(M, 0.5)  # equal powers, equal covariances: halves
