"""``BetaNMF``: a scikit-learn-compatible estimator around :func:`nmfsep.nmf`.

It follows scikit-learn's estimator contract (``__init__`` only stores its
arguments, everything is checked in ``fit``, fitted state ends with ``_``,
``get_params``/``set_params``, ``transform`` solves the activations with the
atoms frozen) so it can stand wherever ``sklearn.decomposition.NMF`` does —
pipelines, grid searches, clones — without importing scikit-learn at run time.
It holds no math of its own.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ._checks import fail
from .exceptions import NmfsepError, ParameterError
from .nmf import check_nonnegative_matrix, nmf

__all__ = ["BetaNMF", "NotFittedError"]


def _densify(X):
    """Dense copy of a scipy sparse matrix (as after CountVectorizer); anything else as is.

    The engine works on dense blocks of rows; a sparse input is converted once, so
    BetaNMF can follow a vectorizer in a pipeline as scikit-learn's NMF does.
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        return X.toarray()
    return X


class NotFittedError(NmfsepError, ValueError, AttributeError):
    """The estimator is used before ``fit``."""


class BetaNMF:
    """Non-negative matrix factorization ``X ≈ W @ H`` under a β-divergence.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of atoms k; None keeps all features (``n_bins``).
    beta_loss : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        The divergence, as in scikit-learn. Default KL (the audio default).
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"} or None
        Initialisation (None: ``"nndsvda"`` if k <= min(X.shape) else ``"random"``).
    solver : {"mu", "amu", "cd"}, default="mu"
        See :mod:`nmfsep.nmf`.
    max_iter : int, default=200
    tol : float, default=1e-4
        scikit-learn's relative-decrease stopping rule.
    random_state : None, int or generator
    alpha_W, alpha_H, l1_ratio : float
        Regularisation, scaled exactly as in scikit-learn.
    normalize_atoms : bool, default=False
        Unit-norm atoms inside the objective (sparse NMF with ``l1_ratio=1``).
    check_every : int, default=10
        Iterations between entries of ``loss_history_``.
    n_threads : int or None
        Worker threads (default: usable cores).

    Attributes
    ----------
    components_ : np.ndarray [shape=(k, n_features)]
        The atoms H (one per row).
    n_components_ : int
    n_features_in_ : int
    n_iter_ : int
    reconstruction_err_ : float
        ``sqrt(2 D_β(X | W H))``, as scikit-learn defines it.
    loss_history_ : np.ndarray
        Objective at iteration 0 and at every check.

    Examples
    --------
    >>> import numpy as np
    >>> from nmfsep import BetaNMF
    >>> X = np.random.default_rng(0).random((50, 20))
    >>> model = BetaNMF(n_components=3, random_state=0, max_iter=50, tol=0)
    >>> W = model.fit_transform(X)
    >>> W.shape, model.components_.shape
    ((50, 3), (3, 20))
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        beta_loss: str | float = "kullback-leibler",
        init: str | None = None,
        solver: str = "mu",
        max_iter: int = 200,
        tol: float = 1e-4,
        random_state=None,
        alpha_W: float = 0.0,
        alpha_H: float | str = "same",
        l1_ratio: float = 0.0,
        normalize_atoms: bool = False,
        check_every: int = 10,
        n_threads: int | None = None,
    ):
        self.n_components = n_components
        self.beta_loss = beta_loss
        self.init = init
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.normalize_atoms = normalize_atoms
        self.check_every = check_every
        self.n_threads = n_threads

    # -- scikit-learn's parameter protocol -------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator (scikit-learn protocol)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params) -> BetaNMF:
        """Set parameters (scikit-learn protocol); returns self."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ParameterError(
                    f"Invalid parameter {key!r} for BetaNMF; valid parameters are {valid}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self"
        }
        changed = []
        for name in defaults:
            value = getattr(self, name)
            default = defaults[name]
            same = value is default or (type(value) is type(default) and value == default)
            if not same:
                changed.append(f"{name}={value!r}")
        return f"BetaNMF({', '.join(changed)})"

    def __sklearn_tags__(self):
        """Tags for scikit-learn's machinery (scikit-learn is imported only here)."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
            input_tags=InputTags(positive_only=True, sparse=True),
        )

    # -- fitting ----------------------------------------------------------------------
    def _nmf_kwargs(self) -> dict[str, Any]:
        return dict(
            beta=self.beta_loss,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            alpha_W=self.alpha_W,
            alpha_H=self.alpha_H,
            l1_ratio=self.l1_ratio,
            normalize_atoms=self.normalize_atoms,
            check_every=self.check_every,
            n_threads=self.n_threads,
        )

    def fit_transform(self, X, y=None, W=None, H=None) -> np.ndarray:
        """Learn the atoms from X and return the activations.

        Parameters
        ----------
        X : array-like [shape=(n_samples, n_features)], non-negative
            Data (for audio: frames × frequency bins).
        y : ignored
        W : array-like [shape=(n_samples, k)], optional
            Initial activations when ``init="custom"``.
        H : array-like [shape=(k, n_features)], optional
            Initial atoms when ``init="custom"``.

        Returns
        -------
        W : np.ndarray [shape=(n_samples, k)]
        """
        X = check_nonnegative_matrix(_densify(X), "X")
        res = nmf(
            X,
            self.n_components,
            init=self.init,
            W=W,
            H=H,
            random_state=self.random_state,
            **self._nmf_kwargs(),
        )
        self.components_ = res.H
        self.n_components_ = res.H.shape[0]
        self.n_features_in_ = X.shape[1]
        self.n_iter_ = res.n_iter
        self.reconstruction_err_ = res.reconstruction_err
        self.loss_history_ = res.loss_history
        return res.W

    def fit(self, X, y=None, **params) -> BetaNMF:
        """Learn the atoms from X; returns self (see :meth:`fit_transform`)."""
        self.fit_transform(X, **params)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError(
                "This BetaNMF instance is not fitted yet; call 'fit' before using this method"
            )

    def transform(self, X) -> np.ndarray:
        """Activations of X with the atoms held fixed (supervised NMF).

        Parameters
        ----------
        X : array-like [shape=(n_samples, n_features)], non-negative

        Returns
        -------
        W : np.ndarray [shape=(n_samples, k)]
        """
        self._check_fitted()
        X = check_nonnegative_matrix(_densify(X), "X")
        if X.shape[1] != self.n_features_in_:
            raise ParameterError(
                f"X has {X.shape[1]} features, but BetaNMF is expecting "
                f"{self.n_features_in_} features as input"
            )
        res = nmf(
            X,
            self.n_components_,
            H=self.components_.astype(X.dtype, copy=False),
            update_H=False,
            random_state=self.random_state,
            **self._nmf_kwargs(),
        )
        return res.W

    def inverse_transform(self, X) -> np.ndarray:
        """Return the data model ``W @ components_``.

        Parameters
        ----------
        X : array-like [shape=(n_samples, k)]
            Activations.

        Returns
        -------
        np.ndarray [shape=(n_samples, n_features)]
        """
        self._check_fitted()
        W = np.asarray(X)
        if W.ndim != 2 or W.shape[1] != self.n_components_:
            raise fail("X", f"activations of shape (n_samples, {self.n_components_})", W.shape)
        return W @ self.components_
