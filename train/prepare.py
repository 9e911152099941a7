"""Stage 1, ``prepare``: ``dataset_raw/<speaker>/*`` -> ``dataset/<speaker>/*.wav``.

Each readable file is made mono at the target rate, optionally loudness-normalised, cut at
silences into clips of about MIN_CLIP_S..MAX_CLIP_S seconds (longer voiced stretches are split
evenly) and written as 16-bit WAV, atomically. Clips that are too short, silent or clipped, and
files that cannot be read, are left out and listed in the report (``prepare_report.json``) with
the reason; the rest proceeds. Any Unicode file or folder name is accepted: output names are
ASCII-safe (so-vits-svc warns on names outside [A-Za-z0-9_.]) and renames are reported.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from rtsvc.atomic import atomic_write
from rtsvc.audio_io import read_audio, resample
from rtsvc.errors import RtsvcError
from rtsvc.render import AUDIO_EXTENSIONS
from rtsvc.slicer import SlicerConfig, slice_audio

#: Clip length bounds after slicing (seconds). Shorter clips are rejected, longer ones split.
MIN_CLIP_S = 0.3
MAX_CLIP_S = 15.0
#: Slicer settings for training data: cut at >= 300 ms of silence below -40 dB, clips >= 5 s.
SLICER = SlicerConfig(threshold_db=-40.0, min_length_ms=5000, min_interval_ms=300, hop_ms=10, max_sil_kept_ms=500)
#: Files longer than this are refused whole (they would not fit in memory comfortably).
MAX_FILE_S = 3 * 3600.0
#: A clip whose peak is below this is silent.
SILENCE_PEAK = 1e-3
#: A clip with more than this fraction of samples at |x| >= CLIP_LEVEL is clipped.
CLIP_LEVEL = 0.999
CLIPPED_FRACTION = 0.005
#: Loudness normalisation: RMS of the audible part to this dBFS, peak at most PEAK_LIMIT.
TARGET_RMS_DBFS = -23.0
PEAK_LIMIT = 0.95
#: Frames quieter than this (dBFS) are ignored when measuring loudness.
GATE_DBFS = -50.0
_SAFE = re.compile(r"[^A-Za-z0-9_]+")


@dataclass
class PrepareReport:
    """What prepare did: written clips per speaker, rejected items (path, reason), renames."""

    written: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"prepared {sum(len(v) for v in self.written.values())} clip(s) for {len(self.written)} speaker(s)"]
        lines += [f"  {spk}: {len(clips)} clip(s)" for spk, clips in sorted(self.written.items())]
        if self.renamed:
            lines.append(f"renamed {len(self.renamed)} non-ASCII-safe name(s) (see prepare_report.json)")
        for path, reason in self.rejected:
            lines.append(f"rejected {path}: {reason}")
        return printable("\n".join(lines))


def printable(text: str) -> str:
    """``text`` with undecodable file-name bytes (surrogates) shown as escapes, safe to print."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def safe_name(name: str) -> str:
    """An ASCII [A-Za-z0-9_] name for any Unicode ``name``; a short hash keeps distinct names distinct."""
    ascii_form = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _SAFE.sub("_", ascii_form).strip("_")
    if slug == name and slug:
        return slug
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}_{digest}" if slug else f"clip_{digest}"


def normalize_loudness(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Scale so the gated RMS (10 ms frames above GATE_DBFS) is TARGET_RMS_DBFS, then limit the
    peak to PEAK_LIMIT. An approximation of so-vits-svc's -23 LUFS step without K-weighting."""
    frame = max(1, sample_rate // 100)
    n = len(audio) // frame * frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[:n].reshape(-1, frame).astype(np.float64) ** 2, axis=1))
    loud = rms[rms > 10 ** (GATE_DBFS / 20)]
    if len(loud) == 0:
        return audio
    gain = 10 ** (TARGET_RMS_DBFS / 20) / float(np.sqrt(np.mean(loud**2)))
    out = audio * gain
    peak = float(np.max(np.abs(out)))
    if peak > PEAK_LIMIT:
        out = out * (PEAK_LIMIT / peak)
    return out.astype(np.float32)


def clip_problem(audio: np.ndarray, sample_rate: int) -> str | None:
    """Why a clip cannot be used (too short / silent / clipped), or None."""
    seconds = len(audio) / sample_rate
    if seconds < MIN_CLIP_S:
        return f"too short ({seconds:.2f} s, needs at least {MIN_CLIP_S} s)"
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        return "silent (peak below -60 dBFS)"
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    if clipped > CLIPPED_FRACTION:
        return f"clipped ({100 * clipped:.1f}% of samples at full scale); re-record or lower the gain"
    return None


def split_long(start: int, end: int, max_len: int) -> list[tuple[int, int]]:
    """[start, end) cut into equal parts no longer than max_len samples."""
    parts = max(1, -(-(end - start) // max_len))
    bounds = np.linspace(start, end, parts + 1).astype(int)
    return list(zip(bounds[:-1], bounds[1:]))


def write_wav_atomic(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with atomic_write(path) as fh:
        sf.write(fh, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")


def read_any_name(src: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 at ``sample_rate``. File names that are not valid UTF-8 (possible on Linux)
    are opened through a file object, since libsndfile only takes UTF-8 names."""
    try:
        return read_audio(src, target_rate=sample_rate).audio
    except UnicodeEncodeError:
        pass
    try:
        with open(src, "rb") as fh:
            data, rate = sf.read(fh, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as exc:
        raise RtsvcError(f"{printable(str(src))}: not a readable audio file ({exc}).") from None
    if data.shape[0] == 0:
        raise RtsvcError(f"{printable(str(src))}: the file holds no audio samples.")
    return resample(np.nan_to_num(data.mean(axis=1)), int(rate), sample_rate)


def prepare_file(src: Path, out_dir: Path, stem: str, sample_rate: int, loudnorm: bool, report: PrepareReport) -> list[Path]:
    """Slice one recording into clips under ``out_dir``; problems go to ``report``."""
    try:
        audio = read_any_name(src, sample_rate)
    except RtsvcError as exc:
        report.rejected.append((str(src), f"unreadable: {exc.message}"))
        return []
    duration = len(audio) / sample_rate
    if duration > MAX_FILE_S:
        report.rejected.append((str(src), f"too long ({duration / 60:.0f} min; split it into files under {MAX_FILE_S / 3600:.0f} h)"))
        return []
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    if clipped > CLIPPED_FRACTION:  # judged before any gain change
        report.rejected.append((str(src), f"clipped ({100 * clipped:.1f}% of samples at full scale); re-record or lower the gain"))
        return []
    if loudnorm:
        audio = normalize_loudness(audio, sample_rate)
    spans: list[tuple[int, int]] = []
    for chunk in slice_audio(audio, sample_rate, SLICER):
        if not chunk.silent:
            spans += split_long(chunk.start, chunk.end, int(MAX_CLIP_S * sample_rate))
    written = []
    for i, (a, b) in enumerate(spans):
        name = f"{stem}.wav" if len(spans) == 1 else f"{stem}_{i:03d}.wav"
        problem = clip_problem(audio[a:b], sample_rate)
        if problem:
            where = str(src) if len(spans) == 1 else f"{src} [{a / sample_rate:.2f}-{b / sample_rate:.2f} s]"
            report.rejected.append((where, problem))
            continue
        write_wav_atomic(out_dir / name, audio[a:b], sample_rate)
        written.append(out_dir / name)
    if not spans:
        report.rejected.append((str(src), "silent (no sound above -40 dB)"))
    return written


def prepare_dataset(raw_dir: Path, out_dir: Path, sample_rate: int = 44100, loudnorm: bool = True, log=print) -> PrepareReport:
    """Run the stage over every ``raw_dir/<speaker>/`` folder; writes ``out_dir/prepare_report.json``."""
    if not raw_dir.is_dir():
        raise RtsvcError(f"{raw_dir}: no such folder; expected dataset_raw/<speaker>/<recordings>.",
                         "put each speaker's recordings in its own sub-folder of dataset_raw/.")
    speakers = sorted(d for d in raw_dir.iterdir() if d.is_dir())
    if not speakers:
        raise RtsvcError(f"{raw_dir}: has no speaker sub-folders; expected dataset_raw/<speaker>/<recordings>.",
                         "make one folder per speaker and put the recordings inside.")
    report = PrepareReport()
    for spk_dir in speakers:
        spk = safe_name(spk_dir.name)
        if spk != spk_dir.name:
            report.renamed.append((spk_dir.name, spk))
        files = sorted(p for p in spk_dir.rglob("*") if p.is_file())
        audio_files = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS]
        for p in files:
            if p not in audio_files:
                report.rejected.append((str(p), f"not an audio file (extensions taken: {', '.join(AUDIO_EXTENSIONS)})"))
        written: list[str] = []
        used: set[str] = set()
        for src in audio_files:
            stem = safe_name(src.stem)
            if stem in used:
                stem = f"{stem}_{hashlib.sha1(str(src).encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
            used.add(stem)
            if stem != src.stem:
                report.renamed.append((str(src), stem))
            written += [p.name for p in prepare_file(src, out_dir / spk, stem, sample_rate, loudnorm, report)]
        if written:
            report.written[spk] = written
        else:
            report.rejected.append((str(spk_dir), "speaker has no usable clips; left out"))
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(report), indent=2, ensure_ascii=True)
    (out_dir / "prepare_report.json").write_text(text, encoding="utf-8")
    log(report.summary())
    if not report.written:
        raise RtsvcError(f"{raw_dir}: no usable clips in any speaker folder (see {out_dir / 'prepare_report.json'}).",
                         "add recordings of at least 0.3 s with audible sound.")
    return report
