"""nmfsep: audio source separation with spectrogram non-negative matrix factorization.

``V ≈ W @ H`` with V ``(n_frames, n_bins)`` a magnitude or power spectrogram,
W ``(n_frames, k)`` the activations and H ``(k, n_bins)`` the spectral atoms.
Heavy submodules are imported lazily so that ``import nmfsep`` and the command
line start fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from .exceptions import (
    AudioFormatError,
    ConvergenceWarning,
    DictionaryError,
    NmfsepError,
    OutputError,
    ParameterError,
)

# Functions named like their modules are imported eagerly: importing a submodule
# binds the package attribute to the module, which would shadow a lazy function.
from .divergence import beta_divergence
from .nmf import NMFResult, nmf

try:
    __version__ = version("nmfsep")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

_LAZY = {
    "BetaNMF": "nmfsep.estimator",
    "separate": "nmfsep.separate",
    "SeparationResult": "nmfsep.separate",
    "learn_dictionary": "nmfsep.dictionary",
    "Dictionary": "nmfsep.dictionary",
    "STFTConfig": "nmfsep.spectral",
}

__all__ = [
    "AudioFormatError",
    "ConvergenceWarning",
    "DictionaryError",
    "NmfsepError",
    "OutputError",
    "ParameterError",
    "__version__",
    "beta_divergence",
    "nmf",
    "NMFResult",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nmfsep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
