"""Tests of nmfsep.masks: group models, soft/binary masks, applying them to an STFT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nmfsep import masks as masks_module
from nmfsep.exceptions import ParameterError
from nmfsep.masks import GroupMasks, apply_masks, group_models, masks


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _check_soft(M: np.ndarray, shape: tuple[int, ...]) -> None:
    assert M.shape == shape
    assert M.dtype == np.float32
    assert np.isfinite(M).all()
    assert (M >= 0).all() and (M <= 1).all()
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-6)


# --------------------------------------------------------------------------- group_models


def test_group_models_sum_and_values(rng: np.random.Generator) -> None:
    W = rng.random((10, 6)).astype(np.float32)
    H = rng.random((6, 8)).astype(np.float32)
    W0, H0 = W.copy(), H.copy()
    groups = {"a": [0, 2], "b": [1, 3, 4], "residual": [5]}
    models = group_models(W, H, groups)
    assert models.shape == (3, 10, 8) and models.dtype == np.float32
    np.testing.assert_allclose(models[0], W[:, [0, 2]] @ H[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(models.sum(axis=0), W @ H, rtol=1e-5)
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(H, H0)


def test_group_models_order_and_numpy_indices(rng: np.random.Generator) -> None:
    W, H = rng.random((4, 3)), rng.random((3, 5))
    models = group_models(W, H, {"z": np.array([2]), "a": (0, 1)})
    assert models.dtype == np.float64
    np.testing.assert_allclose(models[0], np.outer(W[:, 2], H[2]))


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ({"a": [0, 1], "b": [2, 3]}, r"out of range \[0, 3\)"),
        ({"a": [0, -1], "b": [2]}, "out of range"),
        ({"a": [0, 1], "b": [1, 2]}, "component 1 is in both group 'a' and group 'b'"),
        ({"a": [0, 0, 1, 2]}, "component 0 is in both group 'a' and group 'a'"),
        ({"a": [0, 1]}, r"component\(s\) \[2\] are in no group.*residual"),
        ({}, "non-empty mapping"),
        ({"a": [0, 1, 2], "b": []}, "group 'b' has no components"),
        ({"a": [0, 1.0, 2]}, "is not an int"),
        ({"a": "012"}, "must list component indices"),
        ({"": [0, 1, 2]}, "non-empty strings"),
    ],
)
def test_group_models_validation(groups: dict, match: str) -> None:
    W, H = np.ones((4, 3)), np.ones((3, 5))
    with pytest.raises(ParameterError, match=match):
        group_models(W, H, groups)


def test_group_models_rejects_bad_factors() -> None:
    g = {"a": [0, 1, 2]}
    with pytest.raises(ParameterError, match="W has 3 components"):
        group_models(np.ones((4, 3)), np.ones((2, 5)), g)
    with pytest.raises(ParameterError, match="non-negative"):
        group_models(-np.ones((4, 3)), np.ones((3, 5)), g)
    with pytest.raises(ParameterError, match="NaN or Inf"):
        group_models(np.ones((4, 3)), np.full((3, 5), np.nan), g)
    with pytest.raises(ParameterError, match=r"shape \(n_frames, k\)"):
        group_models(np.ones(3), np.ones((3, 5)), g)


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("scale", [1.0, 1e30, 1e-30, 0.0])
def test_soft_masks_invariants(power: float, scale: float, rng: np.random.Generator) -> None:
    models = (rng.random((3, 20, 17)) * scale).astype(np.float32)
    models[:, 0, :] = 0.0  # silent frame
    models[1, 1, :] = 0.0  # one group silent
    m0 = models.copy()
    M = masks(models, power=power)
    _check_soft(M, models.shape)
    np.testing.assert_array_equal(models, m0)
    np.testing.assert_allclose(M[:, 0, :], 1 / 3, rtol=1e-6)
    assert not M[1, 1, :].any() or scale == 0.0


def test_soft_mask_formula(rng: np.random.Generator) -> None:
    models = rng.random((4, 6, 5)) + 0.1
    for p in (1.0, 2.0, 3.0):
        expected = models**p / (models**p).sum(axis=0)
        np.testing.assert_allclose(masks(models, power=p), expected, rtol=1e-6)


def test_soft_mask_mixed_extremes() -> None:
    # huge and tiny values in the same bin, float64 beyond float32 range
    models = np.array([[[1e300, 1e-300, 0.0]], [[1e-300, 1e300, 0.0]]])
    M = masks(models, power=2.0)
    _check_soft(M, models.shape)
    np.testing.assert_allclose(M[:, 0, 0], [1.0, 0.0])
    np.testing.assert_allclose(M[:, 0, 2], [0.5, 0.5])


def test_all_zero_models_uniform() -> None:
    models = np.zeros((4, 3, 5), np.float32)
    M = masks(models)
    assert np.isfinite(M).all()
    np.testing.assert_allclose(M, 0.25)
    B = masks(models, kind="binary")
    assert (B[0] == 1).all() and not B[1:].any()


def test_eps_marks_quiet_bins_silent() -> None:
    models = np.array([[[1e-8, 1.0]], [[3e-8, 2.0]]], dtype=np.float32)
    M = masks(models, eps=1e-6)
    np.testing.assert_allclose(M[:, 0, 0], [0.5, 0.5])
    np.testing.assert_allclose(M[:, 0, 1], [0.2, 0.8], rtol=1e-6)
    assert masks(models)[0, 0, 0] == pytest.approx(0.1)


def test_one_group_gives_ones(rng: np.random.Generator) -> None:
    models = rng.random((1, 5, 4)).astype(np.float32)
    models[0, 0] = 0
    for kind in ("soft", "binary"):
        np.testing.assert_array_equal(masks(models, kind=kind), 1.0)  # type: ignore[arg-type]


def test_binary_masks_one_hot(rng: np.random.Generator) -> None:
    models = rng.random((3, 10, 9)).astype(np.float32)
    models[:, 0, 0] = 0.0  # silent bin -> first group
    models[:, 0, 1] = [0.2, 0.5, 0.5]  # tie -> first of the tied groups
    B = masks(models, kind="binary")
    assert B.dtype == np.float32 and B.shape == models.shape
    assert set(np.unique(B)) <= {0.0, 1.0}
    np.testing.assert_array_equal(B.sum(axis=0), 1.0)
    np.testing.assert_array_equal(B.argmax(axis=0)[1:], models.argmax(axis=0)[1:])
    assert B[0, 0, 0] == 1 and B[1, 0, 1] == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "hard"}, "kind must be one of \\('soft', 'binary'\\)"),
        ({"power": 0}, "power must be a finite number > 0"),
        ({"power": -2.0}, "power must be a finite number > 0"),
        ({"power": float("inf")}, "power must be a finite number > 0"),
        ({"power": float("nan")}, "power must be a finite number > 0"),
        ({"eps": -1.0}, "eps must be None or a finite number >= 0"),
        ({"eps": float("nan")}, "eps must be None or a finite number >= 0"),
    ],
)
def test_masks_rejects_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        masks(np.ones((2, 3, 4)), **kwargs)


@pytest.mark.parametrize(
    ("models", "match"),
    [
        (np.ones((3, 4)), "n_groups, n_frames, n_bins"),
        (np.ones((0, 3, 4)), "n_groups >= 1"),
        (-np.ones((2, 3, 4)), "non-negative"),
        (np.full((2, 3, 4), np.inf), "NaN or Inf"),
        (np.full((2, 3, 4), np.nan), "NaN or Inf"),
    ],
)
def test_masks_rejects_models(models: np.ndarray, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        masks(models)


_finite_models = arrays(
    dtype=np.float32,
    shape=st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
    elements=st.one_of(
        st.just(0.0),
        st.floats(0.0, float(np.float32(3e38)), width=32),
        st.floats(0.0, float(np.float32(1e-30)), width=32),
    ),
)


@settings(max_examples=60, deadline=None, database=None)
@given(models=_finite_models, power=st.sampled_from([0.5, 1.0, 2.0, 4.0, 10.0]))
def test_soft_masks_property(models: np.ndarray, power: float) -> None:
    _check_soft(masks(models, power=power), models.shape)


@settings(max_examples=30, deadline=None, database=None)
@given(models=_finite_models)
def test_binary_masks_property(models: np.ndarray) -> None:
    B = masks(models, kind="binary")
    np.testing.assert_array_equal(B.sum(axis=0), 1.0)
    assert set(np.unique(B)) <= {0.0, 1.0}


# --------------------------------------------------------------------------- blocks


def _factors(rng: np.random.Generator, n_frames: int = 300, n_bins: int = 33):
    W = rng.random((n_frames, 6)).astype(np.float32)
    H = rng.random((6, n_bins)).astype(np.float32)
    W[10:20] = 0  # silent frames
    H[:, 5] = 0  # a silent bin
    return W, H, {"a": [0], "b": [1, 4], "c": [2, 3, 5]}


@pytest.mark.parametrize(
    ("kind", "power", "eps"), [("soft", 1.0, None), ("soft", 2.0, None), ("soft", 1.0, 0.05),
                               ("binary", 1.0, None)]
)  # fmt: skip
def test_group_masks_blocks_are_the_masks(kind, power, eps, rng) -> None:
    W, H, groups = _factors(rng)
    W0, H0 = W.copy(), H.copy()
    whole = masks(group_models(W, H, groups), kind=kind, power=power, eps=eps)
    source = GroupMasks(W, H, groups, kind=kind, power=power, eps=eps)
    assert len(source) == 3 and source.names == ["a", "b", "c"]
    assert (source.n_frames, source.n_bins) == (300, 33)
    for t0, t1 in [(0, 300), (0, 1), (17, 40), (299, 300), (5, 5)]:
        block = source(t0, t1)
        assert block.shape == (3, t1 - t0, 33) and block.dtype == np.float32
        np.testing.assert_allclose(block, whole[:, t0:t1], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(H, H0)


def test_group_masks_rejects(rng) -> None:
    W, H, groups = _factors(rng)
    with pytest.raises(ParameterError, match="in no group"):
        GroupMasks(W, H, {"a": [0, 1]})
    with pytest.raises(ParameterError, match="kind must be"):
        GroupMasks(W, H, groups, kind="hard")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="power must be"):
        GroupMasks(W, H, groups, power=0)
    source = GroupMasks(W, H, groups)
    for t0, t1 in [(-1, 3), (3, 2), (0, 301)]:
        with pytest.raises(ParameterError, match="not a range"):
            source(t0, t1)


def test_masks_blocks_change_nothing(rng, monkeypatch) -> None:
    W, H, groups = _factors(rng)
    models = group_models(W, H, groups)
    for kind, power in [("soft", 1.0), ("soft", 2.0), ("binary", 1.0)]:
        whole = masks(models, kind=kind, power=power)  # type: ignore[arg-type]
        with monkeypatch.context() as m:
            m.setattr(masks_module, "_BLOCK_BYTES", 1)  # one frame at a time
            np.testing.assert_array_equal(masks(models, kind=kind, power=power), whole)  # type: ignore[arg-type]


def test_group_models_outer_products_as_matmul(rng) -> None:
    W, H = rng.random((50, 3)), rng.random((3, 7)).astype(np.float32)
    models = group_models(W, H, {"a": [2], "b": [0, 1]})
    assert models.dtype == np.float64
    np.testing.assert_array_equal(models[0], W[:, [2]] @ H[[2]].astype(np.float64))


# --------------------------------------------------------------------------- apply_masks


def test_apply_masks_sum_to_mixture(rng: np.random.Generator) -> None:
    n_ch, n_bins, n_frames = 2, 9, 7
    X = (
        rng.standard_normal((n_ch, n_bins, n_frames))
        + 1j * rng.standard_normal((n_ch, n_bins, n_frames))
    ).astype(np.complex64) * 3e4
    models = rng.random((3, n_frames, n_bins)).astype(np.float32)
    M = masks(models)
    X0, M0 = X.copy(), M.copy()
    S = apply_masks(X, M)
    assert S.shape == (3, n_ch, n_bins, n_frames) and S.dtype == np.complex64
    np.testing.assert_allclose(S.sum(axis=0), X, rtol=1e-5, atol=1e-6 * 3e4)
    # same mask for every channel, transposed to (n_bins, n_frames)
    np.testing.assert_allclose(S[1, 0], M[1].T * X[0], rtol=1e-6)
    np.testing.assert_allclose(S[1, 1], M[1].T * X[1], rtol=1e-6)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(M, M0)


def test_apply_binary_masks_partition(rng: np.random.Generator) -> None:
    X = (rng.standard_normal((1, 5, 4)) + 1j * rng.standard_normal((1, 5, 4))).astype(np.complex128)
    B = masks(rng.random((2, 4, 5)), kind="binary")
    S = apply_masks(X, B)
    assert S.dtype == np.complex128
    np.testing.assert_array_equal(S.sum(axis=0), X)


def test_apply_masks_rejects() -> None:
    X = np.ones((2, 5, 4), np.complex64)
    with pytest.raises(ParameterError, match="do not fit X"):
        apply_masks(X, np.ones((3, 5, 4), np.float32))  # not transposed
    with pytest.raises(ParameterError, match="n_groups, n_frames, n_bins"):
        apply_masks(X, np.ones((4, 5), np.float32))
    with pytest.raises(ParameterError, match="n_channels, n_bins, n_frames"):
        apply_masks(X[0], np.ones((3, 4, 5), np.float32))
    with pytest.raises(ParameterError, match="NaN or Inf"):
        apply_masks(X, np.full((3, 4, 5), np.nan, np.float32))
