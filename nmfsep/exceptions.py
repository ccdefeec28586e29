"""The one small exception family of nmfsep.

Every error a user can cause is an :class:`NmfsepError`.  The subclasses also
derive from the matching built-in so that ``except ValueError`` keeps working
(as scikit-learn's ``InvalidParameterError`` does).
"""

from __future__ import annotations

import sys

__all__ = [
    "NmfsepError",
    "ParameterError",
    "AudioFormatError",
    "DictionaryError",
    "OutputError",
    "ConvergenceWarning",
    "convergence_warning_category",
]


class NmfsepError(Exception):
    """Base class of every error nmfsep raises on purpose."""


class ParameterError(NmfsepError, ValueError, TypeError):
    """A parameter or an input array is invalid (wrong value, shape, dtype, NaN...).

    Like scikit-learn's ``InvalidParameterError`` it is both a ``ValueError`` and a
    ``TypeError``, so callers can catch whichever the built-in would raise.
    """


class AudioFormatError(NmfsepError, ValueError):
    """An audio file cannot be read, or holds audio that cannot be used."""


class DictionaryError(NmfsepError, ValueError):
    """A dictionary or saved-model file is corrupt, foreign, or does not fit the mixture."""


class OutputError(NmfsepError, OSError):
    """An output cannot be written (exists already, folder not writable, ...)."""


class ConvergenceWarning(UserWarning):
    """The solver stopped at ``max_iter`` before reaching ``tol``.

    What nmfsep emits is :func:`convergence_warning_category`: this class, or, once
    scikit-learn is imported, a subclass of it and of scikit-learn's
    ``ConvergenceWarning``, so that filtering either class silences it.
    """


_WITH_SKLEARN: dict[type, type] = {}


def convergence_warning_category() -> type[UserWarning]:
    """Return the category to emit a convergence warning with.

    :class:`ConvergenceWarning`, or, when ``sklearn.exceptions`` is already
    imported, a class deriving from both ours and scikit-learn's
    ``ConvergenceWarning`` (a filter on scikit-learn's class needs scikit-learn
    imported, so nothing else can be filtering on it). scikit-learn is never
    imported here: it is no run-time dependency and costs most of a second.

    Returns
    -------
    type
        A subclass of :class:`ConvergenceWarning`.
    """
    sk = getattr(sys.modules.get("sklearn.exceptions"), "ConvergenceWarning", None)
    if not (isinstance(sk, type) and issubclass(sk, Warning)):
        return ConvergenceWarning
    if sk not in _WITH_SKLEARN:
        _WITH_SKLEARN[sk] = type(
            "ConvergenceWarning", (ConvergenceWarning, sk),
            {"__doc__": ConvergenceWarning.__doc__, "__module__": __name__},
        )
    return _WITH_SKLEARN[sk]
