"""nmfsep: audio source separation with spectrogram non-negative matrix factorization.

``V ≈ W @ H`` with V ``(n_frames, n_bins)`` a magnitude or power spectrogram,
W ``(n_frames, k)`` the activations and H ``(k, n_bins)`` the spectral atoms.
Heavy submodules are imported lazily so that ``import nmfsep`` and the command
line start fast.
"""

from __future__ import annotations

import importlib

from . import _startup

if _startup.is_command_line():  # before the heavy imports below (nmfsep.cli.main ends it)
    _startup.defer_signals()

from ._version import __version__

# Functions named like their modules are imported eagerly: importing a submodule
# binds the package attribute to the module, which would shadow a lazy function.
from .dictionary import Dictionary, learn_dictionary
from .divergence import beta_divergence
from .exceptions import (
    AudioFormatError,
    ConvergenceWarning,
    DictionaryError,
    NmfsepError,
    OutputError,
    ParameterError,
)
from .nmf import NMFResult, nmf
from .separate import SeparationResult, separate

_LAZY = {
    "BetaNMF": "nmfsep.estimator",
    "STFTConfig": "nmfsep.spectral",
    "load_model": "nmfsep.model",
    "separate_file": "nmfsep.files",
    "evaluate_separation": "nmfsep.evaluate",
    "evaluate_files": "nmfsep.evaluate",
    "si_sdr": "nmfsep.evaluate",
    "rank_sweep": "nmfsep.rank",
    "rank_sweep_audio": "nmfsep.rank",
    "online_nmf": "nmfsep.online",
    "transform_blocks": "nmfsep.online",
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
    "Dictionary",
    "learn_dictionary",
    "separate",
    "SeparationResult",
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
