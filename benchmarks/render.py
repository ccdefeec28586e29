"""Render realistic test audio from a General MIDI SoundFont (FluidR3_GM) with FluidSynth.

Short musical parts are composed in code (seeded, so the output is reproducible),
each instrument part is rendered on its own through ``fluidsynth``, and every
mixture is written as the exact sum of its stems: stems are quantised to 16 bit
first and the mixture is the integer sum of the quantised stems, so reading the
files back gives ``mix == sum(stems)`` bit-exactly. Training clips (one instrument each,
from other seeds than the mixtures) start with a chromatic sweep over every pitch the
composer can give the instrument, so a dictionary learned from them knows every note the
mixtures play (``verify`` checks this), and continue with a musical part.

``--what families`` renders the held-out set of ``benchmarks/bench_heldout.py`` instead:
several independent sound families (:data:`FAMILIES`: FluidR3, MuseScore General,
TimGM6mb, the AVL acoustic drum kit, the OPL3 FM-synthesis bank; real LibriVox speech),
per family the tasks piano + flute, piano + flute + bass, drums + bass and speech over a
background from the family, a few 8 s mixtures each, and one 12 s training clip per
instrument and family.
Training clips have no register sweep: they are musical parts from other seeds (other
melody and key), moved down :data:`TRAIN_TRANSPOSE` semitones while test parts move up
:data:`TEST_TRANSPOSE`, so the test plays notes no training clip has (``verify`` lists
them instead of failing).

Requirements (render time only, nothing here is imported by ``nmfsep``)::

    apt-get install -y fluidsynth fluid-soundfont-gm   # + pocketsphinx-testdata for speech
    apt-get install -y musescore-general-soundfont-small timgm6mb-soundfont \
        avldrums.lv2-soundfont opl3-soundfont           # --what families
    pip install mido numpy scipy soundfile

Usage::

    python benchmarks/render.py --what samples --out audio_samples --seed 0
    python benchmarks/render.py --what bench --out benchmarks/data --seed 0 --n 6
    python benchmarks/render.py --what families     # -> benchmarks/data/families
    python benchmarks/render.py --what verify --out audio_samples

Every output folder gets a ``manifest.json`` describing the clips.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

DEFAULT_SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SPEECH_DIR = "/usr/share/pocketsphinx/test/data/librivox"  # Debian: pocketsphinx-testdata
SPEECH_TEST = "sense_and_sensibility_01_austen_64kb-0870"
SPEECH_TRAIN = [
    "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890",
    "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930",
]

TICKS = 480  # MIDI ticks per beat
PEAK = 0.7  # mixture peak after normalisation
FADE_S = 0.05  # fade-out applied to every stem at the cut
FULL = 32768.0  # int16 full scale, as soundfile reads PCM_16 back (k / 32768)
BALANCE_DB = 2.0  # stems are mixed at equal RMS +- this many dB (seeded)

# ----------------------------------------------------------------------------------------
# Instruments
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int  # GM program, 0-based (ignored for drums)
    low: int  # MIDI pitch range used when composing
    high: int
    role: str  # "melody" | "accomp" | "bass" | "drums"
    channel: int = 0  # MIDI channel, 0-based (9 = GM percussion)
    volume: int = 100  # CC7
    span: tuple[int, int] | None = None  # every pitch the composer can play, if not low..high

    @property
    def register(self) -> tuple[int, int]:
        """Lowest and highest MIDI pitch this instrument's composer can produce."""
        return self.span if self.span is not None else (self.low, self.high)


INSTRUMENTS: dict[str, Instrument] = {
    # compose_piano uses its own registers: left hand 36-55, chords 55-79, arpeggio top <= 84
    "piano": Instrument("piano", 0, 43, 79, "accomp", span=(36, 84)),  # Acoustic Grand Piano
    "flute": Instrument("flute", 73, 72, 93, "melody"),  # Flute
    "bass": Instrument("bass", 32, 28, 50, "bass"),  # Acoustic Bass
    "violin": Instrument("violin", 40, 62, 88, "melody"),  # Violin
    "clarinet": Instrument("clarinet", 71, 55, 82, "melody"),  # Clarinet
    "drums": Instrument("drums", 0, 35, 81, "drums", channel=9),  # Standard kit, channel 10
}

# ----------------------------------------------------------------------------------------
# Composition
# ----------------------------------------------------------------------------------------

MODES = {
    "major": [0, 2, 4, 5, 7, 9, 11],
    "minor": [0, 2, 3, 5, 7, 8, 10],
    "dorian": [0, 2, 3, 5, 7, 9, 10],
    "mixolydian": [0, 2, 4, 5, 7, 9, 10],
}
# chord progressions as 0-based scale degrees, one chord per bar
PROGRESSIONS = {
    "major": [[0, 4, 5, 3], [0, 3, 4, 0], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 1, 4], [0, 2, 3, 4]],
    "minor": [[0, 5, 2, 6], [0, 3, 4, 0], [0, 6, 5, 6], [0, 3, 6, 2], [0, 5, 3, 4]],
    "dorian": [[0, 3, 0, 3], [0, 6, 3, 0], [0, 2, 3, 6]],
    "mixolydian": [[0, 6, 3, 0], [0, 3, 6, 0], [0, 4, 6, 3]],
}
NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


@dataclass
class Song:
    tonic: int  # pitch class 0..11
    mode: str
    bpm: float
    progression: list[int]
    beats_per_bar: int = 4

    @property
    def scale(self) -> list[int]:
        return [(self.tonic + s) % 12 for s in MODES[self.mode]]

    def chord(self, bar: int, seventh: bool = False) -> list[int]:
        """Pitch classes of the chord in ``bar`` (root first)."""
        deg = self.progression[bar % len(self.progression)]
        sc = self.scale
        idx = [deg, deg + 2, deg + 4] + ([deg + 6] if seventh else [])
        return [sc[i % 7] for i in idx]

    def describe(self) -> str:
        return f"{NAMES[self.tonic]} {self.mode}, {self.bpm:g} bpm"


@dataclass
class Note:
    start: float  # beats
    dur: float  # beats
    pitch: int
    vel: int


@dataclass
class Part:
    inst: Instrument
    notes: list[Note] = field(default_factory=list)
    pan: int = 64


def rng_for(*tags: object) -> np.random.Generator:
    """Independent, stable random stream for a tuple of tags (crc32 of each)."""
    words = [zlib.crc32(str(t).encode()) for t in tags]
    return np.random.default_rng(words)


def make_song(rng: np.random.Generator) -> Song:
    mode = str(rng.choice(["major", "major", "minor", "minor", "dorian", "mixolydian"]))
    progs = PROGRESSIONS[mode]
    prog = list(progs[int(rng.integers(len(progs)))])
    return Song(
        tonic=int(rng.integers(12)), mode=mode, bpm=float(rng.integers(76, 124)), progression=prog
    )


def pitches_in(pcs: Iterable[int], low: int, high: int) -> list[int]:
    pcs = set(pcs)
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def _vel(rng: np.random.Generator, base: float, spread: float = 8.0) -> int:
    return int(np.clip(round(base + rng.normal(0, spread)), 20, 127))


MELODY_RHYTHMS = [
    [1, 1, 1, 1],
    [2, 1, 1],
    [1, 1, 2],
    [1.5, 0.5, 1, 1],
    [1.5, 0.5, 2],
    [0.5, 0.5, 1, 2],
    [3, 1],
    [2, 2],
    [1, 0.5, 0.5, 1, 1],
    [0.5, 0.5, 0.5, 0.5, 2],
    [1, 1, 0.5, 0.5, 1],
]
LEGATO_RHYTHMS = [[4], [2, 2], [3, 1], [2, 1, 1], [1, 1, 2], [1.5, 0.5, 2], [2, 1.5, 0.5]]
CADENCE_RHYTHMS = [[2, 2], [3, 1], [1, 1, 2], [4]]


def compose_melody(song: Song, inst: Instrument, n_bars: int, rng: np.random.Generator) -> Part:
    legato = inst.name in ("violin", "clarinet")
    pool = LEGATO_RHYTHMS + MELODY_RHYTHMS[:4] if legato else MELODY_RHYTHMS
    scale = pitches_in(song.scale, inst.low, inst.high)
    cur = int(np.argmin([abs(p - (inst.low + inst.high) / 2) for p in scale]))
    direction = 1 if rng.random() < 0.5 else -1
    part = Part(inst)
    bpb = song.beats_per_bar
    base_vel = float(rng.integers(72, 96))
    for bar in range(n_bars):
        cadence = bar % 4 == 3
        pat = (CADENCE_RHYTHMS if cadence else pool)[
            int(rng.integers(len(CADENCE_RHYTHMS) if cadence else len(pool)))
        ]
        chord = song.chord(bar)
        t = 0.0
        for k, d in enumerate(pat):
            pos = bar * bpb + t
            t += d
            rest = (k > 0 and rng.random() < 0.1) or (
                cadence and k == len(pat) - 1 and len(pat) > 1 and rng.random() < 0.5
            )
            if rest:
                continue
            strong = (pos % 2) == 0
            if strong or (cadence and k == len(pat) - 1):
                # nearest chord tone within a few steps, biased along the current direction
                cands = [
                    i
                    for i in range(max(0, cur - 4), min(len(scale), cur + 5))
                    if scale[i] % 12 in chord
                ]
                if cands:
                    w = np.array(
                        [
                            1.0 / (1 + abs(i - cur)) * (1.5 if (i - cur) * direction >= 0 else 1)
                            for i in cands
                        ]
                    )
                    cur = int(rng.choice(cands, p=w / w.sum()))
            else:
                r = rng.random()
                step = (
                    1 if r < 0.6 else 2 if r < 0.85 else 0 if r < 0.9 else int(rng.integers(3, 5))
                )
                if rng.random() < 0.2:
                    direction = -direction
                cur += direction * step
            if cur < 0 or cur >= len(scale):  # bounce off the register limits
                direction = -direction
                cur = int(np.clip(cur, 0, len(scale) - 1))
            if cur <= 1:
                direction = 1
            if cur >= len(scale) - 2:
                direction = -1
            accent = 10 if pos % bpb == 0 else 4 if strong else 0
            phrase = 6 * math.sin(math.pi * ((bar % 4) + t / bpb) / 4)
            art = 0.97 if legato else float(rng.uniform(0.8, 0.95))
            part.notes.append(
                Note(pos, d * art, scale[cur], _vel(rng, base_vel + accent + phrase, 6))
            )
    return part


def _voicing(chord: list[int], low: int, high: int, prev: list[int] | None) -> list[int]:
    """Close-position triad voicing in [low, high], nearest to the previous voicing."""
    options = []
    for root in range(low, high - 7):
        if root % 12 not in chord:
            continue
        v = [root]
        for _ in range(2):
            nxt = v[-1] + 1
            while nxt % 12 not in chord or nxt % 12 in [p % 12 for p in v]:
                nxt += 1
            v.append(nxt)
        if v[-1] <= high:
            options.append(v)
    if prev is None:
        mid = (low + high) / 2
        return min(options, key=lambda v: abs(np.mean(v) - mid))
    return min(options, key=lambda v: sum(abs(a - b) for a, b in zip(v, prev, strict=True)))


def compose_piano(song: Song, inst: Instrument, n_bars: int, rng: np.random.Generator) -> Part:
    part = Part(inst)
    bpb = song.beats_per_bar
    base_vel = float(rng.integers(58, 80))
    prev = None
    style = "block"
    for bar in range(n_bars):
        if bar % 4 == 0:
            style = str(rng.choice(["block", "arpeggio", "alberti", "syncopated"]))
        chord = song.chord(bar, seventh=rng.random() < 0.25)
        triad = chord[:3]
        voicing = _voicing(triad, 55, 79, prev)
        prev = voicing
        lh = [p for p in pitches_in([chord[0]], 36, 50)]
        root = lh[len(lh) // 2] if len(lh) > 1 else lh[0]
        t0 = bar * bpb
        if style == "block":
            part.notes.append(Note(t0, 1.9, root, _vel(rng, base_vel + 6)))
            part.notes.append(
                Note(t0 + 2, 1.9, root + 7 if root + 7 <= 55 else root, _vel(rng, base_vel))
            )
            for beat in (0, 2) if rng.random() < 0.5 else (0, 1, 2, 3):
                gap = 2 if beat % 2 == 0 and len(voicing) and rng.random() < 0.5 else 1
                for p in voicing:
                    part.notes.append(
                        Note(
                            t0 + beat,
                            gap * 0.9,
                            p,
                            _vel(rng, base_vel - 4 + (4 if beat == 0 else 0), 5),
                        )
                    )
        elif style == "syncopated":
            part.notes.append(Note(t0, 3.8, root, _vel(rng, base_vel + 4)))
            for beat, d in ((0, 1.4), (1.5, 1.4), (3, 0.9)):
                for p in voicing:
                    part.notes.append(Note(t0 + beat, d, p, _vel(rng, base_vel - 2, 5)))
        elif style == "arpeggio":
            tones = (
                [root, root + 7]
                + voicing
                + [voicing[1] + 12 if voicing[1] + 12 <= 84 else voicing[0]]
            )
            seq = tones + tones[-2:0:-1]
            for k in range(2 * bpb):
                p = seq[k % len(seq)]
                part.notes.append(
                    Note(
                        t0 + 0.5 * k,
                        0.9 if k == 0 else 0.6,
                        p,
                        _vel(rng, base_vel + (6 if k % 2 == 0 else -2), 5),
                    )
                )
        else:  # alberti: low-high-mid-high in eighths over a held bass note
            part.notes.append(Note(t0, 3.8, root, _vel(rng, base_vel + 2)))
            lo, mid, hi = voicing
            for k, p in enumerate([lo, hi, mid, hi] * 2):
                part.notes.append(
                    Note(
                        t0 + 0.5 * k, 0.45, p, _vel(rng, base_vel - 6 + (5 if k % 4 == 0 else 0), 4)
                    )
                )
    return part


def compose_bass(song: Song, inst: Instrument, n_bars: int, rng: np.random.Generator) -> Part:
    part = Part(inst)
    bpb = song.beats_per_bar
    base_vel = float(rng.integers(85, 105))
    prev_root = None
    style = "root"
    for bar in range(n_bars):
        if bar % 4 == 0:
            style = str(rng.choice(["root", "root5", "walk", "dotted"]))
        chord = song.chord(bar)
        roots = pitches_in([chord[0]], 31, 47)
        root = roots[0] if prev_root is None else min(roots, key=lambda p: abs(p - prev_root))
        prev_root = root
        fifth = root + 7 if root + 7 <= inst.high else root - 5
        nxt = song.chord(bar + 1)[0]
        approach_c = pitches_in([nxt], root - 7, root + 7)
        approach = (approach_c[0] if approach_c else root) + int(rng.choice([-2, -1, 1, 2]))
        t0 = bar * bpb
        if style == "root":
            events = [(0, 3.7, root)] if rng.random() < 0.5 else [(0, 1.8, root), (2, 1.8, root)]
        elif style == "root5":
            events = [(0, 1.8, root), (2, 1.8, fifth)]
        elif style == "dotted":
            events = [(0, 1.4, root), (1.5, 0.45, root), (2, 1.8, fifth)]
        else:
            third = pitches_in([chord[1]], root, root + 12)
            events = [
                (0, 0.9, root),
                (1, 0.9, third[0] if third else root),
                (2, 0.9, fifth),
                (3, 0.9, approach),
            ]
        for b, d, p in events:
            p = int(np.clip(p, inst.low, inst.high))
            part.notes.append(Note(t0 + b, d, p, _vel(rng, base_vel + (6 if b == 0 else 0), 6)))
    return part


KICK, SNARE, HAT_C, HAT_O, CRASH, RIDE, TOM_L, TOM_H = 36, 38, 42, 46, 49, 51, 45, 50


def compose_drums(song: Song, inst: Instrument, n_bars: int, rng: np.random.Generator) -> Part:
    part = Part(inst)
    bpb = song.beats_per_bar
    base_vel = float(rng.integers(80, 100))
    cymbal = HAT_C if rng.random() < 0.75 else RIDE
    for bar in range(n_bars):
        t0 = bar * bpb
        fill = bar % 4 == 3 and rng.random() < 0.6

        def hit(t: float, p: int, v: float, _t0: float = t0) -> None:
            part.notes.append(Note(_t0 + t, 0.25, p, _vel(rng, v, 5)))

        if bar % 8 == 0:
            hit(0, CRASH, base_vel + 5)
        for k in range(2 * bpb):
            t = 0.5 * k
            if fill and t >= 3:
                break
            if k == 2 * bpb - 1 and rng.random() < 0.2 and cymbal == HAT_C:
                hit(t, HAT_O, base_vel - 10)
            else:
                hit(t, cymbal, base_vel - (12 if k % 2 else 2))
        kicks = (
            [0, 2] + ([2.5] if rng.random() < 0.35 else []) + ([1.5] if rng.random() < 0.2 else [])
        )
        for t in kicks:
            hit(t, KICK, base_vel + 8)
        for t in (1, 3):
            if fill and t == 3:
                continue
            hit(t, SNARE, base_vel + 4)
        if rng.random() < 0.3:
            hit(float(rng.choice([1.75, 3.5, 2.75])), SNARE, base_vel - 35)  # ghost note
        if fill:
            for k, t in enumerate(np.arange(3, 4, 0.25)):
                hit(float(t), [SNARE, SNARE, TOM_H, TOM_L][k], base_vel - 6 + 3 * k)
    return part


# ----------------------------------------------------------------------------------------
# Register sweep for the training clips
# ----------------------------------------------------------------------------------------

# A supervised dictionary only knows the notes it was trained on, and a musical part in
# another key covers just part of an instrument's register (a flute melody in one key may
# live in 77-92 while the mixture's flute plays 74-89). So every training clip STARTS with a
# slow chromatic sweep over every pitch the composer can produce for that instrument
# (``Instrument.register``), at a few velocities and note lengths, and then continues with a
# musical part from its own seed (other key, tempo, melody and chords than the mixtures).
# The sweep comes first so that a clip cut to its first ~10 s still covers the register.
SWEEP_VELOCITIES = (55, 85, 115)  # cycled note by note: p, mf, f
SWEEP_BUDGET_S = 9.0  # the first (ascending) pass takes at most this long ...
SWEEP_MAX_STEP_S = 0.3  # ... and moves on at most every 0.3 s
SWEEP_TWO_PASS_MAX = 30  # registers of up to this many notes get a 2nd, descending pass
SWEEP_GAP_S = 0.6  # silence between the sweep and the musical part (lets releases decay)
# every kit piece compose_drums uses; cymbals and the open hat ring longer
DRUM_KIT = (KICK, SNARE, HAT_C, TOM_L, TOM_H, HAT_O, RIDE, CRASH)
DRUM_RING = {HAT_O: 0.6, RIDE: 0.6, CRASH: 0.6}
DRUM_STEP_S = 0.3


@dataclass
class Sweep:
    notes: list[tuple[float, float, int, int]]  # (start s, duration s, pitch, velocity)
    seconds: float  # length, including the last note's step
    passes: int
    step_s: float

    def pitches(self) -> list[int]:
        return sorted({n[2] for n in self.notes})


def compose_sweep(inst: Instrument) -> Sweep:
    """Every pitch of ``inst.register`` (or every drum the composer uses), a few dynamics.

    Pitched instruments: an ascending chromatic pass, one note every ``step`` seconds
    (``step = min(0.3 s, 9 s / n_pitches)``), velocities cycling p/mf/f and note lengths
    alternating legato (0.9 step) / detached (0.5 step); registers of up to 30 notes get a
    second, descending pass in which each pitch has another velocity and the other length.
    Drums: each kit piece at the three velocities, cymbals given more room to ring.
    """
    notes: list[tuple[float, float, int, int]] = []
    t = 0.0
    if inst.role == "drums":
        for p in DRUM_KIT:
            step = DRUM_RING.get(p, DRUM_STEP_S)
            for v in SWEEP_VELOCITIES:
                notes.append((t, 0.1, p, v))
                t += step
        return Sweep(notes, t, 1, DRUM_STEP_S)
    lo, hi = inst.register
    pitches = list(range(lo, hi + 1))
    step = min(SWEEP_MAX_STEP_S, SWEEP_BUDGET_S / len(pitches))
    passes = 2 if len(pitches) <= SWEEP_TWO_PASS_MAX else 1
    nv = len(SWEEP_VELOCITIES)
    for k in range(passes):
        order = range(len(pitches)) if k % 2 == 0 else range(len(pitches) - 1, -1, -1)
        for j in order:
            vel = SWEEP_VELOCITIES[(j + k) % nv]
            dur = step * (0.9 if (j + k) % 2 == 0 else 0.5)
            notes.append((t, dur, pitches[j], vel))
            t += step
    return Sweep(notes, t, passes, step)


COMPOSERS = {
    "melody": compose_melody,
    "accomp": compose_piano,
    "bass": compose_bass,
    "drums": compose_drums,
}


def compose(
    song: Song, inst_name: str, seconds: float, rng: np.random.Generator, tail_s: float = 0.6
) -> Part:
    """Compose a part covering ``seconds`` (notes end ``tail_s`` before the end)."""
    inst = INSTRUMENTS[inst_name]
    sec_per_beat = 60.0 / song.bpm
    end_beats = (seconds - tail_s) / sec_per_beat
    n_bars = int(math.ceil(end_beats / song.beats_per_bar))
    part = COMPOSERS[inst.role](song, inst, n_bars, rng)
    notes = []
    for n in part.notes:
        if n.start >= end_beats - 0.05:
            continue
        notes.append(Note(n.start, min(n.dur, end_beats - n.start), n.pitch, n.vel))
    part.notes = notes
    return part


# ----------------------------------------------------------------------------------------
# MIDI writing and FluidSynth rendering
# ----------------------------------------------------------------------------------------


def write_midi(part: Part, song: Song, path: Path, seconds: float) -> None:
    import mido  # render-time dependency only

    mf = mido.MidiFile(ticks_per_beat=TICKS)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    ch = part.inst.channel
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(song.bpm), time=0))
    if ch != 9:
        tr.append(mido.Message("program_change", program=part.inst.program, channel=ch, time=0))
    for cc, val in ((7, part.inst.volume), (10, part.pan), (91, 0), (93, 0), (64, 0)):
        tr.append(mido.Message("control_change", control=cc, value=val, channel=ch, time=0))
    events = []
    for n in part.notes:
        on = int(round(n.start * TICKS))
        off = max(on + 1, int(round((n.start + n.dur) * TICKS)))
        events.append((on, 1, mido.Message("note_on", note=n.pitch, velocity=n.vel, channel=ch)))
        events.append((off, 0, mido.Message("note_off", note=n.pitch, velocity=0, channel=ch)))
    # a harmless CC at the very end keeps the player alive to the full length
    end = int(round(seconds * song.bpm / 60.0 * TICKS)) + TICKS
    events.append(
        (end, 2, mido.Message("control_change", control=7, value=part.inst.volume, channel=ch))
    )
    events.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _, msg in events:
        tr.append(msg.copy(time=tick - now))
        now = tick
    tr.append(mido.MetaMessage("end_of_track", time=0))
    mf.save(str(path))


def fluidsynth_cmd(sf2: str, sr: int, mid: Path, wav: Path) -> list[str]:
    return [
        "fluidsynth",
        "-ni",
        "-q",
        "-R",
        "0",
        "-C",
        "0",
        "-g",
        "0.5",
        "-r",
        str(sr),
        "-O",
        "float",
        "-T",
        "wav",
        "-F",
        str(wav),
        sf2,
        str(mid),
    ]


def render_part(
    part: Part, song: Song, seconds: float, sr: int, sf2: str, tmp: Path, tag: str
) -> np.ndarray:
    """Render one part to a float64 (n, 2) stereo array of exactly ``seconds * sr`` samples."""
    mid = tmp / f"{tag}.mid"
    wav = tmp / f"{tag}.wav"
    write_midi(part, song, mid, seconds)
    res = subprocess.run(fluidsynth_cmd(sf2, sr, mid, wav), capture_output=True, text=True)
    if res.returncode != 0 or not wav.exists():
        raise RuntimeError(f"fluidsynth failed for {tag}: {res.stderr.strip()[-500:]}")
    x, got_sr = sf.read(str(wav), dtype="float64", always_2d=True)
    assert got_sr == sr, (got_sr, sr)
    n = int(round(seconds * sr))
    out = np.zeros((n, 2))
    m = min(n, x.shape[0])
    out[:m] = x[:m, :2]
    return out


# ----------------------------------------------------------------------------------------
# Assembly: stems -> quantised stems -> mixture (= exact sum)
# ----------------------------------------------------------------------------------------


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def fade_out(x: np.ndarray, sr: int, seconds: float = FADE_S) -> np.ndarray:
    n = min(len(x), int(round(seconds * sr)))
    if n > 0:
        x = x.copy()
        x[-n:] *= np.linspace(1.0, 0.0, n)[:, None]
    return x


def pan_gains(pan: float) -> np.ndarray:
    """Constant-power balance gains (L, R) for ``pan`` in [-1, 1]; (1, 1) at the centre.

    Applied after rendering: FluidR3's piano and flute are stereo-sampled, and MIDI CC10
    moves them only about 3 dB, so the stereo placement is done here instead.
    """
    theta = (pan + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * np.array([math.cos(theta), math.sin(theta)])


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    return x if channels == 2 else x.mean(axis=1, keepdims=True)


def quantise_mix(
    stems: dict[str, np.ndarray], peak: float = PEAK
) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Scale all stems by one gain so the mixture peaks at ``peak``; return int16 stems + mix."""
    mix = sum(stems.values())
    gain = peak / float(np.max(np.abs(mix)))
    q = {k: np.round(v * gain * FULL).astype(np.int32) for k, v in stems.items()}
    for k, v in q.items():
        if np.max(np.abs(v)) > 32767:
            raise ValueError(f"stem {k} would clip after gain {gain:.3f}")
    qmix = sum(q.values())
    if np.max(np.abs(qmix)) > 32767:
        raise ValueError("mixture would clip")
    return {k: v.astype(np.int16) for k, v in q.items()}, qmix.astype(np.int16), gain


def write_flac(path: Path, x: np.ndarray, sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype="PCM_16", format="FLAC", compression_level=1.0)


@dataclass
class Job:
    """One clip to render: a mixture of several instruments, or a single training part."""

    folder: str  # relative output folder (mixture) or relative file path (training clip)
    instruments: list[str]
    seed: int
    seconds: float
    sr: int = 22050
    channels: int = 1
    pans: dict[str, float] = field(default_factory=dict)  # -1 (left) .. +1 (right)
    kind: str = "mixture"  # "mixture" | "train"
    task: str = ""
    family: str = ""  # --what families: the sound family (FAMILIES) every part comes from
    transpose: int = 0  # semitones added to every pitched note (register shift)
    sweep: bool = True  # training clips: start with the register sweep


def training_part(
    song: Song, name: str, music_seconds: float, rng: np.random.Generator
) -> tuple[Part, float, dict]:
    """Register sweep, a short silence, then a musical part of ``music_seconds``.

    Returns the part, its total length in seconds and a manifest description. The musical
    part is composed exactly as for a mixture (same composer, its own seed), then shifted
    to start on the next half second after the sweep and a short gap.
    """
    inst = INSTRUMENTS[name]
    sweep = compose_sweep(inst)
    bps = song.bpm / 60.0  # beats per second
    offset_s = math.ceil((sweep.seconds + SWEEP_GAP_S) * 2 - 1e-9) / 2  # next half second
    music = compose(song, name, music_seconds, rng)
    part = Part(inst)
    part.notes = [Note(t * bps, d * bps, p, v) for t, d, p, v in sweep.notes]
    part.notes += [Note(n.start + offset_s * bps, n.dur, n.pitch, n.vel) for n in music.notes]
    info = {
        "sweep": {
            "start_s": 0.0,
            "end_s": round(sweep.seconds, 3),
            "pitches": [min(sweep.pitches()), max(sweep.pitches())]
            if inst.role != "drums"
            else sweep.pitches(),
            "chromatic": inst.role != "drums",
            "passes": sweep.passes,
            "step_s": round(sweep.step_s, 4),
            "velocities": list(SWEEP_VELOCITIES),
        },
        "music": {"start_s": round(offset_s, 3), "song": song.describe()},
    }
    return part, offset_s + music_seconds, info


def pitch_range(part: Part) -> list[int]:
    p = [n.pitch for n in part.notes]
    return [min(p), max(p)]


def run_job(job: Job, out: Path, sf2: str, tmp: Path) -> dict:
    song = make_song(rng_for(job.seed, job.task, job.folder, "song"))
    seconds = job.seconds
    stems = {}
    ranges = {}
    train_info: dict = {}
    for name in job.instruments:
        rng = rng_for(job.seed, job.task, job.folder, name)
        if job.kind == "train" and job.sweep:
            part, seconds, train_info = training_part(song, name, job.seconds, rng)
        else:
            part = transposed(compose(song, name, job.seconds, rng), job.transpose)
            if job.kind == "train":
                train_info = {"music": {"start_s": 0.0, "song": song.describe()}}
        ranges[name] = pitch_range(part)
        tag = f"{job.folder.replace('/', '_')}_{name}"
        part_sf2 = sf2
        if job.family:
            part_sf2, part = family_source(job.family, part)
        x = render_part(part, song, seconds, job.sr, part_sf2, tmp, tag)
        x = to_channels(x, job.channels)
        if job.channels == 2:
            x = x * pan_gains(job.pans.get(name, 0.0))
        stems[name] = fade_out(x, job.sr)
    # balance: every stem at the same RMS, give or take a seeded +-BALANCE_DB (GM patches
    # differ by >10 dB in loudness, e.g. flute vs piano), then one common gain for the peak
    bal = rng_for(job.seed, job.task, job.folder, "balance")
    levels_db = {}
    for name in job.instruments:
        levels_db[name] = round(float(bal.uniform(-BALANCE_DB, BALANCE_DB)), 2)
        stems[name] *= 10 ** (levels_db[name] / 20) / rms(stems[name])
    q, qmix, _ = quantise_mix(stems)
    n = int(round(seconds * job.sr))
    entry = {
        "kind": job.kind,
        "task": job.task,
        "seed": job.seed,
        "instruments": job.instruments,
        "programs": {
            k: (None if INSTRUMENTS[k].channel == 9 else INSTRUMENTS[k].program)
            for k in job.instruments
        },
        "sample_rate": job.sr,
        "channels": job.channels,
        "duration_s": n / job.sr,
        "song": song.describe(),
        "pitch_range": ranges,  # lowest and highest MIDI note played, per instrument
    }
    if job.family:
        entry["family"] = job.family
        entry["transpose"] = job.transpose
        entry["sources"] = {k: family_source_record(job.family, k) for k in job.instruments}
    if job.kind == "mixture":
        entry["level_db"] = levels_db
    else:
        entry.update(train_info)
    if job.pans:
        entry["pan"] = {k: job.pans.get(k, 0.0) for k in job.instruments}
    if job.kind == "train":
        (name,) = job.instruments
        write_flac(out / job.folder, q[name], job.sr)
        entry["file"] = job.folder
    else:
        folder = out / job.folder
        write_flac(folder / "mix.flac", qmix, job.sr)
        for k, v in q.items():
            write_flac(folder / f"{k}.flac", v, job.sr)
        entry["mix"] = f"{job.folder}/mix.flac"
        entry["stems"] = {k: f"{job.folder}/{k}.flac" for k in job.instruments}
    print(f"  {job.folder:<34} {', '.join(job.instruments):<22} {song.describe()}", flush=True)
    return entry


def run_jobs(jobs: list[Job], out: Path, sf2: str, n_jobs: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="nmfsep-render-") as td:
        tmp = Path(td)
        with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as ex:
            return list(ex.map(lambda j: run_job(j, out, sf2, tmp), jobs))


# ----------------------------------------------------------------------------------------
# Real speech (LibriVox recording shipped by Debian's pocketsphinx-testdata)
# ----------------------------------------------------------------------------------------


def load_speech(name: str, sr: int) -> np.ndarray:
    from scipy.signal import resample_poly

    x, in_sr = sf.read(os.path.join(SPEECH_DIR, name + ".wav"), dtype="float64")
    g = math.gcd(sr, in_sr)
    return resample_poly(x, sr // g, in_sr // g)


def speech_job(
    out: Path, sf2: str, seed: int, sr: int = 16000, seconds: float = 8.0, snr_db: float = 6.0
) -> list[dict]:
    """Speech (real recording) + soft piano background, and a disjoint speech training clip."""
    n = int(round(seconds * sr))
    speech = np.zeros(n)
    s = load_speech(SPEECH_TEST, sr)
    off = int(0.4 * sr)
    m = min(len(s), n - off)
    speech[off : off + m] = s[:m]
    song = make_song(rng_for(seed, "speech", "song"))
    part = compose(song, "piano", seconds, rng_for(seed, "speech", "piano"))
    with tempfile.TemporaryDirectory(prefix="nmfsep-render-") as td:
        bg = render_part(part, song, seconds, sr, sf2, Path(td), "speech_bg").mean(axis=1)

    active = np.abs(speech) > 1e-3
    bg *= rms(speech[active]) / rms(bg) / 10 ** (snr_db / 20)
    stems = {"speech": fade_out(speech[:, None], sr), "piano": fade_out(bg[:, None], sr)}
    q, qmix, _ = quantise_mix(stems)
    write_flac(out / "speech_piano" / "mix.flac", qmix, sr)
    for k, v in q.items():
        write_flac(out / "speech_piano" / f"{k}.flac", v, sr)
    entries = [
        {
            "kind": "mixture",
            "task": "speech_piano",
            "seed": seed,
            "instruments": ["speech", "piano"],
            "programs": {"speech": None, "piano": 0},
            "sample_rate": sr,
            "channels": 1,
            "duration_s": n / sr,
            "song": song.describe(),
            "pitch_range": {"piano": pitch_range(part)},
            "snr_db": snr_db,
            "speech_source": f"{SPEECH_DIR}/{SPEECH_TEST}.wav",
            "mix": "speech_piano/mix.flac",
            "stems": {"speech": "speech_piano/speech.flac", "piano": "speech_piano/piano.flac"},
        }
    ]
    gap = np.zeros(int(0.3 * sr))
    train = np.concatenate([np.concatenate([load_speech(nm, sr), gap]) for nm in SPEECH_TRAIN])
    train = fade_out(train[:, None], sr)
    tq = np.round(train * (PEAK / np.max(np.abs(train))) * FULL).astype(np.int16)
    write_flac(out / "train" / "speech.flac", tq, sr)
    entries.append(
        {
            "kind": "train",
            "task": "",
            "seed": None,
            "instruments": ["speech"],
            "programs": {"speech": None},
            "sample_rate": sr,
            "channels": 1,
            "duration_s": len(tq) / sr,
            "file": "train/speech.flac",
            "speech_source": [f"{SPEECH_DIR}/{nm}.wav" for nm in SPEECH_TRAIN],
        }
    )
    print("  speech_piano + train/speech.flac (LibriVox, pocketsphinx-testdata)", flush=True)
    return entries


# ----------------------------------------------------------------------------------------
# Sets
# ----------------------------------------------------------------------------------------


TRAIN_MUSIC_S = 12.0  # samples: musical part of each training clip (after the sweep)


def sample_jobs(seed: int) -> list[Job]:
    return [
        Job("piano_flute", ["piano", "flute"], seed, 8.0, task="piano_flute"),
        Job(
            "trio",
            ["piano", "flute", "bass"],
            seed,
            8.0,
            channels=2,
            pans={"piano": -0.5, "flute": 0.5, "bass": 0.0},
            task="trio",
        ),
        Job(
            "piano_flute_44k",
            ["piano", "flute"],
            seed,
            5.0,
            sr=44100,
            channels=2,
            pans={"piano": -0.4, "flute": 0.4},
            task="piano_flute_44k",
        ),
        Job("drums_bass", ["drums", "bass"], seed, 8.0, task="drums_bass"),
        # training clips: a register sweep, then 12 s of music from their own seeds
        # (seed + 1000) and tags, so the music is disjoint from the mixtures
        *[
            Job(f"train/{k}.flac", [k], seed + 1000, TRAIN_MUSIC_S, kind="train", task="train")
            for k in ("piano", "flute", "bass", "drums")
        ],
    ]


BENCH_TASKS = {
    "duo": ["piano", "flute"],
    "trio": ["piano", "flute", "bass"],
    "duo2": ["violin", "piano"],
    "drums_bass": ["drums", "bass"],
}


def bench_jobs(
    seed: int, n: int, tasks: list[str], seconds: float, train_seconds: float, sr: int
) -> list[Job]:
    jobs = []
    insts = sorted({i for t in tasks for i in BENCH_TASKS[t]})
    for i in range(n):
        s = seed + i
        for t in tasks:
            jobs.append(Job(f"{t}/seed{s:03d}", BENCH_TASKS[t], s, seconds, sr=sr, task=t))
        for k in insts:  # training clips from separate seeds (s + 100000)
            jobs.append(
                Job(
                    f"train/seed{s:03d}/{k}.flac",
                    [k],
                    s + 100000,
                    train_seconds,
                    sr=sr,
                    kind="train",
                    task="train",
                )
            )
    return jobs



# ----------------------------------------------------------------------------------------
# Sound families (--what families): independent sample sources for a held-out protocol
# ----------------------------------------------------------------------------------------

SF2_DIR = "/usr/share/sounds/sf2"


@dataclass(frozen=True)
class Source:
    """Where one instrument of a family comes from: a SoundFont and, if not GM, its preset."""

    sf2: str
    channel: int | None = None  # None: the instrument's GM channel and program
    program: int | None = None


@dataclass(frozen=True)
class Family:
    """One sound family: the sample source of every instrument its tasks use.

    ``groups`` names the sample lineages it draws on: families sharing a group are not
    independent (MuseScore General reuses FluidR3 Mono samples; the AVL drum family's
    bass is TimGM6mb's), so leave-one-family-out never chooses on a family that shares a
    group with the held-out one.
    """

    name: str
    package: str
    licence: str
    sources: dict[str, Source]
    tasks: tuple[str, ...]
    groups: tuple[str, ...]
    speech_background: str = "piano"


def _gm(sf2: str, names: Iterable[str]) -> dict[str, Source]:
    return {n: Source(sf2) for n in names}


GM_INSTRUMENTS = ("piano", "flute", "bass", "drums")
FAMILY_TASKS = {
    "duo": ["piano", "flute"],
    "trio": ["piano", "flute", "bass"],
    "drums_bass": ["drums", "bass"],
    "speech": ["speech"],  # + the family's speech_background
}
FAMILIES: dict[str, Family] = {
    "fluidr3": Family(
        "fluidr3", "fluid-soundfont-gm", "MIT",
        _gm(f"{SF2_DIR}/FluidR3_GM.sf2", GM_INSTRUMENTS),
        ("duo", "trio", "drums_bass", "speech"), ("fluid",),
    ),
    "musescore": Family(
        "musescore", "musescore-general-soundfont-small",
        "MIT (FluidR3 Mono parts), piano and drumline PD/CC0",
        _gm("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", GM_INSTRUMENTS),
        ("duo", "trio", "drums_bass", "speech"), ("fluid",),
    ),
    "timgm6mb": Family(
        "timgm6mb", "timgm6mb-soundfont", "GPL-2",
        _gm(f"{SF2_DIR}/TimGM6mb.sf2", GM_INSTRUMENTS),
        ("duo", "trio", "drums_bass", "speech"), ("timgm",),
    ),
    # real acoustic drum kit (multi-sampled recordings), bank 0 program 0, GM note map;
    # no melodic instruments, so its bass is TimGM6mb's (hence the shared group)
    "avl": Family(
        "avl", "avldrums.lv2-soundfont (+ timgm6mb-soundfont for the bass)",
        "CC-BY-SA-3.0 (kit); GPL-2 (bass)",
        {"drums": Source(f"{SF2_DIR}/Black_Pearl_4_LV2.sf2", channel=0, program=0),
         "bass": Source(f"{SF2_DIR}/TimGM6mb.sf2")},
        ("drums_bass", "speech"), ("avl", "timgm"), speech_background="drums",
    ),
    # FM synthesis (voices of a Yamaha OPL3 chip, no recorded samples): independent of
    # every sample lineage here, and far from the fonts the built-ins are learned from
    "opl3": Family(
        "opl3", "opl3-soundfont", "CC-BY-SA-4.0",
        _gm(f"{SF2_DIR}/OPL-3_FM_128M.sf2", GM_INSTRUMENTS),
        ("duo", "trio", "drums_bass", "speech"), ("opl3",),
    ),
}
SPEECH_FAMILY = {
    "name": "librivox", "package": "pocketsphinx-testdata",
    "licence": "public domain recording (LibriVox), package BSD-2",
    "file": SPEECH_DIR,
}
# Training clips and mixtures differ in melody and key (their own seeds) and in register:
# every pitched test part is moved up, every training part down, so a test part reaches
# up to 4 semitones above (and a training part below) anything the other one plays.
TEST_TRANSPOSE = 2
TRAIN_TRANSPOSE = -2
FAMILY_TRAIN_SEED = 100000  # training songs come from seed + this


def transposed(part: Part, semitones: int) -> Part:
    """``part`` with every pitch moved by ``semitones`` (drums are left alone)."""
    if semitones == 0 or part.inst.role == "drums":
        return part
    notes = [Note(n.start, n.dur, n.pitch + semitones, n.vel) for n in part.notes]
    return Part(part.inst, notes, part.pan)


def family_source(family: str, part: Part) -> tuple[str, Part]:
    """The SoundFont of ``part``'s instrument in ``family``, and the part re-addressed to it."""
    src = FAMILIES[family].sources[part.inst.name]
    if src.channel is None:
        return src.sf2, part
    inst = replace(part.inst, channel=src.channel, program=src.program or 0)
    return src.sf2, Part(inst, part.notes, part.pan)


def family_source_record(family: str, name: str) -> dict:
    src = FAMILIES[family].sources[name]
    inst = INSTRUMENTS[name]
    chan = inst.channel if src.channel is None else src.channel
    prog = inst.program if src.program is None else src.program
    return {"file": os.path.basename(src.sf2), "channel": chan + 1,
            "bank": 128 if chan == 9 else 0, "program": None if chan == 9 else prog}


def family_jobs(
    families: list[str], seed: int, n: int, seconds: float, train_seconds: float, sr: int
) -> list[Job]:
    """Mixtures of every music task of every family, and one training clip per instrument."""
    jobs = []
    for fam in families:
        insts: set[str] = set()
        for task in FAMILIES[fam].tasks:
            if task == "speech":
                insts.add(FAMILIES[fam].speech_background)
                continue
            insts.update(FAMILY_TASKS[task])
            for s in range(seed, seed + n):
                jobs.append(Job(f"{fam}/{task}/seed{s:03d}", FAMILY_TASKS[task], s, seconds,
                                sr=sr, task=task, family=fam, transpose=TEST_TRANSPOSE))
        for k in sorted(insts):
            jobs.append(Job(f"{fam}/train/{k}.flac", [k], seed + FAMILY_TRAIN_SEED,
                            train_seconds, sr=sr, kind="train", task="train", family=fam,
                            transpose=TRAIN_TRANSPOSE, sweep=False))
    return jobs


def family_speech_job(
    out: Path, family: str, seed: int, sr: int = 16000, seconds: float = 8.0,
    snr_db: float = 6.0,
) -> dict:
    """Real speech 6 dB over a background part from ``family`` (the test utterance)."""
    fam = FAMILIES[family]
    bg_name = fam.speech_background
    n = int(round(seconds * sr))
    speech = np.zeros(n)
    s = load_speech(SPEECH_TEST, sr)
    off = int(0.4 * sr)
    m = min(len(s), n - off)
    speech[off : off + m] = s[:m]
    folder = f"{family}/speech/seed{seed:03d}"
    song = make_song(rng_for(seed, "speech", folder, "song"))
    part = compose(song, bg_name, seconds, rng_for(seed, "speech", folder, bg_name))
    part = transposed(part, TEST_TRANSPOSE)
    sf2, part = family_source(family, part)
    with tempfile.TemporaryDirectory(prefix="nmfsep-render-") as td:
        bg = render_part(part, song, seconds, sr, sf2, Path(td), "bg").mean(axis=1)
    active = np.abs(speech) > 1e-3
    bg *= rms(speech[active]) / rms(bg) / 10 ** (snr_db / 20)
    stems = {"speech": fade_out(speech[:, None], sr), bg_name: fade_out(bg[:, None], sr)}
    q, qmix, _ = quantise_mix(stems)
    write_flac(out / folder / "mix.flac", qmix, sr)
    for k, v in q.items():
        write_flac(out / folder / f"{k}.flac", v, sr)
    print(f"  {folder:<34} speech, {bg_name:<14} {song.describe()}", flush=True)
    return {
        "kind": "mixture", "task": "speech", "seed": seed, "family": family,
        "instruments": ["speech", bg_name], "sample_rate": sr, "channels": 1,
        "duration_s": n / sr, "song": song.describe(), "transpose": TEST_TRANSPOSE,
        "pitch_range": {bg_name: pitch_range(part)}, "snr_db": snr_db,
        "sources": {"speech": SPEECH_FAMILY["name"],
                    bg_name: family_source_record(family, bg_name)},
        "speech_source": f"{SPEECH_DIR}/{SPEECH_TEST}.wav",
        "mix": f"{folder}/mix.flac",
        "stems": {"speech": f"{folder}/speech.flac", bg_name: f"{folder}/{bg_name}.flac"},
    }


def speech_train_clip(out: Path, sr: int = 16000, path: str = "train/speech.flac") -> dict:
    """Other utterances of the same reader (disjoint from :data:`SPEECH_TEST`)."""
    gap = np.zeros(int(0.3 * sr))
    train = np.concatenate([np.concatenate([load_speech(nm, sr), gap]) for nm in SPEECH_TRAIN])
    train = fade_out(train[:, None], sr)
    tq = np.round(train * (PEAK / np.max(np.abs(train))) * FULL).astype(np.int16)
    write_flac(out / path, tq, sr)
    return {
        "kind": "train", "task": "", "seed": None, "instruments": ["speech"],
        "programs": {"speech": None}, "sample_rate": sr, "channels": 1,
        "duration_s": len(tq) / sr, "file": path,
        "speech_source": [f"{SPEECH_DIR}/{nm}.wav" for nm in SPEECH_TRAIN],
    }


def render_families(args: argparse.Namespace, out: Path) -> list[dict]:
    """Every family's mixtures and training clips, the speech mixtures and speech clip."""
    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(fams) - set(FAMILIES)
    if unknown:
        sys.exit(f"unknown families {sorted(unknown)}; choose from {list(FAMILIES)}")
    missing = sorted({s.sf2 for f in fams for s in FAMILIES[f].sources.values()
                      if not Path(s.sf2).exists()})
    if missing:
        sys.exit(f"SoundFonts not found: {missing}; install the packages in FAMILIES")
    print(f"rendering families {fams} ({args.n} mixtures per task) to {out}")
    clips = run_jobs(family_jobs(fams, args.seed, args.n, args.seconds, args.train_seconds,
                                 args.sr), out, args.sf2, args.jobs)
    speech = [f for f in fams if "speech" in FAMILIES[f].tasks]
    if speech:
        if not Path(SPEECH_DIR, SPEECH_TEST + ".wav").exists():
            sys.exit("no speech: apt-get install -y pocketsphinx-testdata")
        clips.append(speech_train_clip(out))
        for fam in speech:
            for s in range(args.seed, args.seed + args.n):
                clips.append(family_speech_job(out, fam, s))
    for c in clips:
        if c["kind"] == "mixture":
            c["train"] = {k: ("train/speech.flac" if k == "speech"
                              else f"{c['family']}/train/{k}.flac") for k in c["instruments"]}
    return clips


def family_table(fams: Iterable[str]) -> dict:
    table = {}
    for f in fams:
        fam = FAMILIES[f]
        table[f] = {"package": fam.package, "licence": fam.licence, "groups": list(fam.groups),
                    "tasks": list(fam.tasks),
                    "files": sorted({os.path.basename(s.sf2) for s in fam.sources.values()})}
    table["librivox"] = dict(SPEECH_FAMILY)
    return table


# ----------------------------------------------------------------------------------------
# Verification
# ----------------------------------------------------------------------------------------


def verify(out: Path) -> bool:
    man = json.loads((out / "manifest.json").read_text())
    ok = True
    worst = 0.0
    for e in man["clips"]:
        files = [e["file"]] if e["kind"] == "train" else [e["mix"], *e["stems"].values()]
        data = {}
        for f in files:
            x, sr = sf.read(str(out / f), dtype="float64", always_2d=True)
            info = sf.info(str(out / f))
            data[f] = x
            dur_ok = abs(len(x) / sr - e["duration_s"]) < 1e-6 and sr == e["sample_rate"]
            ch_ok = x.shape[1] == e["channels"]
            peak = float(np.max(np.abs(x)))
            clip = int(np.sum(np.abs(x) >= 32767 / FULL))
            if not (dur_ok and ch_ok and clip == 0 and peak > 0.01):
                ok = False
                print(
                    f"FAIL {f}: dur {len(x) / sr:.3f}s sr {sr} ch {x.shape[1]} peak {peak:.3f} "
                    f"clipped {clip} {info.subtype}"
                )
        if e["kind"] == "mixture":
            mix = data[e["mix"]]
            stems = sum(data[f] for f in e["stems"].values())
            diff = float(np.max(np.abs(mix - stems)))
            worst = max(worst, diff)
            peak = float(np.max(np.abs(mix)))
            print(
                f"  {e['mix']:<36} {mix.shape[1]}ch {e['sample_rate']} Hz "
                f"{len(mix) / e['sample_rate']:.2f} s "
                f"peak {peak:.4f}  max|mix-sum(stems)| = {diff:.2e}"
            )
            if diff > 1e-4 or peak >= 1.0:
                ok = False
    # every note a mixture plays must be in the register its training clips cover
    # (families: the registers differ on purpose, so this is reported, not required)
    trains = {e["file"]: e for e in man["clips"] if e["kind"] == "train"}
    for e in man["clips"]:
        for name, f in e.get("train", {}).items():
            used, have = e.get("pitch_range", {}).get(name), trains[f].get("pitch_range", {})
            if used is None or name not in have:
                continue
            if not have[name][0] <= used[0] <= used[1] <= have[name][1]:
                if "family" in e:
                    print(f"  {e['mix']}: {name} plays {used}, {f} plays {have[name]}")
                    continue
                ok = False
                print(f"FAIL {e['mix']}: {name} plays {used}, {f} covers only {have[name]}")
    print(f"worst max|mix - sum(stems)| = {worst:.3e}; {'OK' if ok else 'FAILED'}")
    return ok


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def fluidsynth_version() -> str:
    try:
        r = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True)
        return r.stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unknown"


def _check_renderer(sf2: str) -> None:
    """Exit with the install command when mido, fluidsynth or the SoundFont is missing."""
    try:
        import mido  # noqa: F401  (render-time dependency only)
    except ImportError:
        sys.exit("mido not found: pip install mido")
    if shutil.which("fluidsynth") is None:
        sys.exit("fluidsynth not found: apt-get install -y fluidsynth fluid-soundfont-gm")
    if not Path(sf2).exists():
        sys.exit(f"SoundFont {sf2} not found: apt-get install -y fluid-soundfont-gm")


def _render_families(args: argparse.Namespace, out: Path, cmd: str) -> int:
    """Render the held-out sound families and write their manifest; 0 if they verify."""
    clips = render_families(args, out)
    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    manifest = {
        "generator": "benchmarks/render.py", "command": cmd,
        "fluidsynth": fluidsynth_version(),
        "format": "FLAC PCM_16; mix = sum(stems) exactly (integer sum of the 16-bit stems)",
        "seed": args.seed, "families": family_table(fams),
        "tasks": {t: v for t, v in FAMILY_TASKS.items()},
        "register": {"test_transpose": TEST_TRANSPOSE, "train_transpose": TRAIN_TRANSPOSE,
                     "train_seed_offset": FAMILY_TRAIN_SEED, "train_sweep": False},
        "clips": clips,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0 if verify(out) else 1


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--what", choices=["samples", "bench", "families", "verify"],
                    default="samples")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: audio_samples/ or benchmarks/data/)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=None,
                    help="bench: number of seeds (6); families: mixtures per task (3)")
    ap.add_argument("--families", default=",".join(FAMILIES),
                    help="families: comma-separated sound families")
    ap.add_argument("--tasks", default=",".join(BENCH_TASKS), help="bench: comma-separated tasks")
    ap.add_argument("--seconds", type=float, default=None,
                    help="bench/families: mixture length (10 / 8 s)")
    ap.add_argument(
        "--train-seconds",
        type=float,
        default=None,
        help="bench: length of the musical part of a training clip after the register sweep "
        "(30 s); families: length of a training clip, music only (12 s)",
    )
    ap.add_argument("--sr", type=int, default=22050, help="bench: sample rate")
    ap.add_argument("--sf2", default=DEFAULT_SF2)
    ap.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel fluidsynth runs"
    )
    ap.add_argument("--no-speech", action="store_true", help="samples: skip the speech example")
    return ap


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    args = _parser().parse_args(argv)

    fam = args.what == "families"
    args.n = args.n if args.n is not None else 3 if fam else 6
    args.seconds = args.seconds if args.seconds is not None else 8.0 if fam else 10.0
    if args.train_seconds is None:
        args.train_seconds = 12.0 if fam else 30.0
    if args.out is None:
        args.out = (here.parent / "audio_samples" if args.what in ("samples", "verify")
                    else here / "data" / "families" if fam else here / "data")
    out: Path = args.out
    if args.what == "verify":
        return 0 if verify(out) else 1

    _check_renderer(args.sf2)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/render.py " + " ".join(
        [f"--what {args.what}", f"--seed {args.seed}"]
        + ([f"--n {args.n}", f"--tasks {args.tasks}"] if args.what == "bench" else [])
        + ([f"--n {args.n}", f"--families {args.families}", f"--seconds {args.seconds:g}",
            f"--train-seconds {args.train_seconds:g}"] if fam else [])
    )
    if fam:
        return _render_families(args, out, cmd)

    tasks: list[str] = []
    if args.what == "samples":
        print(f"rendering samples to {out}")
        clips = run_jobs(sample_jobs(args.seed), out, args.sf2, args.jobs)
        if not args.no_speech:
            if Path(SPEECH_DIR, SPEECH_TEST + ".wav").exists():
                clips += speech_job(out, args.sf2, args.seed)
            else:
                print("  (no speech: apt-get install -y pocketsphinx-testdata)")
    else:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        unknown = set(tasks) - set(BENCH_TASKS)
        if unknown:
            sys.exit(f"unknown tasks {sorted(unknown)}; choose from {list(BENCH_TASKS)}")
        print(f"rendering benchmark set ({args.n} seeds, tasks {tasks}) to {out}")
        clips = run_jobs(
            bench_jobs(args.seed, args.n, tasks, args.seconds, args.train_seconds, args.sr),
            out,
            args.sf2,
            args.jobs,
        )

    # point every mixture at the (disjoint) training clips of its instruments
    train_files = {c["file"] for c in clips if c["kind"] == "train"}
    for c in clips:
        if c["kind"] == "mixture":
            pattern = "train/{k}.flac" if args.what == "samples" else "train/seed%03d/{k}.flac"
            pattern = pattern if args.what == "samples" else pattern % c["seed"]
            c["train"] = {
                k: pattern.format(k=k)
                for k in c["instruments"]
                if pattern.format(k=k) in train_files
            }

    manifest = {
        "generator": "benchmarks/render.py",
        "command": cmd,
        "soundfont": os.path.basename(args.sf2),
        "soundfont_license": "MIT (FluidR3_GM by Frank Wen, Debian package fluid-soundfont-gm)",
        "fluidsynth": fluidsynth_version(),
        "render": " ".join(fluidsynth_cmd("SF2", 0, Path("in.mid"), Path("out.wav"))).replace(
            " -r 0", " -r SR"
        ),
        "format": "FLAC PCM_16; mix = sum(stems) exactly (integer sum of the 16-bit stems)",
        "seed": args.seed,
        "instruments": {
            k: {"program": (None if v.channel == 9 else v.program), "channel": v.channel + 1}
            for k, v in INSTRUMENTS.items()
        },
        "tasks": (
            {t: BENCH_TASKS[t] for t in tasks}
            if args.what == "bench"
            else sorted({c["task"] for c in clips if c["kind"] == "mixture"})
        ),
        "clips": clips,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0 if verify(out) else 1


if __name__ == "__main__":
    sys.exit(main())
