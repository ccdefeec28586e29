"""Build nmfsep's built-in dictionaries (``nmfsep/dictionaries/*.npz``) from installable sounds.

Every built-in source (:data:`SOURCES`: drums, bass, piano, guitar, strings, brass, winds,
speech) is learned with :func:`nmfsep.dictionary.learn_dictionary` from training clips
rendered here with ``benchmarks/render.py``'s FluidSynth renderer: per SoundFont of
:data:`FONTS` and per voice (GM program and register) of the source, one clip that
starts with a chromatic sweep over the voice's whole register at three dynamics (p, mf,
f; render.py's ``compose_sweep``) and continues with a short musical part (render.py's
composers, its own seed). Drums: every kit piece at three velocities, then a groove.
Speech: four LibriVox utterances of Debian's pocketsphinx-testdata (public domain), not
the one ``render.py`` uses as test speech.

The shipped dictionaries are built from the **permissively licensed** fonts only
(:data:`SHIPPED_FONTS`: FluidR3 GM (MIT), MuseScore General Lite (MIT / PD / CC0) and
csound's sf_GMbank (public domain)), so TimGM6mb (GPL-2) and the AVL drum kits
(CC-BY-SA-3.0) never enter the package -- and the held-out families of
``benchmarks/bench_builtin.py`` (timgm6mb, avl) are sound families the shipped
dictionaries were not built from. Each file records in its metadata (``provenance``)
the fonts, their Debian packages and licences, the programs and registers, the
renderer, and this script's version; the same record goes to ``SOURCES.json``.

Settings: nmfsep's defaults (48 atoms, context 3, KL, the learning STFT at 22.05 kHz,
harmonic atoms "auto") except ``pitch_shifts=()``: the clips sweep every note of each
register, where the default augmentation costs 0.4-3.6 dB (README,
``bench_augmentation.py``). Harmonic atoms (script version 2; version 1 had
``harmonic="off"``): on held-out duos and trios, one pass, +0.25 to +2.60 dB on OPL3,
MuseScore and (trio) FluidR3, -0.98 dB on FluidR3's duo, a tie on TimGM6mb (+0.53 /
-0.54); chosen on the median of the cells of the families independent of the held-out
one, they win for every held-out family (README); the pitched files grow 1.4-1.8x.
Drums and speech get none (no pitch). ``relearn="auto"`` runs no second pass with
built-ins (``nmfsep.relearn.should_relearn``). Atom values
100 dB under their atom's peak are set to zero and the rest rounded to 11 significant
bits (float16's precision, float32's range; :func:`compact_atoms`), and the files are
written compressed: they stay float32 as the file contract says, at about a quarter of
the size.

Requirements (build time only)::

    apt-get install -y fluidsynth fluid-soundfont-gm musescore-general-soundfont-small \
        csound-soundfont pocketsphinx-testdata    # + timgm6mb-soundfont avldrums.lv2-soundfont
    pip install mido                              # for bench_builtin.py's held-out builds

Usage::

    python benchmarks/build_builtins.py                        # -> nmfsep/dictionaries/
    python benchmarks/build_builtins.py --sources drums,bass --out /tmp/d
    python benchmarks/build_builtins.py --fonts timgm6mb,gmbank --out /tmp/lofo
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import render  # noqa: E402  (benchmarks/render.py: composers and the FluidSynth renderer)

from nmfsep.dictionary import Dictionary, learn_dictionary  # noqa: E402

#: Bumped whenever the recipe (fonts, voices, clip lengths, learning settings) changes.
SCRIPT_VERSION = 2
SR = 22050
MUSIC_S = 6.0  # musical part of every clip, after the register sweep
SEED = 7000  # songs of the training clips (render.py's sets use seeds < 1000 and + 100000)
OUT = HERE.parent / "nmfsep" / "dictionaries"
CACHE = HERE / "results" / "builtin_clips"
SF2, SF3 = "/usr/share/sounds/sf2", "/usr/share/sounds/sf3"


@dataclass(frozen=True)
class Font:
    """A sample source: a SoundFont file, its Debian package, licence and sample lineage."""

    path: str
    package: str
    licence: str
    lineage: str
    drums_only: bool = False
    kit: tuple[int, int] | None = None  # drums: (channel 0-based, program) if not GM ch. 10


FONTS: dict[str, Font] = {
    "fluidr3": Font(f"{SF2}/FluidR3_GM.sf2", "fluid-soundfont-gm", "MIT", "fluid"),
    "musescore": Font(f"{SF3}/MuseScore_General_Lite.sf3", "musescore-general-soundfont-small",
                      "MIT (FluidR3 Mono parts), piano and drumline PD/CC0", "fluid"),
    "gmbank": Font(f"{SF2}/sf_GMbank.sf2", "csound-soundfont", "public domain", "gmbank"),
    "timgm6mb": Font(f"{SF2}/TimGM6mb.sf2", "timgm6mb-soundfont", "GPL-2", "timgm"),
    "avl_redzep": Font(f"{SF2}/Red_Zeppelin_4_LV2.sf2", "avldrums.lv2-soundfont",
                       "CC-BY-SA-3.0", "avl", drums_only=True, kit=(0, 0)),
    "avl_pearl": Font(f"{SF2}/Black_Pearl_4_LV2.sf2", "avldrums.lv2-soundfont",
                      "CC-BY-SA-3.0", "avl", drums_only=True, kit=(0, 0)),
}
#: Fonts the package's dictionaries are built from (permissive licences only).
SHIPPED_FONTS = ("fluidr3", "musescore", "gmbank")


@dataclass(frozen=True)
class Voice:
    """One instrument of a source: GM program (None: drum kit), register, composer role."""

    label: str
    program: int | None
    low: int
    high: int
    role: str  # render.py composer: "melody" | "accomp" | "bass" | "drums"

    def instrument(self) -> render.Instrument:
        if self.program is None:
            return render.Instrument(self.label, 0, 35, 81, "drums", channel=9)
        return render.Instrument(self.label, self.program, self.low, self.high, self.role)


SOURCES: dict[str, tuple[Voice, ...]] = {
    "drums": (Voice("standard_kit", None, 35, 81, "drums"),),
    "bass": (Voice("acoustic_bass", 32, 28, 55, "bass"),
             Voice("electric_bass_finger", 33, 28, 55, "bass"),
             Voice("electric_bass_pick", 34, 28, 55, "bass")),
    "piano": (Voice("acoustic_grand", 0, 28, 100, "accomp"),
              Voice("bright_acoustic", 1, 36, 96, "accomp"),
              Voice("electric_piano", 4, 36, 96, "accomp")),
    "guitar": (Voice("nylon_guitar", 24, 40, 84, "accomp"),
               Voice("steel_guitar", 25, 40, 84, "accomp"),
               Voice("clean_electric_guitar", 27, 40, 86, "melody")),
    "strings": (Voice("violin", 40, 55, 100, "melody"),
                Voice("cello", 42, 36, 76, "melody"),
                Voice("string_ensemble", 48, 36, 96, "accomp")),
    "brass": (Voice("trumpet", 56, 54, 86, "melody"),
              Voice("trombone", 57, 40, 72, "melody"),
              Voice("french_horn", 60, 41, 77, "melody")),
    "winds": (Voice("flute", 73, 60, 98, "melody"),
              Voice("clarinet", 71, 50, 91, "melody"),
              Voice("alto_sax", 65, 49, 81, "melody"),
              Voice("oboe", 68, 58, 91, "melody")),
    "speech": (),
}
DESCRIPTIONS = {
    "drums": "acoustic drum kits (GM channel 10)",
    "bass": "acoustic and electric bass",
    "piano": "piano and electric piano (keys)",
    "guitar": "nylon, steel and clean electric guitar",
    "strings": "violin, cello and string ensemble",
    "brass": "trumpet, trombone and French horn",
    "winds": "flute, clarinet, alto sax and oboe",
    "speech": "read English speech (one LibriVox reader)",
}
SPEECH = {"package": "pocketsphinx-testdata",
          "licence": "public domain recording (LibriVox), package BSD-2",
          "files": list(render.SPEECH_TRAIN), "folder": render.SPEECH_DIR}


# ------------------------------------------------------------------------ clips


def voice_part(voice: Voice, font: str) -> tuple[render.Part, render.Song, float]:
    """A register sweep then a musical part of ``MUSIC_S`` s, re-addressed to ``font``."""
    inst = voice.instrument()
    song = render.make_song(render.rng_for(SEED, voice.label, "song"))
    sweep = render.compose_sweep(inst)
    bps = song.bpm / 60.0
    offset_s = math.ceil((sweep.seconds + render.SWEEP_GAP_S) * 2 - 1e-9) / 2
    n_bars = math.ceil((MUSIC_S - 0.6) * bps / song.beats_per_bar)
    music = render.COMPOSERS[inst.role](song, inst, n_bars, render.rng_for(SEED, voice.label))
    end = (MUSIC_S - 0.6) * bps
    notes = [render.Note(t * bps, d * bps, p, v) for t, d, p, v in sweep.notes]
    notes += [render.Note(n.start + offset_s * bps, min(n.dur, end - n.start), n.pitch, n.vel)
              for n in music.notes if n.start < end - 0.05]
    kit = FONTS[font].kit
    if voice.program is None and kit is not None:
        inst = replace(inst, channel=kit[0], program=kit[1])
    return render.Part(inst, notes), song, offset_s + MUSIC_S


def render_clip(voice: Voice, font: str, cache: Path = CACHE) -> tuple[np.ndarray, float]:
    """Mono float32 clip ``(1, n_samples)`` of ``voice`` from ``font`` (cached as FLAC)."""
    import soundfile as sf

    f = cache / f"v{SCRIPT_VERSION}" / font / f"{voice.label}.flac"
    if f.exists():
        y, _ = sf.read(str(f), dtype="float32", always_2d=True)
        return y.T, float(y.shape[0] / SR)
    part, song, seconds = voice_part(voice, font)
    with tempfile.TemporaryDirectory(prefix="nmfsep-builtin-") as td:
        x = render.render_part(part, song, seconds, SR, FONTS[font].path, Path(td), "clip")
    y = render.fade_out(x.mean(axis=1, keepdims=True), SR)
    peak = float(np.max(np.abs(y)))
    if peak < 1e-3:
        raise RuntimeError(f"{font} renders {voice.label} (program {voice.program}) silent")
    y = np.round(y * (render.PEAK / peak) * render.FULL) / render.FULL  # 16-bit, as stored
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".{os.getpid()}.tmp.flac")
    sf.write(str(tmp), y, SR, subtype="PCM_16", format="FLAC")
    tmp.replace(f)
    return y.T.astype(np.float32), float(y.shape[0] / SR)


def speech_clips() -> list[tuple[np.ndarray, str]]:
    """The LibriVox training utterances at :data:`SR` (the test utterance is left out)."""
    return [(render.load_speech(name, SR)[None].astype(np.float32), name)
            for name in render.SPEECH_TRAIN]


def used_fonts(name: str, fonts: tuple[str, ...]) -> tuple[str, ...]:
    """The fonts of ``fonts`` that give source ``name`` (drum kits only give drums)."""
    if name == "speech":
        return ()
    return tuple(f for f in fonts if name == "drums" or not FONTS[f].drums_only)


def font_records(name: str, fonts: tuple[str, ...]) -> list[dict]:
    """Provenance records of source ``name``: one per font (speech: the recordings)."""
    if name == "speech":
        return [dict(SPEECH)]
    records = []
    for font in used_fonts(name, fonts):
        f = FONTS[font]
        records.append({"font": os.path.basename(f.path), "package": f.package,
                        "licence": f.licence, "lineage": f.lineage,
                        "programs": {v.label: v.program for v in SOURCES[name]},
                        "registers": {v.label: [v.low, v.high] for v in SOURCES[name]
                                      if v.program is not None}})
    return records


def clip_names(name: str, fonts: tuple[str, ...]) -> list[str]:
    """Names of the training clips of source ``name``, in learning order."""
    if name == "speech":
        return list(render.SPEECH_TRAIN)
    return [f"{font}/{v.label}" for font in used_fonts(name, fonts) for v in SOURCES[name]]


def source_clips(name: str, fonts: tuple[str, ...]) -> list[tuple[np.ndarray, int]]:
    """Every training clip of source ``name`` as ``(y (1, n_samples), SR)``."""
    if name == "speech":
        return [(y, SR) for y, _ in speech_clips()]
    return [(render_clip(v, font)[0], SR) for font in used_fonts(name, fonts)
            for v in SOURCES[name]]


# ------------------------------------------------------------------------ learning


#: Atom values this far below their atom's peak (-100 dB) are stored as zero.
FLOOR = 1e-5


def compact_atoms(atoms: np.ndarray) -> np.ndarray:
    """Atoms that compress well: values under ``FLOOR`` x their atom's peak set to zero,
    the rest rounded to 11 significant bits (float16's precision, float32's range).

    The relative change of any value kept is at most 2**-11, the L1 mass dropped per
    unit-norm atom under 0.01 and the norm change under 1e-3 (checked on load), so the
    file stays a float32 dictionary of the contract at about a quarter of its size.
    """
    a = np.array(atoms, dtype=np.float32)
    a[a < FLOOR * a.max(axis=1, keepdims=True)] = 0
    bits = a.view(np.uint32)
    rounded = (bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)
    return rounded.view(np.float32)


def provenance(name: str, fonts: tuple[str, ...]) -> dict:
    """The ``provenance`` metadata of built-in ``name`` (deterministic: no dates, no paths)."""
    records = font_records(name, fonts)
    licences = sorted({r["licence"] for r in records})
    return {
        "builtin": name,
        "description": DESCRIPTIONS[name],
        "licence": "; ".join(licences),
        "sources": records,
        "fonts": list(used_fonts(name, fonts)),
        "renderer": "fluidsynth " + " ".join(render.fluidsynth_cmd("SF2", SR, Path("in.mid"),
                                                                 Path("out.wav"))[1:-3]),
        "script": "benchmarks/build_builtins.py",
        "script_version": SCRIPT_VERSION,
        "clip": {"sweep": "chromatic, velocities 55/85/115", "music_s": MUSIC_S,
                 "seed": SEED, "sr": SR, "channels": "mono (mean of the stereo render)"},
    }


def build(name: str, fonts: tuple[str, ...], **learn_kw) -> Dictionary:
    """Learn built-in ``name`` from ``fonts`` and return it with its provenance."""
    kw = {"pitch_shifts": (), "harmonic": "auto", **learn_kw}  # the shipped files' recipe
    d = learn_dictionary(source_clips(name, fonts), name, sr=SR,
                         clip_names=clip_names(name, fonts), **kw)
    return Dictionary(
        atoms=compact_atoms(d.atoms), labels=d.labels, sr=d.sr, stft=d.stft, power=d.power,
        beta=d.beta, normalization=d.normalization, clips=d.clips,
        nmfsep_version=d.nmfsep_version, training=d.training, context_frames=d.context_frames,
        provenance=provenance(name, fonts),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--fonts", default=",".join(SHIPPED_FONTS))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    names = [s for s in args.sources.split(",") if s]
    fonts = tuple(f for f in args.fonts.split(",") if f)
    unknown = (set(names) - set(SOURCES)) | (set(fonts) - set(FONTS))
    if unknown:
        sys.exit(f"unknown sources or fonts {sorted(unknown)}; "
                 f"choose from {list(SOURCES)} and {list(FONTS)}")
    missing = [FONTS[f].path for f in fonts if not Path(FONTS[f].path).exists()]
    if missing:
        sys.exit(f"SoundFonts not found: {missing}; install the packages in FONTS")
    table = {}
    for name in names:
        t0 = time.perf_counter()
        d = build(name, fonts)
        path = d.save(args.out / f"{name}.npz", force=True, compress=True)
        table[name] = d.provenance
        print(f"{name:8s} {d.n_atoms} atoms from {len(d.clips)} clips "
              f"({sum(c['duration'] for c in d.clips):.0f} s) {path.stat().st_size / 1e6:.2f} MB "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    if set(names) == set(SOURCES):
        (args.out / "SOURCES.json").write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
