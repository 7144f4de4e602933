"""Held-out listening conditions made by other programs than the training code: SoX and FFmpeg.

The robustness evaluation tests a model on conditions its training never
contained, produced by a second implementation (command-line ``sox`` and
``ffmpeg`` run as subprocesses), so a model cannot score well by having
learnt the artefacts of the project's own augmentation
(:mod:`utils.audio.augment`). Each condition is a fixed command line; a clip
goes through it as a 16-bit WAV file, as a user's file would, and comes back
as mono float32 at the same rate and length.

:data:`CONDITIONS` are the robustness experiment's held-out conditions;
:data:`PROBE_CONDITIONS` are further ones, in neither training nor that
experiment, for ``scripts/stress_probe.py`` to try the shipped model on.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

# name -> (program, arguments after the input and output files; for ffmpeg, the output options)
CONDITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sox_gain_-20dB": ("sox", ("vol", "-20dB")),
    "sox_gain_+6dB_clipped": ("sox", ("gain", "-n", "6")),
    "sox_overdrive": ("sox", ("overdrive", "20", "20")),
    "sox_broadcast_compand": ("sox", ("compand", "0.002,0.15", "6:-70,-60,-30,-12,-12,-6", "0", "-90", "0.05")),
    "sox_speed_+4pct": ("sox", ("speed", "1.04")),
    "sox_reverb_hall": ("sox", ("reverb", "70", "50", "100")),
    "sox_brown_noise_15dB": ("sox_noise", ("brownnoise", "15")),
    "sox_telephone_band": ("sox", ("sinc", "300-3400")),
    "sox_no_bass_800Hz": ("sox", ("sinc", "800")),
    "ffmpeg_opus_12k": ("ffmpeg", ("-c:a", "libopus", "-b:a", "12k", "-f", "ogg")),
    "ffmpeg_laptop_speaker": ("ffmpeg", ("-af", "highpass=f=400:poles=2,lowpass=f=6000,"
                                         "equalizer=f=1200:t=q:w=1:g=6", "-f", "wav")),
}

# More conditions, none of them in CONDITIONS nor a setting of the training chains: playback at the wrong speed or
# pitch, a narrow AM radio, heavier filters, compression and noise than the held-out set, low-bitrate codecs
# (LAME at 16 kbit/s resamples to 8 kHz; training's MP3 is VBR at the clip's rate), a 6 kHz sample rate and
# vinyl-like clicks (FFmpeg's aeval: about one sample in 2,000).
PROBE_CONDITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sox_pitch_+4st": ("sox", ("pitch", "400")),
    "sox_pitch_-4st": ("sox", ("pitch", "-400")),
    "sox_speed_0.8": ("sox", ("speed", "0.8")),
    "sox_speed_1.25": ("sox", ("speed", "1.25")),
    "sox_am_radio": ("sox", ("sinc", "200-2500", "compand", "0.01,0.2", "-60,-40,-30,-15,0,-8", "0", "-20",
                             "overdrive", "5")),
    "sox_lowpass_1kHz": ("sox", ("sinc", "-1000")),
    "sox_highpass_1.5kHz": ("sox", ("sinc", "1500")),
    "sox_heavy_compand": ("sox", ("compand", "0.001,0.05", "-80,-80,-50,-10,0,-5", "0", "-90", "0")),
    "sox_reverb_100": ("sox", ("reverb", "100", "50", "100", "100", "50")),
    "sox_white_noise_10dB": ("sox_noise", ("whitenoise", "10")),
    "sox_white_noise_0dB": ("sox_noise", ("whitenoise", "0")),
    "ffmpeg_mp3_16k": ("ffmpeg", ("-c:a", "libmp3lame", "-b:a", "16k", "-f", "mp3")),
    "ffmpeg_mp3_32k": ("ffmpeg", ("-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3")),
    "ffmpeg_vorbis_q-1": ("ffmpeg", ("-c:a", "libvorbis", "-q:a", "-1", "-f", "ogg")),
    "ffmpeg_rate_6kHz": ("ffmpeg", ("-ar", "6000", "-f", "wav")),
    "ffmpeg_crackle": ("ffmpeg", ("-af", "aeval='val(0)+if(lt(random(0),0.0005),0.8*(random(1)-0.5),0)':c=same",
                                  "-f", "wav")),
}
# RMS level (dB) of sox's synth noise before its "vol" gain, by colour (sox 14.4, measured): what sets the SNR.
_NOISE_RMS_DB = {"brownnoise": -4.8, "whitenoise": -8.4}


def available() -> bool:
    """Whether both programs are installed (``apt-get install sox ffmpeg``)."""
    return shutil.which("sox") is not None and shutil.which("ffmpeg") is not None


def apply(name: str, y: np.ndarray, sr: int) -> np.ndarray:
    """``y`` (mono float32 at ``sr`` Hz) through condition ``name``: as many samples, same rate.

    ``name`` is one of :data:`CONDITIONS` or :data:`PROBE_CONDITIONS`. Raises
    ``RuntimeError`` with the program's last line of error output if it fails.
    """
    program, args = CONDITIONS[name] if name in CONDITIONS else PROBE_CONDITIONS[name]
    with tempfile.TemporaryDirectory(prefix="condition_") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.bin"
        sf.write(src, np.clip(y, -1, 1), sr, subtype="PCM_16")
        if program == "sox":
            cmd = ["sox", "-q", "-R", str(src), "-t", "wav", str(dst), *args]
        elif program == "sox_noise":  # noise at a set SNR below the clip's RMS level, mixed by sox
            colour, snr_db = args
            noise = Path(tmp) / "noise.wav"
            rms_db = 10 * np.log10(np.mean(np.asarray(y, np.float64) ** 2) + 1e-12)
            _run(["sox", "-q", "-R", "-n", "-r", str(sr), "-c", "1", "-b", "16", str(noise), "synth",
                  f"{len(y) / sr:.6f}", colour, "vol", f"{rms_db - float(snr_db) - _NOISE_RMS_DB[colour]:.2f}dB"])
            cmd = ["sox", "-q", "-R", "-m", "-v", "1", str(src), "-v", "1", str(noise), "-t", "wav", str(dst)]
        else:
            encoded = Path(tmp) / "coded"
            _run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *args, str(encoded)])
            cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(encoded), "-ac", "1", "-ar", str(sr),
                   "-f", "wav", str(dst)]
        _run(cmd)
        z, rate = sf.read(dst, dtype="float32", always_2d=True)
    z = z.mean(axis=1)
    if rate != sr:
        raise RuntimeError(f"{name}: came back at {rate} Hz, not {sr} Hz")
    return z[: y.size]  # codecs may add a few samples; a speed change shortens the clip


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {lines[-1]}")
