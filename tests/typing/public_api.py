"""User code on nmfsep's public API, type-checked by tests/test_typing.py (never run)."""

from __future__ import annotations

import numpy as np

import nmfsep
from nmfsep import (
    BetaNMF,
    ConvergenceWarning,
    Dictionary,
    NMFResult,
    SeparationResult,
    learn_dictionary,
    nmf,
    separate,
)
from nmfsep.batch import BatchResult, separate_batch
from nmfsep.evaluate import evaluate_separation, si_sdr
from nmfsep.files import separate_file
from nmfsep.io import AudioFormat, audio_format, load, output_names, save
from nmfsep.stream import separate_stream

y, sr = load("mix.wav")
n: int = sr
result: SeparationResult = separate(y, sr, n_components=8)
stem: np.ndarray = result.stems["component_01"]
piano: Dictionary = learn_dictionary([load("piano.wav")], "piano", 48)
result = separate(y, sr, dictionaries=[piano, "flute.npz"], n_free=4)
V = np.abs(np.random.default_rng(0).standard_normal((100, 20)))
res: NMFResult = nmf(V, 4, beta="itakura-saito", solver="amu")
W: np.ndarray = res.W
model = BetaNMF(n_components=4, beta_loss="kullback-leibler").fit(V)
H: np.ndarray = model.components_
sup = BetaNMF.from_dictionary(piano, max_iter=50)
acts = sup.transform(V)
names = model.get_feature_names_out()
model.set_output(transform="default")
summary: dict = separate_file("mix.wav", "out", dictionaries=[piano], format="flac",
                              subtype="pcm16")
streamed: dict = separate_stream("mix.wav", "out", dictionaries=[piano], subtype="pcm24")
batch: BatchResult = separate_batch(["songs"], "out", dictionaries=[piano], format="wav")
fmt: AudioFormat = audio_format("flac")
folders: list[str] = output_names(["a/mix.wav", "b/mix.wav"])
save("x.wav", y, sr, force=True)
score: float = si_sdr(y[0], y[0])
scores = evaluate_separation({"piano": y}, result.stems, sr=sr, mixture=y)
warning_class: type[Warning] = ConvergenceWarning
version: str = nmfsep.__version__
