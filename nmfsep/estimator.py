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
import sys
from typing import Any

import numpy as np

from ._checks import check_choice, check_int, fail
from .divergence import beta_loss_to_float
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


def _feature_names(X) -> np.ndarray | None:
    """Return the string column names of a DataFrame (``feature_names_in_``), or None."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray([str(c) if isinstance(c, str) else c for c in columns], dtype=object)
    return names if all(isinstance(c, str) for c in names) else None


def _check_same_dtype(X: np.ndarray, **factors) -> None:
    """Refuse a custom factor of another floating dtype than X, as scikit-learn does."""
    for name, value in factors.items():
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype != X.dtype:
            raise fail(name, f"of the same dtype as X ({X.dtype})", dtype)


class NotFittedError(NmfsepError, ValueError, AttributeError):
    """The estimator is used before ``fit``."""


class BetaNMF:
    """Non-negative matrix factorization ``X ≈ W @ H`` under a β-divergence.

    Parameters
    ----------
    n_components : int, "auto" or None, default=None
        Number of atoms k, fixed atoms included. None keeps all features
        (``n_bins``), or the number of ``fixed_atoms``; ``"auto"`` (as in
        scikit-learn) takes k from the custom ``H`` or ``W`` passed to ``fit``,
        else behaves as None.
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
    fixed_atoms : array-like [shape=(k_fixed, n_features)] or None
        Atoms held fixed (bit-identical) by ``fit``: the first ``k_fixed`` rows
        of ``components_``; the other ``n_components - k_fixed`` are learned
        (semi-supervised NMF). See :meth:`from_dictionary`.

    Attributes
    ----------
    components_ : np.ndarray [shape=(k, n_features)]
        The atoms H (one per row).
    n_components_ : int
    n_features_in_ : int
    feature_names_in_ : np.ndarray of str [shape=(n_features,)]
        Only when ``fit`` was given a DataFrame with string column names.
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
        fixed_atoms: np.ndarray | None = None,
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
        self.fixed_atoms = fixed_atoms

    @classmethod
    def from_dictionary(cls, atoms, *, n_free: int = 0, **params) -> BetaNMF:
        """Build an estimator on given atoms: ready to ``transform`` (supervised) or ``fit``.

        Parameters
        ----------
        atoms : array-like [shape=(k, n_features)] or Dictionary
            The atoms, one per row (a :class:`nmfsep.Dictionary` gives its
            ``atoms``; with ``context_frames > 1`` its features are stacked frames,
            see :func:`nmfsep.context.stack_frames`).
        n_free : int, default=0
            Free atoms ``fit`` learns beside the fixed ones (semi-supervised).
        **params
            Other parameters of :class:`BetaNMF` (``beta_loss``, ``max_iter``, ...).

        Returns
        -------
        BetaNMF
            ``fixed_atoms=atoms`` and ``n_components=k + n_free``. With
            ``n_free=0`` it is also fitted: ``components_`` holds the atoms, so
            ``transform`` and ``librosa.decompose.decompose(S, transformer=...,
            fit=False)`` work at once.
        """
        atoms = check_nonnegative_matrix(getattr(atoms, "atoms", atoms), "atoms")
        n_free = check_int(n_free, "n_free", 0)
        est = cls(n_components=atoms.shape[0] + n_free, fixed_atoms=atoms, **params)
        if n_free == 0:
            est._set_fitted(atoms.copy(), n_iter=0, err=float("nan"),
                            losses=np.empty(0), n_features=atoms.shape[1])
        return est

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

    # -- scikit-learn's output API -----------------------------------------------------
    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns: ``betanmf0``, ``betanmf1``, ... (one per atom).

        Parameters
        ----------
        input_features : ignored
            Accepted for scikit-learn's protocol.

        Returns
        -------
        np.ndarray of str [shape=(n_components_,)], dtype object
        """
        self._check_fitted()
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.n_components_)], dtype=object)

    def set_output(self, *, transform: str | None = None) -> BetaNMF:
        """Container of ``transform``/``fit_transform`` output (scikit-learn protocol).

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None
            ``"default"``: NumPy arrays; ``"pandas"``/``"polars"``: a DataFrame
            with :meth:`get_feature_names_out` columns; None leaves it unchanged.
            Unset, scikit-learn's global ``transform_output`` applies.

        Returns
        -------
        BetaNMF
            self.
        """
        if transform is None:
            return self
        check_choice(transform, "transform", ("default", "pandas", "polars"))
        # scikit-learn's attribute name, so that its clone and pipelines see it
        self._sklearn_output_config = {"transform": transform}
        return self

    def _wrap(self, W: np.ndarray, X) -> Any:
        """W in the container chosen by :meth:`set_output` (or scikit-learn's config)."""
        mode = getattr(self, "_sklearn_output_config", {}).get("transform")
        if mode is None:
            sklearn = sys.modules.get("sklearn")  # only if the caller uses scikit-learn
            mode = sklearn.get_config()["transform_output"] if sklearn else "default"
        if mode == "pandas":
            import pandas

            index = X.index if isinstance(X, pandas.DataFrame) else None
            return pandas.DataFrame(W, columns=self.get_feature_names_out(), index=index)
        if mode == "polars":
            import polars

            return polars.DataFrame(W, schema=list(self.get_feature_names_out()))
        return W

    # -- fitting ----------------------------------------------------------------------
    def _nmf_kwargs(self) -> dict[str, Any]:
        return dict(
            beta=beta_loss_to_float(self.beta_loss),  # errors name beta_loss, as the user did
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
            (a DataFrame after :meth:`set_output`)

        Raises
        ------
        ParameterError
            Also a ``TypeError`` when the custom W or H has another dtype than X
            (scikit-learn's rule).
        """
        names = _feature_names(X)
        Xa = check_nonnegative_matrix(_densify(X), "X")
        if self.init == "custom":
            _check_same_dtype(Xa, W=W, H=H)
        res = nmf(
            Xa,
            self._resolved_k(W, H),
            init=self.init,
            W=W,
            H=H,
            fixed_atoms=self.fixed_atoms,
            random_state=self.random_state,
            **self._nmf_kwargs(),
        )
        self._set_fitted(res.H, n_iter=res.n_iter, err=res.reconstruction_err,
                         losses=res.loss_history, n_features=Xa.shape[1])
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self._wrap(res.W, X)

    def _resolved_k(self, W, H) -> int | None:
        """``n_components`` with ``"auto"`` resolved from the custom H or W (else None)."""
        if not (isinstance(self.n_components, str) and self.n_components == "auto"):
            return self.n_components
        if H is not None:
            return np.shape(H)[0]
        if W is not None:
            return np.shape(W)[1]
        return None

    def _set_fitted(self, H: np.ndarray, *, n_iter: int, err: float, losses: np.ndarray,
                    n_features: int) -> None:
        self.components_ = H
        self.n_components_ = H.shape[0]
        self._n_components = H.shape[0]  # scikit-learn's name for it, read by its tests
        self.n_features_in_ = n_features
        self.n_iter_ = n_iter
        self.reconstruction_err_ = err
        self.loss_history_ = losses

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
            (a DataFrame after :meth:`set_output`)
        """
        self._check_fitted()
        Xa = check_nonnegative_matrix(_densify(X), "X")
        if Xa.shape[1] != self.n_features_in_:
            raise ParameterError(
                f"X has {Xa.shape[1]} features, but BetaNMF is expecting "
                f"{self.n_features_in_} features as input"
            )
        res = nmf(
            Xa,
            self.n_components_,
            H=self.components_.astype(Xa.dtype, copy=False),
            update_H=False,
            random_state=self.random_state,
            **self._nmf_kwargs(),
        )
        return self._wrap(res.W, X)

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
