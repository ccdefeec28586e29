"""Audio files: reading, resampling, atomic writing, and names that become file names.

The only module of nmfsep that touches audio files. Audio arrays are
``(n_channels, n_samples)`` float32, channels first; soundfile's
``(frames, channels)`` layout is converted here, once.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep._checks import MAX_CHANNELS, check_choice, peak_problem
from nmfsep._checks import check_rate as _check_rate
from nmfsep.exceptions import AudioFormatError, OutputError, ParameterError
from nmfsep.spectral import FrameGrid

__all__ = [
    "load",
    "resample",
    "save",
    "WavWriter",
    "atomic_output",
    "check_name",
    "check_input_file",
    "folder_name",
    "audio_info",
    "libsndfile_version",
    "OutputFiles",
    "output_files",
    "REPORT_NAME",
    "MIXTURE_NAME",
    "BlockReader",
    "open_blocks",
    "read_blocks",
    "OutputTransaction",
    "discard_interrupted",
    "check_not_input",
    "write_problem",
    "AudioFormat",
    "audio_format",
    "check_format_fits",
    "FORMATS",
    "FORMAT_LIMITS",
    "SUBTYPES",
    "output_names",
]

_MAX_NAME_LENGTH = 100
MAX_FOLDER_LENGTH = 255  # an output folder named after a mixture: as long as a file name
_FULL_BYTES = 64 * 1024  # less free space than this after a failed write: the disk is full


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` names a readable, non-empty regular file; return it.

    Raises
    ------
    AudioFormatError
        One line saying what is wrong (not found, a folder, unreadable, empty).
    """
    p = Path(path)
    if not p.exists():
        raise AudioFormatError(f"{p}: file not found; check the path")
    if p.is_dir():
        raise AudioFormatError(f"{p}: is a folder, not an audio file; give the path of a file")
    if not p.is_file():
        raise AudioFormatError(f"{p}: is not a regular file; give the path of an audio file")
    if not os.access(p, os.R_OK):
        raise AudioFormatError(f"{p}: permission denied; make the file readable")
    if p.stat().st_size == 0:
        raise AudioFormatError(f"{p}: file is empty (0 bytes); give a file that holds audio")
    return p


#: What libsndfile says of data it cannot make sense of (random bytes, a damaged MP3)
#: once it has opened the file: untrue here, as :func:`check_input_file` has found a
#: regular, readable file.
_NOT_A_REGULAR_FILE = "does not exist or is not a regular file"


def _decode_error(p: Path, exc: Exception) -> AudioFormatError:
    """Return the one-line error for a file (checked by :func:`check_input_file`) not decoded."""
    import soundfile as sf

    detail = exc.error_string if isinstance(exc, sf.LibsndfileError) else str(exc)
    detail = detail.strip().rstrip(".") or type(exc).__name__
    if _NOT_A_REGULAR_FILE in detail.lower():
        detail = "unrecognised or damaged audio data"
    return AudioFormatError(
        f"{p}: cannot be read as audio ({detail}); convert it to WAV or FLAC "
        "(e.g. with ffmpeg -i IN OUT.wav)"
    )


def load(path: str | os.PathLike[str], *, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32, channels first.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile reads (WAV, FLAC, OGG/Vorbis, AIFF, MP3 with
        libsndfile >= 1.1, ...). Headerless RAW files are refused.
    sr : int or None
        Target sample rate in Hz; ``None`` keeps the file's own rate. Otherwise the
        audio is resampled with soxr (HQ) when the rates differ.

    Returns
    -------
    y : np.ndarray [shape=(n_channels, n_samples)], float32, finite
        Integer formats are scaled to ``[-1, 1)``; float files are read as stored
        (values beyond ±1 are kept).
    sr : int
        Sample rate of ``y`` in Hz.

    Raises
    ------
    AudioFormatError
        One line naming the path and the fix, when the file is missing, a folder,
        unreadable, empty, not decodable, holds no samples, or holds NaN/Inf.
    ParameterError
        If ``sr`` is not a positive whole number.

    Notes
    -----
    libsndfile reads a WAV whose data chunk is cut short as a shorter file
    (the frames actually present); only a file cut inside its header fails.

    See Also
    --------
    audio_info : the header only.
    resample : the resampler used for ``sr``.
    """
    if sr is not None:
        sr = _check_rate(sr, "sr")
    p = check_input_file(path)
    import soundfile as sf

    try:
        data, native_sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.SoundFileError, TypeError, ValueError) as exc:
        raise _decode_error(p, exc) from exc
    except MemoryError as exc:
        raise AudioFormatError(f"{p}: too large to load into memory; cut it shorter") from exc
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioFormatError(
            f"{p}: contains no audio samples; give a file with at least one sample"
        )
    _check_channels(p, data.shape[1])
    if not np.isfinite(data).all():
        raise AudioFormatError(
            f"{p}: contains NaN or Inf samples; re-export it as PCM or clean float audio"
        )
    if (problem := peak_problem(data)) is not None:
        raise AudioFormatError(f"{p}: {problem}; re-export it as PCM or clean float audio")
    y = np.ascontiguousarray(data.T)
    native_sr = int(native_sr)
    if sr is not None and sr != native_sr:
        return resample(y, native_sr, sr), sr
    return y, native_sr


def _check_channels(p: Path, n_channels: int) -> None:
    """Refuse a file of more channels than nmfsep takes (:data:`MAX_CHANNELS`)."""
    if n_channels > MAX_CHANNELS:
        raise AudioFormatError(
            f"{p}: has {n_channels} channels, more than the {MAX_CHANNELS} nmfsep takes; "
            "mix it down first (e.g. ffmpeg -i IN -ac 2 OUT.wav)"
        )


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Change the sample rate of every channel with soxr (HQ).

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)], float32 or float64, finite
        Audio, channels first.
    sr_in : int
        Sample rate of ``y`` in Hz.
    sr_out : int
        Wanted sample rate in Hz.

    Returns
    -------
    y_out : np.ndarray [shape=(n_channels, n_samples_out)], same float dtype
        ``n_samples_out ≈ n_samples * sr_out / sr_in`` (soxr rounds). A copy of
        ``y`` when the rates are equal.

    Raises
    ------
    ParameterError
        If ``y`` is not 2-D real floating or the rates are not positive whole numbers.
    """
    sr_in = _check_rate(sr_in, "sr_in")
    sr_out = _check_rate(sr_out, "sr_out")
    if not isinstance(y, np.ndarray) or y.ndim != 2:
        raise ParameterError(
            f"y must have shape (n_channels, n_samples), got {getattr(y, 'shape', type(y))}"
        )
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"y must be float32 or float64, got dtype {y.dtype}")
    dtype = y.dtype if y.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    if sr_in == sr_out:
        return y.astype(dtype, copy=True)
    if y.shape[1] == 0:
        return np.zeros((y.shape[0], 0), dtype=dtype)
    import soxr

    frames = np.ascontiguousarray(y.T, dtype=dtype)  # soxr wants (frames, channels)
    out = soxr.resample(frames, sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(np.asarray(out).T, dtype=dtype)


def save(
    path: str | os.PathLike[str],
    y: np.ndarray,
    sr: int,
    *,
    force: bool = False,
) -> Path:
    """Write audio as a 32-bit float WAV, atomically.

    The audio is written to a hidden temporary file in the target folder, then
    renamed over ``path`` (:func:`os.replace`), so ``path`` is never left
    half-written; on any failure the temporary file is removed. Float WAV is never
    clipped: values beyond ±1 are stored as they are.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; missing parent folders are created.
    y : np.ndarray [shape=(n_channels, n_samples)], real floating, finite
        Audio, channels first (at least one channel).
    sr : int
        Sample rate in Hz.
    force : bool
        Overwrite ``path`` if it exists.

    Returns
    -------
    path : pathlib.Path
        The path written.

    Raises
    ------
    OutputError
        If ``path`` exists and ``force`` is False, is a folder, or cannot be written
        (the message says what to do).
    ParameterError
        If ``y`` or ``sr`` is invalid.
    """
    sr = _check_rate(sr, "sr")
    if not isinstance(y, np.ndarray) or y.ndim != 2 or y.shape[0] < 1:
        raise ParameterError(
            "y must have shape (n_channels, n_samples) with n_channels >= 1, got "
            f"{getattr(y, 'shape', type(y))}"
        )
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"y must be a float array, got dtype {y.dtype}")
    if not np.isfinite(y).all():
        raise ParameterError("y contains NaN or Inf samples; they cannot be written")
    import soundfile as sf

    with atomic_output(
        path, force=force, example="out.wav", errors=(OSError, RuntimeError, sf.SoundFileError)
    ) as tmp:
        frames = np.ascontiguousarray(y.T, dtype=np.float32)  # soundfile wants (frames, channels)
        sf.write(str(tmp), frames, sr, subtype="FLOAT", format="WAV")
    return Path(path)


#: Largest RIFF WAV in bytes (header included); larger float WAVs are written as RF64.
_WAV_LIMIT = 2**32 - 1024


class WavWriter:
    """Float WAV written a block of samples at a time, for audio computed in blocks.

    Not atomic by itself: give it a temporary name and rename the file once it is
    closed (as :func:`nmfsep.separate.separate_file` does), or remove it on failure.
    Use it as a context manager, or call :meth:`close`.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create (overwritten if it exists).
    sr : int
        Sample rate in Hz.
    n_channels : int
        Number of channels, >= 1.
    n_samples : int
        Samples per channel that will be written, >= 0: beyond 4 GiB the file is RF64
        (a WAV whose sizes are 64-bit), which libsndfile and most tools read.

    Raises
    ------
    OutputError
        If the file cannot be created or written (the message names the file and
        says what to check).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.wav"
    >>> with WavWriter(path, 8000, 2, 300) as w:
    ...     w.write(np.zeros((2, 100), np.float32))
    ...     w.write(np.ones((2, 200), np.float32))
    >>> load(path)[0].shape
    (2, 300)
    """

    def __init__(
        self, path: str | os.PathLike[str], sr: int, n_channels: int, n_samples: int,
        *, label: str | os.PathLike[str] | None = None,
    ) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.label = Path(label) if label is not None else self.path
        sr = _check_rate(sr, "sr")
        self.n_channels = int(n_channels)
        fmt = "WAV" if 4 * self.n_channels * int(n_samples) + 1024 < _WAV_LIMIT else "RF64"
        with self._errors():
            self._file = sf.SoundFile(
                str(self.path), "w", samplerate=sr, channels=int(n_channels),
                subtype="FLOAT", format=fmt,
            )

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import soundfile as sf

        try:
            yield
        except (OSError, RuntimeError, sf.SoundFileError) as exc:
            raise OutputError(
                f"{self.label}: cannot be written {write_problem(exc, self.path.parent)}"
            ) from exc

    def write(self, y: np.ndarray) -> None:
        """Append samples.

        Parameters
        ----------
        y : np.ndarray [shape=(n_channels, n)], real floating
            The next ``n`` samples of every channel (``y.T`` C-contiguous float32, as
            a WAV file interleaves the channels, is written without a copy).

        Raises
        ------
        ParameterError
            If ``y`` does not have ``n_channels`` rows.
        OutputError
            If writing fails (disk full ...).
        """
        if not isinstance(y, np.ndarray) or y.ndim != 2 or y.shape[0] != self.n_channels:
            raise ParameterError(
                f"{self.path}: blocks must have shape ({self.n_channels}, n), got "
                f"{getattr(y, 'shape', type(y))}"
            )
        frames = np.ascontiguousarray(y.T, dtype=np.float32)  # soundfile: (frames, channels)
        with self._errors():
            self._file.write(frames)

    def close(self) -> None:
        """Finish the file (writes the header's sizes); closing twice does nothing."""
        with self._errors():
            self._file.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Stem file formats (``--format``) and sample types (``--subtype``), as libsndfile names them.
FORMATS = ("wav", "flac")
SUBTYPES = {"float": "FLOAT", "pcm24": "PCM_24", "pcm16": "PCM_16"}
#: Most channels and highest rate (Hz) a stem file of each format holds, as libsndfile
#: writes it: FLAC's own limits (libsndfile refuses 9 channels with "Format not
#: recognised" and 655351 Hz). WAV holds libsndfile's 1024 channels, the most it
#: reads too, and any rate a mixture has.
FORMAT_LIMITS = {"flac": (8, 655_350)}


@dataclass(frozen=True)
class AudioFormat:
    """How stems are stored: a container and a sample type (see :func:`audio_format`).

    Attributes
    ----------
    format : {"wav", "flac"}
        The container; also the file extension.
    subtype : {"float", "pcm24", "pcm16"}
        32-bit float (never clips) or 24/16-bit integers (full scale is ±1).
    """

    format: str = "wav"
    subtype: str = "float"

    @property
    def ext(self) -> str:
        """The file extension, without the dot."""
        return self.format

    @property
    def is_float(self) -> bool:
        """Whether samples are stored as float (written as computed, no conversion)."""
        return self.subtype == "float"


def audio_format(format: str = "wav", subtype: str | None = None) -> AudioFormat:
    """Check a stem format and sample type; None picks float for WAV, pcm24 for FLAC.

    Parameters
    ----------
    format : {"wav", "flac"}
    subtype : {"float", "pcm24", "pcm16"} or None

    Returns
    -------
    AudioFormat

    Raises
    ------
    ParameterError
        For an unknown format or subtype, or FLAC with float samples.

    Examples
    --------
    >>> audio_format("flac")
    AudioFormat(format='flac', subtype='pcm24')
    """
    check_choice(format, "format", FORMATS)
    if subtype is None:
        subtype = "float" if format == "wav" else "pcm24"
    check_choice(subtype, "subtype", tuple(SUBTYPES))
    if format == "flac" and subtype == "float":
        raise ParameterError(
            "format='flac' stores integer samples only; use subtype='pcm24' or 'pcm16', "
            "or format='wav' for float"
        )
    return AudioFormat(format, subtype)


def check_format_fits(fmt: AudioFormat, n_channels: int, sr: int,
                      source: str | os.PathLike[str]) -> None:
    """Refuse stems in ``fmt`` for a mixture the format cannot hold (before any work).

    Parameters
    ----------
    fmt : AudioFormat
        The stems' format (:func:`audio_format`).
    n_channels : int
        Channels of the mixture, hence of every stem.
    sr : int
        Sample rate of the mixture (and of the stems), Hz.
    source : str or os.PathLike
        The mixture, named by the message.

    Raises
    ------
    ParameterError
        When the mixture has more channels or a higher rate than
        :data:`FORMAT_LIMITS` allows ``fmt.format``; the message says to use WAV.
    """
    limits = FORMAT_LIMITS.get(fmt.format)
    if limits is None:
        return
    max_channels, max_rate = limits
    name = fmt.format.upper()
    if n_channels > max_channels:
        raise ParameterError(
            f"{source}: {name} holds at most {max_channels} channels, the mixture has "
            f"{n_channels}; use format='wav'"
        )
    if sr > max_rate:
        raise ParameterError(
            f"{source}: {name} holds at most {max_rate} Hz, the mixture is at {sr} Hz; "
            "use format='wav'"
        )


class _PeakWavWriter(WavWriter):
    """A float WAV writer that remembers the largest absolute sample written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.peak = 0.0

    def write(self, y: np.ndarray) -> None:
        if y.size:
            self.peak = max(self.peak, float(np.max(np.abs(y))))
        super().write(y)


def _convert(src: Path, dst: Path, fmt: AudioFormat, gain: float) -> None:
    """Copy the float WAV ``src`` to ``dst`` in ``fmt``, times ``gain``, block by block.

    Samples are clipped to ±1 only after ``gain`` brought the peak to 1 (a rounding
    guard, the clipping guard is the gain).
    """
    import soundfile as sf

    try:
        with sf.SoundFile(str(src)) as fin, sf.SoundFile(
            str(dst), "w", samplerate=fin.samplerate, channels=fin.channels,
            subtype=SUBTYPES[fmt.subtype], format=fmt.format.upper(),
        ) as fout:
            for block in fin.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                if gain != 1.0:
                    block = block * np.float32(gain)
                fout.write(np.clip(block, -1.0, 1.0))
    except (RuntimeError, sf.SoundFileError) as exc:  # OSError: the transaction's message
        raise OutputError(
            f"{dst.parent}: cannot write {fmt.format.upper()} {fmt.subtype} stems ({exc}); "
            "check disk space, or use format='wav'"
        ) from exc


_OUTPUT_HINT = "choose another output folder with -o"


def write_problem(exc: BaseException, folder: Path, hint: str = _OUTPUT_HINT) -> str:
    """Say why writing into ``folder`` failed: a full disk by name, else the error.

    libsndfile reports a full disk as "System error."; the free space of ``folder``
    tells it apart.

    Returns
    -------
    str
        ``"(no space left on <folder>); free disk space or <hint>"`` or
        ``"(<exc>); check free disk space and permissions or <hint>"``.
    """
    full = getattr(exc, "errno", None) == errno.ENOSPC
    if not full:
        try:
            full = shutil.disk_usage(folder).free < _FULL_BYTES
        except OSError:
            full = False
    if full:
        return f"(no space left on {folder}); free disk space or {hint}"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"({text}); check free disk space and permissions or {hint}"


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    example: str = "out.wav",
    hint: str = _OUTPUT_HINT,
    errors: tuple[type[BaseException], ...] = (OSError,),
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> Iterator[Path]:
    """Write one file atomically: through a temporary file renamed over the target.

    Checks the target, creates the missing parent folders and an empty hidden
    temporary file ``.<name>.<random>.tmp`` next to ``path``, and yields the
    temporary's path for the caller to write. When the ``with`` block ends
    normally the temporary is renamed over ``path`` (:func:`os.replace`), so
    ``path`` is never left half-written; on any failure (also ``KeyboardInterrupt``)
    the temporary is removed.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    force : bool
        Overwrite ``path`` if it exists.
    example : str
        A file name suggested when ``path`` is a folder, e.g. ``"out.wav"``.
    hint : str
        What the user can do instead, ending the messages of the errors
        (default ``"choose another output folder with -o"``).
    errors : tuple of exception types
        Failures in the ``with`` block (or of the rename) raised as an
        :class:`~nmfsep.exceptions.OutputError` saying the file cannot be written;
        others propagate as they are.
    inputs : sequence of paths
        Files the run reads: ``path`` may not be one of them (:func:`check_not_input`).

    Yields
    ------
    pathlib.Path
        The temporary file, empty, in the folder of ``path``.

    Raises
    ------
    OutputError
        If ``path`` is a folder, exists and ``force`` is False (``"<path>: exists;
        pass force=True to overwrite"``), its folder cannot be created or written, or
        writing fails with one of ``errors``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_output(folder / "notes.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (folder / "notes.txt").read_text()
    'hello'
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a folder; give a file name such as {p / example}")
    check_not_input(p, inputs, hint=hint)
    if p.exists() and not force:
        raise OutputError(f"{p}: exists; pass force=True to overwrite")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{p.parent}: cannot create the output folder ({exc.strerror or exc}); {hint}"
        ) from exc
    tmp = _create_temporary(p, hint=hint)
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, errors) and not isinstance(exc, OutputError):
            raise OutputError(
                f"{p}: cannot be written {write_problem(exc, p.parent, hint)}"
            ) from exc
        raise


def check_not_input(
    target: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    *,
    hint: str = _OUTPUT_HINT,
) -> None:
    """Refuse an output path that is one of the inputs (same file, ``force`` or not).

    Files are compared, not names (:func:`os.path.samefile`): a symbolic or hard link
    to an input, or another spelling of its path, is that input.

    Parameters
    ----------
    target : str or os.PathLike
        A file about to be written.
    inputs : sequence of paths
        The files the run reads; those that do not exist are ignored.
    hint : str
        What the user can do instead, ending the message.

    Raises
    ------
    OutputError
        ``"<target>: is the input <input>; writing it would destroy the input; ..."``.
    """
    t = Path(target)
    if not t.exists():
        return
    for source in inputs:
        try:
            same = os.path.samefile(t, source)
        except (OSError, ValueError):
            continue
        if same:
            where = "" if Path(source) == t else f" {source}"
            raise OutputError(
                f"{t}: is the input{where}; writing it would destroy the input "
                f"(even with force=True); {hint}"
            )


def _create_temporary(p: Path, *, hint: str = _OUTPUT_HINT) -> Path:
    """Create an empty hidden temporary file next to ``p`` and return its path.

    ``os.open`` with mode 0o666 honours the umask, so the renamed output gets the
    usual permissions (``tempfile.mkstemp`` would make it 0o600). ``hint`` ends the
    message of the error raised when the folder is not writable.
    """
    for _ in range(100):
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(
                f"{p.parent}: folder is not writable ({exc.strerror or exc}); "
                f"{hint} or fix its permissions"
            ) from exc
        os.close(fd)
        return tmp
    raise OutputError(f"{p.parent}: cannot create a temporary file; clean up stale .*.tmp files")


def check_name(name: str, max_length: int = _MAX_NAME_LENGTH) -> str:
    r"""Check a name that will become a file name (a source name, a mixture stem).

    Parameters
    ----------
    name : str
        Candidate name, e.g. ``"piano"`` (which becomes ``piano.wav``).
    max_length : int
        Longest name allowed, in characters (100; an output folder named after a
        mixture may have as many as a file name, 255).

    Returns
    -------
    name : str
        The same name, unchanged.

    Raises
    ------
    ParameterError
        If ``name`` is not a string, is empty, longer than ``max_length``,
        ``"."`` or ``".."``, starts with ``"."``, or contains ``/``, ``\`` or a
        control character.

    Examples
    --------
    >>> check_name("piano")
    'piano'
    """
    if not isinstance(name, str):
        raise ParameterError(f"name must be a string, got {type(name).__name__} {name!r}")
    if not name:
        raise ParameterError("name '' is empty; give a non-empty name such as 'piano'")
    problem = None
    if len(name) > max_length:
        raise ParameterError(f"name {name!r} is {len(name)} characters long; use a name of "
                             f"at most {max_length}")
    if "/" in name or "\\" in name:
        problem = "contains a path separator ('/' or '\\')"
    elif name in (".", ".."):
        problem = "is a special folder name"
    elif name.startswith("."):
        problem = "starts with '.' (it would be a hidden file)"
    elif any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in name):
        problem = "contains a control character"
    if problem is not None:
        raise ParameterError(f"name {name!r} {problem}; use letters, digits, '-', '_' or spaces")
    return name


#: File name of the listening report next to the stems.
REPORT_NAME = "report.html"
#: Base name of the copy of the mixture that the report plays (``mixture.wav``, or
#: ``mixture_mix.wav`` ... when a stem is named ``mixture``).
MIXTURE_NAME = "mixture"
#: File name of a saved factorization next to the stems.
MODEL_NAME = "model.npz"


@dataclass(frozen=True)
class OutputFiles:
    """Every file a separation of one mixture writes into its folder.

    Attributes
    ----------
    folder : pathlib.Path
        ``OUT/<mixture name>/``.
    stems : dict[str, pathlib.Path]
        Stem name -> ``folder/<name>.wav``, in stem order.
    model : pathlib.Path or None
        ``folder/model.npz`` when the factorization is saved.
    report : pathlib.Path or None
        ``folder/report.html`` when a report is written.
    mixture : pathlib.Path or None
        The mixture's copy played by the report (with ``report``).
    """

    folder: Path
    stems: dict[str, Path]
    model: Path | None = None
    report: Path | None = None
    mixture: Path | None = None

    def all(self) -> list[Path]:
        """Return every target: the stems, then the model, report and mixture if any."""
        extra = [p for p in (self.model, self.report, self.mixture) if p is not None]
        return [*self.stems.values(), *extra]

    def leftover_warnings(self) -> list[str]:
        """Warn of stems of an earlier run in the folder that this run did not replace.

        Audio files of the formats nmfsep writes, other than this run's targets and
        the report's copies of the mixture (hidden files are not looked at).

        Returns
        -------
        list of str
            One warning naming them, or none.
        """
        mine = set(self.all())
        try:
            names = sorted(
                p.name for p in self.folder.iterdir()
                if p.suffix.lstrip(".") in FORMATS and p not in mine
                and not p.name.startswith((".", MIXTURE_NAME)) and p.is_file())
        except OSError:
            return []
        if not names:
            return []
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return [f"{self.folder} also holds {shown} from an earlier run, which are not stems "
                "of this separation (with them the stems no longer add up to the mixture); "
                "delete them or write to another output folder"]


def output_files(
    folder: str | os.PathLike[str], names: Sequence[str], *, model: bool = False,
    report: bool = False, ext: str = "wav",
) -> OutputFiles:
    """Name every file a separation writes: the one place these names are made.

    Parameters
    ----------
    folder : str or os.PathLike
        The mixture's output folder.
    names : sequence of str
        Stem names (each checked with :func:`check_name`).
    model : bool
        Include the saved model ``model.npz``.
    report : bool
        Include ``report.html`` and the mixture's copy for its player.
    ext : {"wav", "flac"}
        The stems' extension (:attr:`AudioFormat.ext`); the mixture's copy is WAV.

    Returns
    -------
    OutputFiles

    Raises
    ------
    ParameterError
        If a stem name is not a safe file name.

    Examples
    --------
    >>> [p.name for p in output_files("out/mix", ["piano", "mixture"], report=True).all()]
    ['piano.wav', 'mixture.wav', 'report.html', 'mixture_mix.wav']
    """
    f = Path(folder)
    names = [check_name(n) for n in names]
    mix = MIXTURE_NAME
    while mix in names:
        mix += "_mix"
    return OutputFiles(
        folder=f,
        stems={n: f / f"{n}.{check_choice(ext, 'ext', FORMATS)}" for n in names},
        model=f / MODEL_NAME if model else None,
        report=f / REPORT_NAME if report else None,
        mixture=f / f"{mix}.wav" if report else None,
    )


def output_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Name each mixture's output folder under OUT, so that no two inputs share one.

    The rule: a mixture's stems go to ``OUT/<mixture stem>/``. When several inputs
    share a stem (dataset trees such as ``songA/mixture.flac``,
    ``songB/mixture.flac``), each of them goes to ``OUT/<relative path>/``: its path
    relative to the folder the clashing inputs have in common, without the extension
    (``OUT/songA/mixture/``); inputs that still clash (``mix.mp3`` and ``mix.ogg`` in
    one folder) keep their extension (``OUT/mix.mp3/``). Leading dots are dropped
    (:func:`folder_name`) unless another input would then get the same folder. The
    parts are not checked
    here (:func:`check_name` does, when a folder is made of them), so one unsafe name
    fails only its own file.

    Parameters
    ----------
    paths : sequence of path
        The mixtures, in order (the same file twice gives the same name twice).

    Returns
    -------
    list of str
        One relative folder name per input, ``/``-separated.

    Examples
    --------
    >>> output_names(["a/songA/mixture.flac", "a/songB/mixture.flac", "b/solo.wav"])
    ['songA/mixture', 'songB/mixture', 'solo']
    >>> output_names(["mix.mp3", "mix.ogg"])
    ['mix.mp3', 'mix.ogg']
    """
    full = [Path(os.path.abspath(p)) for p in paths]
    by_stem: dict[str, set[Path]] = {}
    for f in full:
        by_stem.setdefault(f.stem, set()).add(f)
    names = []
    for f in full:
        clash = by_stem[f.stem]
        if len(clash) == 1:
            names.append(f.stem)
            continue
        root = Path(os.path.commonpath([c.parent for c in clash]))
        rel = f.relative_to(root)
        same_folder = [c for c in clash if c.parent == f.parent]
        parts = rel.parts if len(same_folder) > 1 else rel.with_suffix("").parts
        names.append("/".join(parts))
    # hidden names become visible (folder_name) unless two inputs would then share one
    visible = ["/".join(folder_name(p) for p in n.split("/")) for n in names]
    owners: dict[str, set[str]] = {}
    for n, v in zip(names, visible, strict=True):
        owners.setdefault(v, set()).add(n)
    return [v if len(owners[v]) == 1 else n for n, v in zip(names, visible, strict=True)]


def folder_name(stem: str) -> str:
    """Return the output folder of a mixture named ``stem``: without leading dots.

    Examples
    --------
    >>> folder_name(".take1"), folder_name("..."), folder_name("song")
    ('take1', 'mixture', 'song')
    """
    return stem.lstrip(".") or MIXTURE_NAME


def libsndfile_version() -> str | None:
    """Return the version of the libsndfile that reads and writes audio, or None if absent.

    Returns
    -------
    str or None
        E.g. ``"1.2.2"`` (for bug reports: ``nmfsep version --full``, the report).
    """
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    return str(soundfile.__libsndfile_version__)


def audio_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Header information of an audio file, without reading the samples.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file libsndfile reads.

    Returns
    -------
    info : dict
        ``samplerate`` (int, Hz), ``channels`` (int), ``frames`` (int, samples per
        channel), ``duration`` (float, seconds), ``format`` (e.g. ``"WAV"``) and
        ``subtype`` (e.g. ``"PCM_16"``, ``"FLOAT"``).

    Raises
    ------
    AudioFormatError
        If the file is missing, a folder, empty or not decodable.
    """
    p = check_input_file(path)
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except (sf.SoundFileError, TypeError, ValueError) as exc:
        raise _decode_error(p, exc) from exc
    return {
        "samplerate": int(info.samplerate),
        "channels": int(info.channels),
        "frames": int(info.frames),
        "duration": float(info.duration),
        "format": str(info.format),
        "subtype": str(info.subtype),
    }


# ---------------------------------------------------------------------- block reading


class _ResampledFile:
    """A ``soundfile.SoundFile``-like reader that resamples on the fly.

    ``read(n)`` returns ``(frames, channels)`` float32 through
    :class:`soxr.ResampleStream` (HQ, as :func:`resample`).
    Holds only the resampler's state and what one ``read`` asked for.
    """

    def __init__(self, f: Any, sr_in: int, sr_out: int, channels: int):
        import soxr

        self.f = f
        self.ratio = sr_out / sr_in
        self.rs = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="HQ")
        self.channels = channels
        self.buf = np.zeros((0, channels), dtype=np.float32)
        self.eof = False

    def read(self, n: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        parts = [self.buf]
        have = self.buf.shape[0]
        while have < n and not self.eof:
            want = max(4096, int(math.ceil((n - have) / self.ratio)) + 64)
            data = self.f.read(want, dtype="float32", always_2d=True)
            last = data.shape[0] < want
            out = self.rs.resample_chunk(np.ascontiguousarray(data), last=last)
            out = np.asarray(out, dtype=np.float32).reshape(-1, self.channels)
            self.eof = last
            parts.append(out)
            have += out.shape[0]
        data = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        self.buf = data[n:].copy()
        return data[:n]


class BlockReader:
    """Sequential reader of sample ranges ``[a, b)`` (``a`` never decreasing), zeros outside.

    Keeps only the samples from the last ``a`` on; the length of the file becomes
    known (:attr:`n`) when a read reaches its end. Open one with :func:`open_blocks`.

    Attributes
    ----------
    path : pathlib.Path
        The file, for messages.
    channels : int
        Number of channels.
    n : int or None
        Samples in the file, once a read has reached its end.
    pos : int
        Samples read from the file so far.
    """

    def __init__(self, f: Any, path: Path, channels: int):
        self.f = f
        self.path = path
        self.channels = channels
        self.start = 0  # absolute index of buf[:, 0]
        self.pos = 0  # samples read from the file so far
        self.buf = np.zeros((channels, 0), dtype=np.float32)
        self.n: int | None = None

    def read(self, a: int, b: int) -> np.ndarray:
        """Return samples ``[a, b)`` as ``(channels, b - a)`` float32, zeros outside the file.

        Parameters
        ----------
        a, b : int
            First and end sample (``a`` may be negative; never below an earlier ``a``).

        Returns
        -------
        np.ndarray [shape=(channels, b - a)], float32

        Raises
        ------
        AudioFormatError
            If the file cannot be decoded further or holds NaN or Inf.
        """
        lo = max(a, 0)
        if lo > self.start:
            drop = min(lo, self.pos) - self.start
            self.buf = self.buf[:, drop:]
            self.start += drop
        need = b - self.pos
        if need > 0 and self.n is None:
            self._fill(need)
        out = np.zeros((self.channels, b - a), dtype=np.float32)
        s, e = max(a, self.start), min(b, self.pos)
        if e > s:
            out[:, s - a : e - a] = self.buf[:, s - self.start : e - self.start]
        return out

    def _fill(self, need: int) -> None:
        import soundfile as sf

        try:
            data = self.f.read(need, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise AudioFormatError(
                f"{self.path}: cannot be read as audio past sample {self.pos} ({exc}); "
                "convert it to WAV or FLAC (e.g. with ffmpeg -i IN OUT.wav)"
            ) from exc
        got = data.shape[0]
        if got and not np.isfinite(data).all():
            raise AudioFormatError(
                f"{self.path}: contains NaN or Inf samples; re-export it as PCM or clean "
                "float audio"
            )
        if got and (problem := peak_problem(data)) is not None:
            raise AudioFormatError(
                f"{self.path}: {problem}; re-export it as PCM or clean float audio"
            )
        self.pos += got
        if got < need:
            self.n = self.pos
        if got:
            self.buf = np.concatenate([self.buf, data.T], axis=1)


@contextlib.contextmanager
def open_blocks(
    path: str | os.PathLike[str], *, sr: int | None = None
) -> Iterator[BlockReader]:
    """Open an audio file for reading in blocks, resampled to ``sr`` on the fly if needed.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile reads.
    sr : int or None
        Rate to read at; None: the file's own. Another rate goes through
        :class:`soxr.ResampleStream` (HQ, the filter of :func:`resample`),
        continuous across reads.

    Yields
    ------
    BlockReader

    Raises
    ------
    AudioFormatError
        If the file is missing or cannot be decoded.
    """
    import soundfile as sf

    p = check_input_file(path)
    try:
        f = sf.SoundFile(str(p))
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise _decode_error(p, exc) from exc
    with f:
        _check_channels(p, f.channels)
        src: Any = f
        if sr is not None and int(sr) != f.samplerate:
            src = _ResampledFile(f, f.samplerate, int(sr), f.channels)
        yield BlockReader(src, p, f.channels)


def read_blocks(
    reader: BlockReader, grid: FrameGrid, frames_per_block: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(t0, t1, samples)``: the frames ``[t0, t1)`` of a block and the samples they cover.

    Blocks follow the whole-file STFT's frame grid, so the STFT of ``samples`` (without
    centring) gives exactly the whole-file frames ``t0 .. t1 - 1``.

    Parameters
    ----------
    reader : BlockReader
    grid : FrameGrid
        The whole-file frame grid.
    frames_per_block : int
        Frames per block, >= 1.

    Yields
    ------
    t0, t1 : int
        The block's frames.
    samples : np.ndarray [shape=(channels, n)], float32
        Samples ``[grid.start(t0), grid.start(t1 - 1) + n_fft)``.
    """
    t0 = 0
    while True:
        a = grid.start(t0)
        b = grid.start(t0 + frames_per_block - 1) + grid.n_fft
        seg = reader.read(a, b)
        # While the end of the file is unknown, it lies at or after b, so all the
        # frames up to t0 + frames_per_block exist.
        total = None if reader.n is None else grid.n_frames(reader.n)
        t1 = t0 + frames_per_block if total is None else min(t0 + frames_per_block, total)
        if t1 <= t0:
            return
        if t1 < t0 + frames_per_block:
            seg = seg[:, : grid.start(t1 - 1) + grid.n_fft - a]
        yield t0, t1, seg
        if total is not None and t1 >= total:
            return
        t0 = t1


# ---------------------------------------------------------------------- all-or-nothing outputs


class OutputTransaction:
    """Write a set of files into one folder all or nothing.

    Created before any work: refuses targets that are folders or exist (without
    ``force``), creates the folder and proves it writable. Files are written to hidden
    temporary names (:meth:`temporary`, :meth:`wav_writer`) and renamed over their
    targets together by :meth:`commit`. Used as a context manager, any exception
    (also ``KeyboardInterrupt``) closes the writers, removes the temporaries and the
    folders the transaction created (if empty), and an ``OSError`` becomes one
    :class:`~nmfsep.exceptions.OutputError` line.

    Parameters
    ----------
    folder : str or os.PathLike
        The output folder (created if missing).
    targets : sequence of paths
        Every file that will be written (:meth:`OutputFiles.all`).
    force : bool
        Overwrite existing targets.
    inputs : sequence of paths
        Files the run reads (the mixture): no target may be one of them, ``force`` or
        not (:func:`check_not_input`).

    Raises
    ------
    OutputError
        A target is a folder, is an input, exists without ``force``, or the folder is
        not writable.
    """

    def __init__(
        self, folder: str | os.PathLike[str], targets: Sequence[Path], *, force: bool,
        inputs: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.folder = Path(folder)
        self.force = force
        self.token = secrets.token_hex(4)
        self._staged: list[tuple[Path, Path]] = []
        self._writers: list[WavWriter] = []
        self._conversions: list[tuple[_PeakWavWriter, Path, AudioFormat]] = []
        #: The gain every converted stem was scaled by so that none clips (1: none).
        self.gain = 1.0
        for t in targets:
            if t.is_dir():
                raise OutputError(f"{t}: is a folder; remove it or choose another output folder")
            check_not_input(t, inputs)
        existing = [t for t in targets if t.exists()]
        if existing and not force:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise OutputError(f"{existing[0]}: exists{more}; pass force=True to overwrite")
        self._anchor = self.folder
        while not self._anchor.exists() and self._anchor != self._anchor.parent:
            self._anchor = self._anchor.parent
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.temporary(self.folder / ".nmfsep-probe"),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            self._remove_created()
            raise OutputError(
                f"{self.folder}: cannot write there ({exc.strerror or exc}); choose another "
                "output folder or fix its permissions"
            ) from exc
        finally:
            self._remove_temporaries()

    def temporary(self, final: Path) -> Path:
        """Return the hidden temporary name of ``final``, renamed over it by :meth:`commit`."""
        tmp = self.folder / f".{final.stem}.{self.token}.partial{final.suffix}"
        self._staged.append((tmp, final))
        return tmp

    def wav_writer(self, final: Path, sr: int, n_channels: int, n_samples: int) -> WavWriter:
        """Open a :class:`WavWriter` on ``final``'s temporary (closed by :meth:`commit`)."""
        writer = WavWriter(self.temporary(final), sr, n_channels, n_samples, label=final)
        self._writers.append(writer)
        return writer

    def audio_writer(self, final: Path, sr: int, n_channels: int, n_samples: int,
                     fmt: AudioFormat) -> WavWriter:
        """Open a writer for a stem stored as ``fmt`` (float WAV: :meth:`wav_writer`).

        Other formats are written as float WAV first and converted by :meth:`commit`,
        all with one gain: for integer samples, when any stem peaks above 1, every stem
        is scaled by ``1 / peak`` (:attr:`gain`), so nothing clips and the stems still
        add up (to the mixture times the gain).
        """
        if fmt.is_float and fmt.format == "wav":
            return self.wav_writer(final, sr, n_channels, n_samples)
        src = self.folder / f".{final.stem}.{self.token}.float.wav"
        self._staged.append((src, src))  # removed on failure like the other temporaries
        writer = _PeakWavWriter(src, sr, n_channels, n_samples, label=final)
        self._writers.append(writer)
        self._conversions.append((writer, final, fmt))
        return writer

    def _convert_all(self) -> None:
        """Write the converted stems to their temporaries, with the joint gain."""
        peak = max((w.peak for w, _, fmt in self._conversions if not fmt.is_float), default=0.0)
        self.gain = 1.0 / peak if peak > 1.0 else 1.0
        for writer, final, fmt in self._conversions:
            _convert(writer.path, self.temporary(final), fmt, self.gain)
            writer.path.unlink()
        self._staged = [(t, f) for t, f in self._staged if t != f]
        self._conversions.clear()

    def commit(self) -> None:
        """Close the writers, convert stems of other formats, rename every temporary.

        Raises
        ------
        OutputError
            A target appeared during the run and ``force`` is off.
        """
        while self._writers:
            self._writers.pop(0).close()
        if self._conversions:
            self._convert_all()
        if not self.force:
            late = [final for _, final in self._staged if final.exists()]
            if late:
                raise OutputError(
                    f"{late[0]}: appeared while separating; pass force=True to overwrite"
                )
        for tmp, final in self._staged:
            os.replace(tmp, final)
        self._staged.clear()

    def __enter__(self) -> OutputTransaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc is None:
            return
        for writer in self._writers:
            with contextlib.suppress(Exception):
                writer.close()
        self._remove_temporaries()
        self._remove_created()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(
                f"{self.folder}: cannot write the outputs {write_problem(exc, self.folder)}"
            ) from exc

    def _remove_temporaries(self) -> None:
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged.clear()

    def _remove_created(self) -> None:
        """Remove the folders created for the output, if they are still empty."""
        p = self.folder
        while p != self._anchor:
            try:
                p.rmdir()
            except OSError:
                return
            p = p.parent


#: The names of :class:`OutputTransaction`'s temporaries: ``.<stem>.<token>.partial<ext>``
#: and ``.<stem>.<token>.float.wav`` (``token``: 8 hex digits).
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.(partial(\.[^.]+)?|float\.wav)$")


def discard_interrupted(folder: Path, anchor: Path) -> None:
    """Remove what a killed :class:`OutputTransaction` left in ``folder``.

    A transaction cleans up after itself when it is interrupted; one in a worker
    process that was killed cannot. This removes the temporaries such a transaction
    leaves (finished stems are never touched), then ``folder`` and its parents up to
    ``anchor`` (excluded) while they are empty.

    Parameters
    ----------
    folder : Path
        A stem folder that was being written.
    anchor : Path
        The nearest ancestor of ``folder`` that existed before the run.
    """
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            if _TEMPORARY.match(p.name) and p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
    p = folder
    while p != anchor and anchor in p.parents:
        try:
            p.rmdir()
        except OSError:
            return
        p = p.parent
