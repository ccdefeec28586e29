"""What a separation will run, decided before any audio is touched.

* :func:`make_plan`: the mode (blind, supervised, semi-supervised), the number of
  components, the fixed atoms and the stem names, from ``n_components``,
  ``n_sources`` (a number, or names: built-in dictionaries and one stem of free atoms),
  ``dictionaries`` (objects, paths or built-in names) and ``n_free``;
* :class:`SeparationParams`: every other setting of the factorization and the masks,
  checked once (:meth:`SeparationParams.validate`);
* :func:`settings_record`: the JSON record of a run that results, saved models,
  reports and summaries carry.

Whole-file (:mod:`nmfsep.separate`), file-level (:mod:`nmfsep.files`) and streamed
(:mod:`nmfsep.stream`) separation all start here, so they agree on names, defaults
and errors.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep import io
from nmfsep._checks import check_choice, check_int, check_real, fail, is_int
from nmfsep._version import __version__
from nmfsep.builtins import (
    builtin_names,
    from_builtin,
    is_builtin,
    load_builtin,
    resolve_dictionary,
)
from nmfsep.dictionary import Dictionary, combine
from nmfsep.exceptions import DictionaryError, ParameterError
from nmfsep.grouping import GROUPING_METHODS, GroupingMethod, components_groups, source_names
from nmfsep.io import OutputFiles
from nmfsep.masks import MASK_KINDS, MaskKind
from nmfsep.nmf import SOLVERS
from nmfsep.percussive import DEFAULT_GROUPING as PERCUSSIVE_GROUPING
from nmfsep.percussive import percussive_names
from nmfsep.spatial_wiener import WIENER_ITER
from nmfsep.spectral import STFTConfig

__all__ = [
    "output_folder",
    "gain_warnings",
    "Plan",
    "SeparationParams",
    "make_plan",
    "fit_frames",
    "load_dictionaries",
    "stem_names",
    "fallback_groups",
    "settings_record",
    "file_summary",
    "default_mask_power",
    "DEFAULT_MASK_POWER",
    "SUPERVISED_MASK_POWER",
    "DEFAULT_GROUPING",
    "DEFAULT_COMPONENTS_PER_SOURCE",
    "MANY_SOURCES",
    "MANY_SOURCES_COMPONENTS_PER_SOURCE",
    "MANY_SOURCES_GROUPING",
    "components_per_source",
    "DEFAULT_NAMED_FREE",
    "RESIDUAL",
    "AUTO_SOURCES",
    "RELEARN_USES",
    "DEFAULT_RELEARN",
    "SPATIAL_MODELS",
    "DEFAULT_SPATIAL",
    "MAX_GAIN_CHANNELS",
    "GAIN_INIT_BLIND",
    "GAIN_INIT_SUPERVISED",
    "TIE_GAINS",
    "MIN_PAN_SPREAD",
    "HARMONIC_USES",
    "HARMONIC_FIT_RATIO",
    "HARMONIC_CHOICE_SECONDS",
    "SUPERVISED_JOINT_GAINS",
    "SEMI_JOINT_GAINS",
    "harmonic_in_use",
    "plain_plan",
]

#: Exponent of the α-Wiener masks of blind separation: 1 and 1.5 tie on blind duos
#: and trios (+0.07 / -0.31 dB for 1.5, benchmarks/bench_grouping.py at k=16).
#: Checked leave-one-family-out on 8 duos and 8 trios a family (1, 1.5, 2; bench_blind's
#: ``b:...:m<power>``): every trio fold kept 1; on duos two folds chose 1.5, held out
#: within 0.13 dB of 1.
DEFAULT_MASK_POWER = 1.0
#: Exponent of the α-Wiener masks with dictionaries (supervised, semi-supervised): with
#: the default dictionaries (48 atoms of 3 frames) 1.5 separated best over the four
#: benchmark tasks, between 1 (piano + flute -1.1 dB) and 2 (drums + bass -0.1 dB)
#: (benchmarks/bench_separation.py). Checked leave-one-family-out on the five families
#: of benchmarks/bench_heldout.py (1, 1.5, 2): three folds chose 2, by less than 0.2 dB,
#: and held out it lost on each of those families (mean over tasks -0.13 FluidR3, -0.13
#: MuseScore, -0.04 OPL3; +0.2 on speech, -0.6 to +0.3 elsewhere); 1 lost up to 1.4 dB.
SUPERVISED_MASK_POWER = 1.5
#: Grouping of blind components into sources: "timbre" came closest to the oracle
#: grouping on duos and trios (benchmarks/bench_grouping.py).
DEFAULT_GROUPING: GroupingMethod = "timbre"
#: Blind components per source when only ``n_sources`` is given: 8 beat 4 on duos
#: and trios (benchmarks/bench_grouping.py); from :data:`MANY_SOURCES` sources on,
#: :data:`MANY_SOURCES_COMPONENTS_PER_SOURCE`.
DEFAULT_COMPONENTS_PER_SOURCE = 8
#: From this many sources on, blind separation without ``percussive`` uses
#: :data:`MANY_SOURCES_COMPONENTS_PER_SOURCE` components per source (when ``n_components``
#: is not given) and :data:`MANY_SOURCES_GROUPING` (when ``grouping`` is not given).
#: Chosen leave-one-family-out on 8 trios (piano + flute + bass) a family among 4
#: components-per-source counts x 4 groupings: every held-out family chose 12 and
#: "kmeans" but OPL3 (24 and Ward of the power MFCCs), and gained +0.5 / +2.7 / +4.0 /
#: +2.2 dB median SDR over 8 and "timbre" (FluidR3 / MuseScore / TimGM6mb / OPL3). On
#: duos the same protocol lost 3.5 dB on FluidR3 and 0.6 on TimGM6mb, so two sources
#: keep the defaults above (benchmarks/bench_blind.py's docstring has the command). Four
#: sources (``--tasks quartet``: a trio plus drums, 8 a family, no part in the choice)
#: fail without ``percussive``, the pipeline too (median SDR -0.9 to +2.5 dB); there
#: these defaults give -0.21 / 1.21 / -0.27 / 0.24 dB against -0.17 / 2.50 / 1.36 / -0.85
#: for 8 and "timbre" (FluidR3 / MuseScore / TimGM6mb / OPL3): no case for another
#: rule. With ``percussive``: 1.96 / 4.73 / 2.87 / 1.31 (:mod:`nmfsep.grouping`'s
#: "register" for three sources or more).
MANY_SOURCES = 3
MANY_SOURCES_COMPONENTS_PER_SOURCE = 12
MANY_SOURCES_GROUPING: GroupingMethod = "kmeans"
#: Stem of the free atoms in semi-supervised separation.
RESIDUAL = "residual"
#: Free atoms of the one named source that is not a built-in (``n_sources=["drums",
#: "bass", "other"]``) when ``n_free`` is 0: the blind components per source, untuned.
DEFAULT_NAMED_FREE = DEFAULT_COMPONENTS_PER_SOURCE
#: Models of multichannel input: ``"shared"``, one model of the channels combined and the
#: same masks for every channel; ``"gains"``, a gain per channel and component
#: (:mod:`nmfsep.ntf`), so every channel gets its own masks.
SPATIAL_MODELS = ("shared", "gains")
#: The model of multichannel input when ``spatial`` is None (mono is always "shared"):
#: chosen on the FluidR3 family of benchmarks/bench_stereo.py (stereo 44.1 kHz duo and
#: drums + bass, four placements apart and one together), where "gains" gained a median
#: +3.9 dB supervised and +12.4 dB blind at distinct positions and 0.00 dB at one place
#: (the shared model is used there); held-out TimGM6mb: see the README.
DEFAULT_SPATIAL = "gains"
#: Initial gains of ``spatial="gains"`` (:func:`nmfsep.ntf.initial_gains`), blind and with
#: dictionaries.
GAIN_INIT_BLIND = "peaks"
GAIN_INIT_SUPERVISED = "share"
#: Blind ``spatial="gains"``: at most ``BLIND_COARSE_ITER`` iterations on frames averaged
#: in groups of ``BLIND_POOL_FRAMES``, then at most ``BLIND_FINE_ITER`` on every frame
#: (:func:`nmfsep.ntf_coarse.ntf_coarse_to_fine`; 1: every frame throughout), to keep
#: blind stereo within twice the shared model's time. On the FluidR3 family of
#: benchmarks/bench_stereo.py (blind SDR against every frame throughout, 8 mixtures):
#: pairs cost nothing (median +0.3 dB; 3 or 4 frames lost 7.6 dB on one duo); with the
#: joint updates, taken for time, median +0.1 dB but -7.5 dB on that duo and -4.4 dB on a
#: drums + bass. Held-out TimGM6mb and AVL: see the README.
BLIND_POOL_FRAMES = 2
BLIND_COARSE_ITER = 100
BLIND_FINE_ITER = 30
#: ... the gains updated with the activations in both stages (:func:`nmfsep.ntf.ntf`'s
#: ``joint_gains``): needed for the time (30 s: 1.5x the shared model; 1.8-2.3x with
#: three passes in the coarse stage), at the price of rare flips to a worse local optimum
#: (held-out: -7.9 dB on 1 of 8 AVL mixtures, -2.6 dB on 1 of 16 TimGM6mb).
BLIND_JOINT_GAINS = True
#: Dictionaries with free atoms (semi-supervised, built-ins with ``--free``, named
#: sources), ``spatial="gains"``: coarse to fine too, at most ``SEMI_COARSE_ITER``
#: iterations on frames averaged in groups of ``SEMI_POOL_FRAMES``, then at most
#: ``SEMI_FINE_ITER`` on every frame (1: every frame throughout). Every atom fixed
#: (supervised) fits on every frame: it converges in a few dozen iterations, and the
#: coarse stage only adds to them. Against every frame throughout, held-out TimGM6mb and
#: AVL stereo mixtures, the last source left to 8 free atoms: median -0.01 dB per source
#: (-1.08 to +1.32 over 36; ``benchmarks/bench_stereo.py --semi-check --families
#: timgm6mb avl --seeds 2``); built-in separation of bench_e2e's 3-minute song 148.3 ->
#: 107.2 s (``benchmarks/bench_builtin.py --timing 1 --timing-iterations
#: '{"_semi_pool": 1}'`` against ``--timing 2 --timing-iterations '{}'``); on those 8 s
#: mixtures 0.93x the time.
SEMI_POOL_FRAMES = 2
SEMI_COARSE_ITER = 100
SEMI_FINE_ITER = 30
#: ... and the gains in a pass of their own. Updated with the activations instead
#: (``ntf``'s ``joint_gains``, two passes per iteration instead of three), held-out
#: TimGM6mb and AVL stereo mixtures took 0.65x the time but lost up to 20 dB on drums +
#: bass panned hard (27.1 -> 15.4 and 36.7 -> 16.8 dB; per source median -0.00 dB,
#: -19.95 to +0.24 over 36; joint in the coarse stage only: the same losses, 0.72x;
#: ``benchmarks/bench_stereo.py --semi-check joint --families timgm6mb avl --seeds 2``).
SEMI_JOINT_GAINS = False
#: Supervised ``spatial="gains"``: the gains updated with the activations (``ntf``'s
#: ``joint_gains``), one threaded pass over the channels' stacked frames per iteration,
#: instead of two passes (models too large to keep, as a 3-minute song's) or the cached
#: products of the group models (single-threaded; shorter mixtures). bench_e2e.py's
#: 3-minute song: 26.7 -> 18.3 s, stems 60 dB SNR from the two-pass fit's
#: (``--supervised --two-pass``); the bundled duo tiled to 30 s: 3.17x -> 2.04x the shared
#: model's time (benchmarks/bench_stereo.py --timing-bundled 3 --tile 6 --timing-variants
#: gains:twopass); held-out TimGM6mb duos and trios panned half way and hard
#: (benchmarks/bench_stereo.py --joint-check [--stacked]): per source -0.005 to +0.002 dB
#: (20 sources) against either former fit.
SUPERVISED_JOINT_GAINS = True
#: With dictionaries, every source's atoms share one gain vector (the source sits at one
#: place) instead of one per atom.
TIE_GAINS = True
#: ``spatial="gains"`` falls back to the shared model for a stereo mixture whose energy
#: sits at one place: the spread of its pan angles (:func:`nmfsep.ntf.pan_spread`) under
#: this many radians (about 3 degrees; 0.001 for sources at one position, 0.38 and more
#: for sources apart in benchmarks/bench_stereo.py). Position cannot help there, and
#: blind grouping of the gains model's components lost up to 5 dB on such a duo.
MIN_PAN_SPREAD = 0.05
#: Most channels ``spatial="gains"`` models (its time and memory grow with each channel).
MAX_GAIN_CHANNELS = 8
#: Most EM iterations of the spatial Wiener filter (``wiener_iter``).
MAX_WIENER_ITER = 20
#: What a separation does with dictionaries' harmonic atoms (:mod:`nmfsep.harmonic`):
#: ``"auto"`` uses them only when every source has them, ``"on"`` whenever a dictionary
#: has them, ``"off"`` never. Harmonic atoms cover every pitch of a range, so they also
#: explain a voice or an instrument that has none: speech over piano lost 3.7-4.1 dB
#: when only the piano had them (benchmarks/bench_heldout.py, the note in
#: :mod:`nmfsep.harmonic`). Free atoms count as a source without them.
HARMONIC_USES = ("auto", "on", "off")
#: ``harmonic="auto"`` with harmonic atoms in every source: a whole-file separation fits
#: the mixture (its first :data:`HARMONIC_CHOICE_SECONDS`) twice, with the plain atoms
#: alone and with all of them, and keeps the harmonic atoms only when their fit's
#: divergence is below this fraction of the plain fit's (:func:`plain_plan`). Where the
#: training clips play the mixture's notes the plain atoms already fit it and the
#: harmonic ones only blur it: FluidR3 in-family
#: (benchmarks/bench_separation.py) had ratios 0.747-0.884 on 17 of 18 mixtures (0.686
#: on the 18th, a trio), and always using the harmonic atoms cost piano + flute 1.2 dB
#: and violin + piano 2.4 dB. Where they do not, the harmonic atoms fit much better:
#: the held-out families' (benchmarks/bench_heldout.py, 18 duo and trio mixtures)
#: 0.359-0.730. With this threshold, in-family piano + flute 20.91, violin + piano 15.56
#: (both equal to the plain atoms), trio 11.73 dB (10.84 always harmonic), and every
#: held-out mixture keeps its harmonic atoms (held-out figures unchanged). A thin
#: margin: benchmarks/bench_harmonic_choice.py prints every mixture's ratio.
HARMONIC_FIT_RATIO = 0.74
#: ``harmonic="auto"`` on a mixture longer than this many seconds: the two fits are
#: compared on its first this many seconds only and the atoms kept are then fitted to the
#: whole mixture, as ``--stream`` compares them on its first block (the default block,
#: 30 s); shorter mixtures are compared whole. On a 3-minute stereo song the full
#: harmonic fit was 80% of the separation's time (benchmarks/bench_e2e.py --supervised).
HARMONIC_CHOICE_SECONDS = 30.0


def components_per_source(n_sources: int, percussive: bool = False) -> int:
    """Return the blind components per source used when ``n_components`` is not given.

    Parameters
    ----------
    n_sources : int
        Number of sources, >= 1.
    percussive : bool
        True for a percussion-aware run (its own settings; 8 per source).

    Returns
    -------
    int
        :data:`MANY_SOURCES_COMPONENTS_PER_SOURCE` from :data:`MANY_SOURCES` sources on
        (not percussive), else :data:`DEFAULT_COMPONENTS_PER_SOURCE`.
    """
    if n_sources >= MANY_SOURCES and not percussive:
        return MANY_SOURCES_COMPONENTS_PER_SOURCE
    return DEFAULT_COMPONENTS_PER_SOURCE


def default_mask_power(supervised: bool) -> float:
    """Return the mask exponent used when none is given.

    Parameters
    ----------
    supervised : bool
        True when dictionaries are used.

    Returns
    -------
    float
        :data:`SUPERVISED_MASK_POWER` with dictionaries, else :data:`DEFAULT_MASK_POWER`.
    """
    return SUPERVISED_MASK_POWER if supervised else DEFAULT_MASK_POWER


@dataclass(frozen=True)
class Plan:
    """The shape of a separation: mode, components and stems.

    Attributes
    ----------
    mode : {"blind", "supervised", "semi-supervised"}
    k : int
        Total number of components (fixed atoms first, then free ones).
    n_fixed : int
        Number of fixed (dictionary) atoms.
    names : tuple of str
        Stem names, in order.
    dictionary : Dictionary or None
        The dictionaries combined (:func:`nmfsep.dictionary.combine`), or None (blind).
    dictionaries : tuple of Dictionary
        The dictionaries as given, for the settings record.
    n_sources : int or None
        Blind mode: the number of groups of components; None gives one stem each.
    percussive : bool
        Blind mode: the drums are split off first (:mod:`nmfsep.percussive`); the
        last stem is ``drums``.
    residual : str
        Stem name of the free atoms (semi-supervised): ``residual``, or the source
        name that is not a built-in when sources are named.
    harmonic_left_out : tuple of str
        Sources whose harmonic atoms the separation leaves out (:func:`harmonic_in_use`).
    harmonic_note : str
        Why, when the default rule left them out (empty otherwise).
    harmonic_choice : bool
        ``harmonic="auto"`` kept harmonic atoms: a whole-file separation compares their
        fit with the plain atoms' (:data:`HARMONIC_FIT_RATIO`, :func:`plain_plan`).
    sources_auto : dict or None
        With ``n_sources="auto"``: what :func:`nmfsep.sources.suggest_sources` found
        (:func:`nmfsep.auto_sources.auto_plan`); None otherwise.
    k_default : bool
        The free components' count is a default, not the caller's (blind with
        ``n_sources`` and no ``n_components``; named sources without ``n_free``): a
        mixture with fewer STFT frames gets fewer (:func:`fit_frames`).
    """

    mode: str
    k: int
    n_fixed: int
    names: tuple[str, ...]
    dictionary: Dictionary | None
    dictionaries: tuple[Dictionary, ...]
    n_sources: int | None
    percussive: bool = False
    residual: str = RESIDUAL
    harmonic_left_out: tuple[str, ...] = ()
    harmonic_note: str = ""
    harmonic_choice: bool = False
    sources_auto: dict[str, Any] | None = None
    k_default: bool = False

    @property
    def n_free(self) -> int:
        """Number of free (learned) atoms: all of them in blind mode."""
        return self.k - self.n_fixed


def fit_frames(plan: Plan, n_frames: int, seconds: float) -> tuple[Plan, str]:
    """Check the free components against the mixture's STFT frames; fewer if defaulted.

    More free components than frames cannot be learned. A count the caller gave is
    refused; a default count (:attr:`Plan.k_default`) is lowered to the number of
    frames, and a warning says so.

    Parameters
    ----------
    plan : Plan
    n_frames : int
        STFT frames of the mixture at the analysis rate.
    seconds : float
        The mixture's duration, for the messages.

    Returns
    -------
    plan : Plan
        ``plan``, or a copy with fewer free components.
    warning : str
        Why the count was lowered; "" if it was not.

    Raises
    ------
    ParameterError
        Too many free components given, or more blind sources than frames.
    """
    if plan.n_free <= n_frames or plan.mode == "supervised":
        return plan, ""
    what = f"the {n_frames} STFT frames of the mixture ({seconds:.3g} s)"
    if not plan.k_default:
        name, value = ("n_components", plan.k) if plan.mode == "blind" else (
            "n_free", plan.n_free)
        raise ParameterError(f"{name}={value} is more than {what}; use {name} <= {n_frames} "
                             "or a longer mixture")
    if plan.mode == "blind" and (plan.n_sources or 1) > n_frames:
        raise ParameterError(f"n_sources={plan.n_sources} is more than {what}; use "
                             f"n_sources <= {n_frames} or a longer mixture")
    what = "components" if plan.mode == "blind" else "free atoms"
    warning = (f"the mixture has only {n_frames} STFT frames ({seconds:.3g} s): "
               f"{n_frames} {what} instead of the default {plan.n_free}")
    return replace(plan, k=plan.n_fixed + n_frames), warning


def load_dictionaries(dictionaries: object) -> list[Dictionary]:
    """Return the dictionaries given as objects or paths, loaded.

    Parameters
    ----------
    dictionaries : Dictionary, path, built-in name, sequence of them, or None
        A string or path names a file when one exists there, else a built-in
        dictionary (:func:`nmfsep.builtins.resolve_dictionary`).

    Returns
    -------
    list of Dictionary

    Raises
    ------
    ParameterError
        If ``dictionaries`` holds something else.
    DictionaryError
        If a file cannot be read as a dictionary, or a name is neither a file nor a
        built-in (the message lists the built-ins).
    """
    if dictionaries is None:
        return []
    if isinstance(dictionaries, Dictionary | str | os.PathLike):
        dictionaries = [dictionaries]
    if not isinstance(dictionaries, Sequence):
        raise fail("dictionaries", "a sequence of Dictionary objects or paths",
                   type(dictionaries).__name__)
    out = []
    for d in dictionaries:
        if isinstance(d, Dictionary):
            out.append(d)
        elif isinstance(d, str | os.PathLike):
            out.append(resolve_dictionary(d)[0])
        else:
            raise fail("dictionaries", "a sequence of Dictionary objects or paths",
                       type(d).__name__)
    return out


#: ``relearn`` settings (:mod:`nmfsep.relearn`): "auto" relearns when the first pass
#: kept every source's harmonic atoms and no dictionary is a built-in, "on" in every
#: supervised run with fixed atoms.
RELEARN_USES = ("auto", "on", "off")
#: Default ``relearn``: chosen leave-one-family-out on the held-out benchmark (every
#: family chose it; +0.14 to +2.29 dB on piano + flute (+ bass), the rest unchanged).
DEFAULT_RELEARN = "auto"
#: ``n_sources`` that asks for the number of sources the mixture suggests
#: (:mod:`nmfsep.auto_sources`).
AUTO_SOURCES = "auto"
#: Most components (or sources, or free atoms) a separation accepts.
MAX_COMPONENTS = 10_000


def make_plan(
    n_components: int | None,
    n_sources: int | Sequence[str] | None,
    dictionaries: Sequence[Dictionary],
    n_free: int,
    percussive: bool = False,
    harmonic: str = "auto",
) -> Plan:
    """Decide the mode, the number of components and the stem names.

    Parameters
    ----------
    n_components, n_sources, n_free, percussive, harmonic
        As for :func:`nmfsep.separate`.
    dictionaries : sequence of Dictionary
        Loaded dictionaries (:func:`load_dictionaries`).

    Returns
    -------
    Plan

    Raises
    ------
    ParameterError
        For invalid values or combinations of the mode options.
    DictionaryError
        If the dictionaries do not combine, or a source is named ``residual`` while
        ``n_free > 0``.
    """
    # bounded before any name or array is made from them (10**8 stems would need GBs)
    check_int(n_free, "n_free", 0, MAX_COMPONENTS)
    check_choice(harmonic, "harmonic", HARMONIC_USES)
    if isinstance(n_sources, str) and n_sources == AUTO_SOURCES:
        raise ParameterError(
            "n_sources='auto' is decided from the whole mixture, by separate() and "
            "separate_file() (not by a stream); give a number or names here")
    if n_sources is not None and not is_int(n_sources):
        if percussive:
            raise ParameterError(
                "percussive=True is for blind separation with a number of sources; named "
                "sources use the built-in dictionaries (name one of them 'drums')"
            )
        return _named_plan(n_components, n_sources, dictionaries, int(n_free), harmonic)
    check_int(n_components, "n_components", 1, MAX_COMPONENTS, none_ok=True)
    check_int(n_sources, "n_sources", 1, MAX_COMPONENTS, none_ok=True)
    if not isinstance(percussive, bool | np.bool_):
        raise fail("percussive", "True or False", percussive)
    if percussive and (dictionaries or n_sources is None or n_sources < 2):
        raise ParameterError(
            "percussive=True splits the drums off in blind separation: give n_sources >= 2 "
            "(the drums and the rest) and no dictionaries"
        )
    if dictionaries:
        return _supervised_plan(n_components, n_sources, dictionaries, int(n_free),
                                harmonic=harmonic)
    if n_free > 0:
        raise ParameterError(
            "n_free needs dictionaries (semi-supervised); for blind separation use n_components"
        )
    k_default = n_components is None
    if n_components is None:
        if n_sources is None:
            raise ParameterError(
                "nothing to separate with: give n_components (blind), n_sources, or dictionaries"
            )
        n_components = components_per_source(int(n_sources), bool(percussive)) * int(n_sources)
    k = int(n_components)
    if n_sources is not None and n_sources > k:
        raise ParameterError(
            f"n_sources={n_sources} is more than n_components={k}; use k >= {n_sources}"
        )
    names = source_names(n_sources) if n_sources is not None else list(components_groups(k))
    if percussive:
        names = percussive_names(int(n_sources or 0))
    return Plan(
        mode="blind", k=k, n_fixed=0, names=tuple(names), dictionary=None, dictionaries=(),
        n_sources=None if n_sources is None else int(n_sources), percussive=bool(percussive),
        k_default=k_default,
    )


def _named_plan(
    n_components: int | None, names: object, dicts: Sequence[Dictionary], n_free: int,
    harmonic: str,
) -> Plan:
    """``n_sources`` as names: built-in dictionaries, the one other name gets free atoms."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names or not all(
            isinstance(n, str) for n in names):
        raise fail("n_sources", "an int or a non-empty sequence of source names", names)
    if len(set(names)) != len(names):
        raise ParameterError(f"n_sources names a source twice: {list(names)}")
    if dicts or n_components is not None:
        raise ParameterError(
            "named n_sources picks built-in dictionaries itself; give names or "
            "dictionaries / n_components, not both"
        )
    others = [n for n in names if not is_builtin(n)]
    builtins = [load_builtin(n) for n in names if is_builtin(n)]
    available = ", ".join(builtin_names())
    if not builtins or len(others) > 1:
        raise ParameterError(
            f"n_sources={list(names)}: name at least one built-in ({available}) and at "
            f"most one other source, which gets the free atoms (got {others or 'none'})"
        )
    for name in others:
        io.check_name(name)
    k_default = bool(others) and n_free == 0
    if k_default:
        n_free = DEFAULT_NAMED_FREE
    residual = others[0] if others else RESIDUAL
    plan = _supervised_plan(None, None, builtins, n_free, residual=residual,
                            harmonic=harmonic)
    return replace(plan, k_default=k_default)


def _supervised_plan(
    n_components: int | None, n_sources: int | None, dicts: Sequence[Dictionary], n_free: int,
    residual: str = RESIDUAL, harmonic: str = "auto",
) -> Plan:
    if n_components is not None:
        raise ParameterError(
            "n_components is for blind separation; with dictionaries use n_free to add "
            "free atoms"
        )
    if n_sources is not None:
        raise ParameterError(
            "n_sources is for blind separation; with dictionaries there is one stem per "
            "source name"
        )
    used = harmonic_in_use(dicts, harmonic, n_free)
    left_out = tuple(n for d, u in zip(dicts, used, strict=True) if u is not d for n in d.names)
    # a built-in's harmonic atoms left out is how built-ins work (drums have none): no note
    users = any(u is not d and not from_builtin(d) for d, u in zip(dicts, used, strict=True))
    dicts = used
    note = ""
    if users and harmonic == "auto":
        without = [n for d in dicts if d.n_harmonic == 0 and d.names[0] not in left_out
                   for n in d.names]
        why = (f"{', '.join(without)} {'has' if len(without) == 1 else 'have'} none (learn "
               "every source with --harmonic auto, or " if without else
               "with free atoms they would take what the free atoms are for (")
        note = (f"harmonic atoms of {', '.join(left_out)} left out: {why}separate with "
                "--harmonic on to use them)")
    combined = combine(dicts)
    names = list(combined.names)
    if n_free > 0:
        if residual in names:
            raise DictionaryError(
                f"a dictionary source is named {residual!r}, the name of the free atoms' "
                "stem; rename that source or use n_free=0"
            )
        names.append(residual)
    return Plan(
        mode="semi-supervised" if n_free > 0 else "supervised",
        k=combined.n_atoms + n_free,
        n_fixed=combined.n_atoms,
        names=tuple(names),
        dictionary=combined,
        dictionaries=tuple(dicts),
        n_sources=None,
        residual=residual,
        harmonic_left_out=left_out,
        harmonic_note=note,
        harmonic_choice=harmonic == "auto" and any(d.n_harmonic for d in dicts),
    )


def plain_plan(plan: Plan) -> Plan:
    """Return ``plan`` with every dictionary's harmonic atoms left out.

    Parameters
    ----------
    plan : Plan
        A plan with ``harmonic_choice`` (harmonic atoms in use by the "auto" rule).

    Returns
    -------
    Plan
        The same sources with their plain atoms only (``harmonic_choice`` False), its
        ``harmonic_left_out`` naming the sources whose harmonic atoms were dropped.
    """
    dropped = tuple(n for d in plan.dictionaries if d.n_harmonic for n in d.names)
    plain = _supervised_plan(None, None, [d.without_harmonic() for d in plan.dictionaries],
                             plan.n_free, residual=plan.residual, harmonic="off")
    return replace(plain, harmonic_left_out=dropped)


def harmonic_in_use(dicts: Sequence[Dictionary], harmonic: str, n_free: int = 0
                    ) -> list[Dictionary]:
    """Return the dictionaries as a separation uses them: with or without harmonic atoms.

    Parameters
    ----------
    dicts : sequence of Dictionary
    harmonic : {"auto", "on", "off"}
        :data:`HARMONIC_USES`: "auto" keeps the harmonic atoms only when every
        dictionary has them and there are no free atoms.
    n_free : int
        Free atoms of the separation.

    Returns
    -------
    list of Dictionary
        ``dicts``, each with its harmonic atoms left out
        (:meth:`~nmfsep.dictionary.Dictionary.without_harmonic`) where the rule says so.
    """
    keep = harmonic == "on" or (
        harmonic == "auto" and n_free == 0 and all(d.n_harmonic > 0 for d in dicts))
    return list(dicts) if keep else [d.without_harmonic() for d in dicts]


def stem_names(
    *,
    n_components: int | None = None,
    n_sources: int | Sequence[str] | None = None,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]] = (),
    n_free: int = 0,
    percussive: bool = False,
) -> list[str]:
    """Names of the stems :func:`nmfsep.separate` will return, without computing anything.

    Parameters
    ----------
    n_components, n_sources, dictionaries, n_free, percussive
        As for :func:`nmfsep.separate`.

    Returns
    -------
    list of str
        In the order of the stems.

    Raises
    ------
    ParameterError, DictionaryError
        For the same invalid combinations as :func:`nmfsep.separate`.
    """
    plan = make_plan(n_components, n_sources, load_dictionaries(dictionaries), n_free,
                     percussive)
    return list(plan.names)


def fallback_groups(plan: Plan) -> dict[str, list[int]]:
    """Return groups made without clustering (supervised, or silent mixtures).

    Parameters
    ----------
    plan : Plan

    Returns
    -------
    dict[str, list[int]]
        Stem name -> component indices: each dictionary source's atoms (and the free
        atoms as ``residual``); blind: one component each, or ``n_sources`` runs of
        consecutive components.
    """
    k = plan.k
    if plan.dictionary is not None:
        groups = plan.dictionary.groups
        if plan.mode == "semi-supervised":
            groups[plan.residual] = list(range(plan.n_fixed, k))
        return groups
    if plan.n_sources is None:
        return components_groups(k)
    blocks = np.array_split(np.arange(k), plan.n_sources)
    return {name: [int(i) for i in b] for name, b in zip(plan.names, blocks, strict=True)}


@dataclass(frozen=True)
class SeparationParams:
    """Settings of the factorization and the masks (everything but the mode).

    Attributes
    ----------
    beta : {"kullback-leibler", "itakura-saito", "frobenius"}, float or None
        β-divergence; None: the dictionaries' β, else Kullback-Leibler.
    power : float or None
        Spectrogram power; None: the dictionaries', else 1 for β > 0 and 2 for β <= 0.
    stft : STFTConfig or None
        STFT settings; None: the dictionaries', else
        :meth:`~nmfsep.spectral.STFTConfig.for_sample_rate` of the mixture's rate.
    mask : {"soft", "binary"}
        Mask kind (:func:`nmfsep.masks.masks`).
    mask_power : float or None
        Exponent of the soft mask; None: :func:`default_mask_power`.
    grouping : {"timbre", "kmeans", "activations", "combined", "register"} or None
        How blind components are grouped into ``n_sources`` stems; None:
        :data:`DEFAULT_GROUPING` (:data:`MANY_SOURCES_GROUPING` from
        :data:`MANY_SOURCES` sources on), and :data:`nmfsep.percussive.DEFAULT_GROUPING`
        for the harmonic components of a percussion-aware run (:meth:`grouping_for`).
    solver : {"mu", "amu", "cd"}
        NMF solver (:func:`nmfsep.nmf.nmf`).
    max_iter, tol : int, float
        NMF stopping rules.
    alpha_W, l1_ratio : float
        Regularisation of the activations (as in scikit-learn).
    random_state : int, numpy generator or None
        Seed of the initialisation.
    adapt : float or None
        With dictionaries: let their atoms move towards the mixture under a penalty of
        weight μ = ``adapt`` that keeps them near the learned ones (``nmf(adapt=)``;
        Kullback-Leibler); None keeps them fixed (:mod:`nmfsep.adaptation`).
    free_per_source : int
        With dictionaries: free atoms added to every source's stem, started from copies
        of that source's atoms (:mod:`nmfsep.adaptation`).
    spatial : {"shared", "gains"} or None
        Model of multichannel input (:data:`SPATIAL_MODELS`); None:
        :data:`DEFAULT_SPATIAL`. Mono input always uses the shared model.
    relearn : {"auto", "on", "off"}
        With dictionaries: a second pass with atoms learned from the first pass's stems
        added (:mod:`nmfsep.relearn`, :data:`RELEARN_USES`; default
        :data:`DEFAULT_RELEARN`).
    wiener_iter : int or None
        With ``spatial="gains"``: EM iterations of the spatial Wiener filter that forms the
        stems from the mixture's channels together (:mod:`nmfsep.spatial_wiener`); 0 keeps
        the per-channel masks; None: :data:`nmfsep.spatial_wiener.WIENER_ITER`.
    """

    beta: str | float | None = None
    power: float | None = None
    stft: STFTConfig | None = None
    mask: MaskKind = "soft"
    mask_power: float | None = None
    grouping: GroupingMethod | None = None
    solver: str = "mu"
    max_iter: int = 200
    tol: float = 1e-4
    alpha_W: float = 0.0
    l1_ratio: float = 0.0
    random_state: int | np.random.Generator | None = 0
    adapt: float | None = None
    free_per_source: int = 0
    spatial: str | None = None
    relearn: str = DEFAULT_RELEARN
    wiener_iter: int | None = None

    @property
    def wiener_iterations(self) -> int:
        """EM iterations of the spatial Wiener filter (the default when None)."""
        return WIENER_ITER if self.wiener_iter is None else int(self.wiener_iter)

    def validate(self) -> SeparationParams:
        """Check every setting; return self.

        Returns
        -------
        SeparationParams

        Raises
        ------
        ParameterError
            Naming the first invalid setting and what it must be.
        """
        check_choice(self.mask, "mask", MASK_KINDS)
        check_real(self.mask_power, "mask_power", strict=True, none_ok=True)
        check_choice(self.solver, "solver", SOLVERS)
        check_int(self.max_iter, "max_iter", 0)
        check_real(self.tol, "tol")
        check_real(self.alpha_W, "alpha_W")
        check_real(self.l1_ratio, "l1_ratio", 0, 1)
        if self.grouping is not None:
            check_choice(self.grouping, "grouping", GROUPING_METHODS)
        if self.stft is not None and not isinstance(self.stft, STFTConfig):
            raise fail("stft", "an STFTConfig or None", type(self.stft).__name__)
        check_real(self.power, "power", strict=True, none_ok=True)
        check_real(self.adapt, "adapt", none_ok=True)
        check_int(self.free_per_source, "free_per_source", 0, MAX_COMPONENTS)
        if self.spatial is not None:
            check_choice(self.spatial, "spatial", SPATIAL_MODELS)
        check_choice(self.relearn, "relearn", RELEARN_USES)
        check_int(self.wiener_iter, "wiener_iter", 0, MAX_WIENER_ITER, none_ok=True)
        return self

    def spatial_for(self, n_channels: int, plan: Plan | None = None) -> str:
        """Return the model of a mixture of ``n_channels`` channels ("shared" or "gains").

        Raises
        ------
        ParameterError
            If ``spatial="gains"`` and the mixture has more than
            :data:`MAX_GAIN_CHANNELS` channels, or a setting the gains model does not
            support is on (``alpha_W > 0``, ``adapt``, ``free_per_source``,
            ``percussive``); the default then falls back to "shared".
        """
        if n_channels == 1:
            return "shared"
        spatial = DEFAULT_SPATIAL if self.spatial is None else self.spatial
        unsupported = self._shared_only(plan)
        if spatial == "gains" and self.spatial is None and (
                n_channels > MAX_GAIN_CHANNELS or unsupported):
            return "shared"
        if spatial == "gains" and n_channels > MAX_GAIN_CHANNELS:
            raise ParameterError(
                f"spatial='gains' models at most {MAX_GAIN_CHANNELS} channels, the mixture "
                f"has {n_channels}; use spatial='shared' or fewer channels"
            )
        if spatial == "gains" and unsupported:
            raise ParameterError(
                f"{unsupported} is not available with spatial='gains'; use "
                f"spatial='shared' or leave {unsupported.split()[0]} out"
            )
        return spatial

    def _shared_only(self, plan: Plan | None) -> str | None:
        """Name the first setting on that only the shared model supports, or None."""
        for name, on in (("alpha_W (sparse activations)", self.alpha_W > 0),
                         ("adapt", self.adapt is not None),
                         ("free_per_source", self.free_per_source > 0),
                         ("percussive", plan is not None and plan.percussive)):
            if on:
                return name
        return None

    def grouping_for(self, plan: Plan) -> GroupingMethod:
        """Return the grouping of a run of ``plan`` (the mode's default when None)."""
        if self.grouping is not None:
            return self.grouping
        if plan.percussive:
            return PERCUSSIVE_GROUPING
        if (plan.n_sources or 0) >= MANY_SOURCES:
            return MANY_SOURCES_GROUPING
        return DEFAULT_GROUPING

    def mask_power_for(self, plan: Plan) -> float:
        """Return the mask exponent of a run of ``plan`` (the default when None)."""
        if self.mask_power is None:
            return default_mask_power(plan.dictionary is not None)
        return float(self.mask_power)


def settings_record(
    plan: Plan,
    params: SeparationParams,
    *,
    beta: float,
    power: float,
    sr: int,
    stft: STFTConfig,
    analysis_sr: int,
    analysis_stft: STFTConfig,
    spatial: str = "shared",
    harmonic_fit_ratio: float | None = None,
) -> dict[str, Any]:
    """Return the JSON record of a run's settings (results, models, reports, summaries).

    Parameters
    ----------
    plan : Plan
    params : SeparationParams
    beta, power : float
        The β and spectrogram power used.
    sr, stft : int, STFTConfig
        The mixture's rate and the STFT of the masks.
    analysis_sr, analysis_stft : int, STFTConfig
        The rate and STFT the factorization ran at.
    spatial : {"shared", "gains"}
        The model of the channels used.
    harmonic_fit_ratio : float or None
        Divergence of the fit with harmonic atoms / without, where ``harmonic="auto"``
        compared them (:data:`HARMONIC_FIT_RATIO`); None where it did not.

    Returns
    -------
    dict
        ``mode``, ``n_components``, ``n_sources``, ``n_free``, ``beta``, ``power``,
        ``mask``, ``mask_power``, ``grouping``, ``percussive``, ``solver``, ``max_iter``,
        ``tol``, ``alpha_W``, ``l1_ratio``, ``random_state``, ``adapt``, ``free_per_source``,
        ``dictionaries`` (with each one's ``n_harmonic`` atoms in use),
        ``harmonic_left_out``, ``harmonic_fit_ratio``, ``sources_auto``, ``sr``, ``stft``,
        ``analysis_sr``, ``analysis_stft``, ``context_frames``, ``spatial``,
        ``wiener_iter`` (None here; the analysis records the spatial Wiener filter's EM
        iterations applied with the gains model), ``nmfsep_version``.
    """
    rs = params.random_state
    seed: int | str | None = None if rs is None else int(rs) if is_int(rs) else "generator"
    return {
        "mode": plan.mode,
        "n_components": plan.k,
        "n_sources": plan.n_sources,
        "n_free": plan.n_free if plan.mode != "blind" else 0,
        "beta": beta,
        "power": power,
        "mask": params.mask,
        "mask_power": params.mask_power_for(plan),
        "grouping": params.grouping_for(plan) if plan.n_sources is not None else None,
        "percussive": plan.percussive,
        "solver": params.solver,
        "max_iter": int(params.max_iter),
        "tol": float(params.tol),
        "alpha_W": float(params.alpha_W),
        "l1_ratio": float(params.l1_ratio),
        "random_state": seed,
        "adapt": None if params.adapt is None else float(params.adapt),
        "free_per_source": int(params.free_per_source),
        "dictionaries": [
            {"names": list(d.names), "n_atoms": d.n_atoms, "n_harmonic": d.n_harmonic,
             "sr": d.sr, "clips": [dict(c) for c in d.clips]}
            for d in plan.dictionaries
        ],
        "harmonic_left_out": list(plan.harmonic_left_out),
        "harmonic_fit_ratio": harmonic_fit_ratio,
        "sources_auto": None if plan.sources_auto is None else dict(plan.sources_auto),
        "sr": sr,
        "stft": stft.to_dict(),
        "analysis_sr": analysis_sr,
        "analysis_stft": analysis_stft.to_dict(),
        "context_frames": 1 if plan.dictionary is None else plan.dictionary.context_frames,
        "spatial": spatial,
        "wiener_iter": None,  # set by the analysis (nmfsep.separate)
        "nmfsep_version": __version__,
    }


def file_summary(
    src: os.PathLike[str] | str,
    outputs: OutputFiles,
    settings: dict[str, Any],
    *,
    sr: int,
    n_channels: int,
    n_samples: int,
    seconds: float,
    n_iter: int,
    converged: bool,
    warnings: list[str],
    report: os.PathLike[str] | str | None = None,
) -> dict[str, Any]:
    """Return the JSON summary of a separated file (whole or streamed).

    Parameters
    ----------
    src : path
        The mixture.
    outputs : OutputFiles
        What was written (:func:`nmfsep.io.output_files`).
    settings : dict
        The run's :func:`settings_record`.
    sr, n_channels, n_samples : int
        The mixture's rate, channels and length.
    seconds : float
        Time taken.
    n_iter : int
        NMF iterations (the most a block took, streamed).
    converged : bool
        Whether NMF converged (every block, streamed).
    warnings : list of str
        Warnings of the run.
    report : path or None
        The report written, if any.

    Returns
    -------
    dict
        ``input``, ``output_dir``, ``mode``, ``stems`` (name -> path), ``model``,
        ``report``, ``sr``, ``n_channels``, ``duration``, ``seconds``, ``n_iter``,
        ``converged``, ``warnings``, ``settings``.
    """
    return {
        "input": str(src),
        "output_dir": str(outputs.folder),
        "mode": settings["mode"],
        "stems": {name: str(path) for name, path in outputs.stems.items()},
        "model": None if outputs.model is None else str(outputs.model),
        "report": None if report is None else str(report),
        "sr": int(sr),
        "n_channels": int(n_channels),
        "duration": float(n_samples / sr),
        "seconds": round(seconds, 3),
        "n_iter": int(n_iter),
        "converged": bool(converged),
        "warnings": list(warnings),
        "settings": settings,
    }


def output_folder(src: Path, out_dir: str | os.PathLike[str], name: str | None) -> Path:
    """Return ``out_dir/<name>`` (default name: the mixture's stem), every part checked.

    A mixture's stem may be as long as a file name (:data:`nmfsep.io.MAX_FOLDER_LENGTH`);
    leading dots are dropped from it (``.take1.wav`` -> ``take1/``, not a hidden folder).
    """
    parts = [io.folder_name(src.stem)] if name is None else str(name).split("/")
    return Path(out_dir).joinpath(
        *(io.check_name(p, max_length=io.MAX_FOLDER_LENGTH) for p in parts))


def gain_warnings(gain: float, fmt: io.AudioFormat) -> list[str]:
    """Return the warning for stems scaled so that integer samples do not clip (or none)."""
    if gain == 1.0:
        return []
    return [
        f"stems scaled by {20 * math.log10(gain):.2f} dB so that {fmt.subtype} samples do "
        "not clip (a stem peaked above full scale); they add up to the mixture scaled "
        "alike; use subtype='float' to keep the level"
    ]

