r"""Second pass with dictionaries widened by atoms learned from the first pass's stems.

Dictionaries learned from a user's training clips cover the notes those clips play;
a song plays others (issue 13: the held-out gap is notes outside the training
range, claimed by the other source's atoms). With ``relearn``, a supervised
separation runs twice: after the first pass, every source learns a second dictionary
from its own first-pass stem, with the settings of its dictionary (atoms, context,
augmentation, harmonic atoms over the pitches the stem plays), and the second pass
separates with each source's learned atoms *and* the new ones ("self-training"). The
stem is mostly the right source playing the song's notes, so the new atoms cover them;
the learned atoms keep the source's timbre where the first pass leaked.

Measured on the held-out sound families (``benchmarks/bench_heldout.py``, median SDR
of 3 mixtures × sources per family × task, dictionaries learned with the defaults from
training clips in other melodies, keys and registers), against one pass:

=========  =============================  =============================
family     piano + flute                  piano + flute + bass
=========  =============================  =============================
FluidR3    12.96 -> 15.25 dB              10.09 -> 11.31 dB
MuseScore  17.44 -> 18.05 dB              16.31 -> 17.00 dB
TimGM6mb    6.81 ->  7.80 dB               8.38 ->  8.52 dB
=========  =============================  =============================

Leave-one-family-out chose it for every held-out family. With 200 iterations for the new
atoms instead of :data:`RELEARN_MAX_ITER` = 100: 15.38 / 11.24, 18.07 / 17.12,
7.58 / 8.52 dB (leave-one-family-out chose 100 for FluidR3 and MuseScore, 200 for
TimGM6mb: a tie, so the cheaper one). The drums + bass and speech
cells are unchanged: the drums and the voice have no harmonic atoms, so "auto" runs one
pass there. Relearning there anyway (``relearn="on"``) lost 0.5 to 0.9 dB on drums + bass
in three families (FluidR3 11.05 -> 10.25, MuseScore 10.79 -> 9.88, AVL 7.68 -> 7.17,
TimGM6mb 9.11 both) and moved speech by -0.21 to +0.52 dB (FluidR3 8.39 -> 8.83,
MuseScore 6.89 -> 7.41, TimGM6mb 9.14 -> 8.93, AVL 11.71 -> 11.89); leave-one-family-out
kept one pass for every held-out family (``--tasks drums_bass,speech`` with ``--reuse
benchmarks/results/harm3.json --reuse-ceiling`` and ``--candidate "rlon={\"learn\": $L,
\"separate\": {\"relearn\": \"on\"}}"``; 4.5 min). (With the training clips learned
again alongside the stem, 0.2 to 1.1 dB worse in 5 of 8 cells: an experiment, not this
code.)
Learning the new atoms without the dictionary's pitch augmentation gained less (−0.01 to
+1.79 dB; the run patched ``_settings``, it is no option). Runs::

    L='{"pitch_shifts": [-2, -1, 1, 2], "harmonic": "auto", "harmonic_margin": 12}'
    nice python benchmarks/bench_heldout.py --jobs 1 --tasks duo,trio \
        --families fluidr3,musescore,timgm6mb --learn "$L" \
        --separate '{"relearn": "off"}' \
        --candidate "rl={\"learn\": $L, \"separate\": {\"relearn\": \"auto\"}}" \
        --select --json benchmarks/results/relearn100.json

(``L`` spells out today's learning defaults; the product is the one pass. The figures
above come from the same run with the one-pass and ceiling rows taken from
``harm3.json``, the run in :mod:`nmfsep.harmonic`'s docstring, by ``--reuse
benchmarks/results/harm3.json --reuse-ceiling`` without ``--separate``: 13 min.) It
costs several times the time of one pass where it runs: 8.6× on the bundled 8 s duo,
5.6× at 44.1 kHz stereo (``benchmarks/bench_augmentation.py --timing-relearn``).

A source whose stem is silent or too short to learn from keeps its dictionary alone.
At most :data:`RELEARN_SECONDS` of each stem are learned from (excerpts spread over the
song), so the cost of the extra learning stays bounded on long files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from nmfsep.builtins import from_builtin
from nmfsep.dictionary import Dictionary, learn_dictionary
from nmfsep.exceptions import ParameterError
from nmfsep.plan import Plan

__all__ = ["RELEARN_CHOICES", "RELEARN_SECONDS", "check_relearn", "excerpt_spans", "relearned",
           "should_relearn", "stem_excerpts", "widened"]

#: ``relearn`` settings: "auto" (when the first pass kept every source's harmonic
#: atoms and no dictionary is a built-in), "on" (supervised runs without free atoms), "off".
RELEARN_CHOICES = ("auto", "on", "off")
#: Most seconds of each first-pass stem the second dictionaries learn from.
RELEARN_SECONDS = 30.0
#: Excerpts the seconds are spread over when a stem is longer.
RELEARN_EXCERPTS = 6
#: NMF iterations of the new atoms (``learn_dictionary``'s ``max_iter``).
RELEARN_MAX_ITER = 100


def should_relearn(relearn: str, plan: Plan, adapt: float | None, free_per_source: int
                   ) -> bool:
    """Whether a separation whose first pass used ``plan`` runs a second pass.

    Parameters
    ----------
    relearn : {"auto", "on", "off"}
    plan : Plan
        The plan the first pass's factorization used (after the harmonic choice).
    adapt, free_per_source
        :class:`~nmfsep.plan.SeparationParams`' (a second pass is for fixed atoms).

    Returns
    -------
    bool
    """
    if relearn == "off" or plan.mode != "supervised" or adapt is not None or free_per_source:
        return False
    if relearn == "on":
        return True
    # built-ins keep one pass: with harmonic atoms, held out on four families' duos and
    # trios, a second pass added -0.30 to +0.43 dB at 4.5x (OPL3) to 23x the time
    # (benchmarks/bench_builtin.py)
    return (not plan.harmonic_left_out and all(d.n_harmonic > 0 for d in plan.dictionaries)
            and not any(from_builtin(d) for d in plan.dictionaries))


def check_relearn(relearn: str, plan: Plan, adapt: float | None, free_per_source: int
                  ) -> None:
    """Refuse ``relearn="on"`` where no second pass can run (as the CLI does).

    Raises
    ------
    ParameterError
        ``relearn="on"`` without dictionaries, or with free atoms (``n_free``,
        ``free_per_source``) or ``adapt``: the second pass is for fixed atoms only.
    """
    if relearn == "on" and (plan.mode != "supervised" or adapt is not None
                            or free_per_source):
        raise ParameterError(
            "relearn='on' needs dictionaries, without n_free, free_per_source or adapt (the "
            "second pass adds atoms learned from the first pass's stems to fixed atoms); "
            "use relearn='auto' or 'off'"
        )


def excerpt_spans(n_samples: int, sr: int) -> list[tuple[int, int]]:
    """Return the sample ranges a stem is learned from.

    All of it, or :data:`RELEARN_EXCERPTS` equal excerpts of :data:`RELEARN_SECONDS` in
    all, spread evenly from its start to its end.

    Parameters
    ----------
    n_samples : int
        Length of the stem.
    sr : int
        Its rate in Hz.

    Returns
    -------
    list of (start, stop)
    """
    keep = int(RELEARN_SECONDS * sr)
    if n_samples <= keep:
        return [(0, n_samples)]
    size = keep // RELEARN_EXCERPTS
    starts = np.linspace(0, n_samples - size, RELEARN_EXCERPTS).astype(int)
    return [(int(s), int(s) + size) for s in starts]


def stem_excerpts(blocks: Iterable[tuple[int, np.ndarray]], n_groups: int, n_channels: int,
                  n_samples: int, sr: int) -> list[list[np.ndarray]]:
    """Keep only the :func:`excerpt_spans` of stems that arrive block by block.

    Parameters
    ----------
    blocks : iterable of (start, np.ndarray [shape=(n_groups, n_channels, n)])
        Consecutive blocks of every stem (:func:`nmfsep.separate.stem_blocks`).
    n_groups, n_channels, n_samples : int
        Stems, channels and samples in all.
    sr : int
        Rate in Hz.

    Returns
    -------
    list of list of np.ndarray [shape=(n_channels, stop - start)], float32
        Per stem, its excerpts: at most :data:`RELEARN_SECONDS` of audio each, never a
        whole long stem.
    """
    spans = excerpt_spans(n_samples, sr)
    out = [np.zeros((n_groups, n_channels, b - a), dtype=np.float32) for a, b in spans]
    for start, part in blocks:
        stop = start + part.shape[2]
        for (a, b), buf in zip(spans, out, strict=True):
            lo, hi = max(a, start), min(b, stop)
            if lo < hi:
                buf[:, :, lo - a : hi - a] = part[:, :, lo - start : hi - start]
    return [[buf[g] for buf in out] for g in range(n_groups)]


def _settings(d: Dictionary) -> dict[str, Any]:
    """``learn_dictionary`` keywords that repeat how ``d`` was learned."""
    aug = d.training.get("augmentation")
    shifts = aug.get("pitch_shifts", []) if isinstance(aug, Mapping) else []
    harm = d.training.get("harmonic")
    harm = harm if isinstance(harm, Mapping) else {}
    kw: dict[str, Any] = dict(
        n_components=d.n_atoms - d.n_harmonic, sr=d.sr, stft=d.stft, beta=d.beta,
        power=d.power, context_frames=d.context_frames, pitch_shifts=list(shifts),
        harmonic="auto" if d.n_harmonic else "off")
    if d.n_harmonic:
        kw["harmonic_margin"] = float(harm.get("margin", 12.0))
        kw["harmonic_steps"] = int(harm.get("steps_per_semitone", 3))
    return kw


def widened(old: Dictionary, new: Dictionary) -> Dictionary:
    """``old`` with ``new``'s atoms added: harmonic atoms of both first, then plain.

    Parameters
    ----------
    old, new : Dictionary
        One source's dictionary and the one learned from its first-pass stem (same
        name and settings).

    Returns
    -------
    Dictionary
        ``new.n_harmonic + old.n_harmonic`` harmonic atoms, then ``new``'s and
        ``old``'s plain atoms; ``training["relearned"]`` says how many were added.
    """
    nh_o, nh_n = old.n_harmonic, new.n_harmonic
    atoms = np.vstack([new.atoms[:nh_n], old.atoms[:nh_o], new.atoms[nh_n:], old.atoms[nh_o:]])
    training = dict(old.training)
    harm = training.get("harmonic")
    if nh_o or nh_n:
        training["harmonic"] = {**(harm if isinstance(harm, Mapping) else {}),
                                "atoms": nh_o + nh_n}
    training["relearned"] = {"from": "the first pass's stem", "atoms": int(new.n_atoms),
                             "harmonic_atoms": int(nh_n)}
    return replace(old, atoms=atoms, labels=(old.names[0],) * atoms.shape[0],
                   training=training)


def relearned(dicts: Sequence[Dictionary], stems: Mapping[str, Sequence[np.ndarray]],
              sr: int) -> list[Dictionary]:
    """Every source's dictionary widened by atoms learned from its first-pass stem.

    Parameters
    ----------
    dicts : sequence of Dictionary
        The dictionaries of the first pass, one source each.
    stems : mapping of str to sequence of np.ndarray [shape=(n_channels, n_samples_i)]
        First-pass stem of every source, at ``sr``: its excerpts
        (:func:`stem_excerpts`), or the whole stem in a list.
    sr : int
        Their rate in Hz.

    Returns
    -------
    list of Dictionary
        In the order of ``dicts``; a source whose stem is silent or too short keeps
        its dictionary.
    """
    out = []
    for d in dicts:
        name = d.names[0]
        clips = [(c, sr) for c in stems[name]]
        try:
            new = learn_dictionary(clips, name, random_state=0, max_iter=RELEARN_MAX_ITER,
                                   **_settings(d))
        except ParameterError:  # silent, or fewer frames than atoms: nothing to add
            out.append(d)
            continue
        out.append(widened(d, new))
    return out
