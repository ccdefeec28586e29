"""The one small exception family of nmfsep.

Every error a user can cause is an :class:`NmfsepError`.  The subclasses also
derive from the matching built-in so that ``except ValueError`` keeps working
(as scikit-learn's ``InvalidParameterError`` does).
"""

from __future__ import annotations

__all__ = [
    "NmfsepError",
    "ParameterError",
    "AudioFormatError",
    "DictionaryError",
    "OutputError",
    "ConvergenceWarning",
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
    """The solver stopped at ``max_iter`` before reaching ``tol``."""
