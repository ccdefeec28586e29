import numpy as np
import pytest

from nmfsep import ParameterError, beta_divergence
from nmfsep.divergence import EPSILON, beta_loss_to_float


def dense_reference(V, W, H, beta):
    """Slow, obvious element-wise β-divergence (zeros of V handled by continuity)."""
    WH = W @ H
    total = 0.0
    for v, m in zip(V.ravel(), WH.ravel(), strict=True):
        m = max(m, EPSILON)
        if beta == 2:
            total += 0.5 * (v - m) ** 2
        elif beta == 1:
            total += (v * np.log(v / m) if v > EPSILON else 0.0) - v + m
        elif beta == 0:
            total += v / m - np.log(v / m) - 1
        else:
            total += (v**beta + (beta - 1) * m**beta - beta * v * m ** (beta - 1)) / (
                beta * (beta - 1)
            )
    return total


@pytest.mark.parametrize("beta", [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_divergence_matches_dense_reference(beta, dtype, rng):
    V = rng.gamma(1.0, 1.0, (30, 20)).astype(dtype)
    W = rng.gamma(1.0, 1.0, (30, 3)).astype(dtype)
    H = rng.gamma(1.0, 1.0, (3, 20)).astype(dtype)
    V64, W64, H64 = (a.astype(np.float64) for a in (V, W, H))
    expected = dense_reference(V64, W64, H64, beta)
    got = beta_divergence(V, W, H, beta, block_rows=7)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    assert got == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_divergence_with_zeros_in_V(beta, rng):
    V = rng.gamma(1.0, 1.0, (20, 10))
    V[V < 0.5] = 0.0
    W = rng.random((20, 2)) + 0.1
    H = rng.random((2, 10)) + 0.1
    assert beta_divergence(V, W, H, beta) == pytest.approx(dense_reference(V, W, H, beta), rel=1e-9)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0, 0.5])
def test_divergence_is_zero_at_perfect_fit(beta, rng):
    W = rng.random((15, 3)) + 0.1
    H = rng.random((3, 8)) + 0.1
    assert beta_divergence(W @ H, W, H, beta) == pytest.approx(0.0, abs=1e-9)


def test_matches_scikit_learn_private_divergence(rng):
    from sklearn.decomposition._nmf import _beta_divergence

    V = rng.random((25, 12)) + 0.01
    W, H = rng.random((25, 3)), rng.random((3, 12))
    for beta in [0.0, 0.7, 1.0, 2.0, 2.5]:
        for sq in (False, True):
            ours = beta_divergence(V, W, H, beta, square_root=sq)
            assert ours == pytest.approx(_beta_divergence(V, W, H, beta, square_root=sq), rel=1e-10)


def test_beta_names():
    assert beta_loss_to_float("frobenius") == 2.0
    assert beta_loss_to_float("kullback-leibler") == 1.0
    assert beta_loss_to_float("itakura-saito") == 0.0
    assert beta_loss_to_float(1.5) == 1.5
    msg = r"^beta_loss must be one of .* or a real number, got 'kl-divergence'$"
    with pytest.raises(ParameterError, match=msg):
        beta_loss_to_float("kl-divergence")
    with pytest.raises(ParameterError, match="beta_loss must be a finite number"):
        beta_loss_to_float(float("nan"))
    with pytest.raises(ParameterError):
        beta_loss_to_float(True)


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_compiled_and_numpy_divergence_terms_agree(beta, dtype, rtol, rng):
    # large problems sum KL / IS in a compiled pass, small ones in numpy (use_kernel)
    from nmfsep.divergence import divergence_terms

    V = rng.gamma(1.0, 1.0, (40, 30))
    V[rng.random(V.shape) < 0.2] = 0.0  # entries at or below EPSILON: model term only
    WH = rng.random((40, 30)) + 0.01
    WH[0, :3] = 0.0  # floored at EPSILON
    V, WH = V.astype(dtype), WH.astype(dtype)
    compiled = divergence_terms(V, WH.copy(), beta, fused=True)
    numpy_sum = divergence_terms(V, WH.copy(), beta, fused=False)
    assert compiled == pytest.approx(numpy_sum, rel=rtol)


def test_beta_errors_name_the_callers_argument() -> None:
    from nmfsep import BetaNMF
    from nmfsep.nmf import nmf

    V = np.ones((4, 4))
    with pytest.raises(ParameterError, match=r"^beta must be one of"):
        nmf(V, 2, beta="kl-divergence")
    with pytest.raises(ParameterError, match=r"^beta_loss must be one of"):
        BetaNMF(2, beta_loss="kl-divergence").fit(V)
