"""Stage 1, audio: files to samples to log-Mel windows.

:mod:`~utils.audio.decoder` (decode any file to mono at a rate, typed errors
naming the file), :mod:`~utils.audio.frontend` (the ``FrontEnd`` config, log-Mel
spectrograms and fixed-length windows), :mod:`~utils.audio.degrade` (real-world
degradations). The decoder's functions and errors are re-exported here, so
``from utils import audio; audio.load(path, sr=22050)`` reads a file.
"""
from utils.audio.decoder import (AUDIO_EXTENSIONS, SILENCE_PEAK, AudioDecodeError, AudioError, EmptyFileError,
                                 MissingFileError, NonFiniteAudioError, NotAudioError, SilentAudioError,
                                 TooShortError, TruncatedAudioError, check_samples, decode, find_audio, load,
                                 sniff, stream)

__all__ = ["AUDIO_EXTENSIONS", "SILENCE_PEAK", "AudioDecodeError", "AudioError", "EmptyFileError",
           "MissingFileError", "NonFiniteAudioError", "NotAudioError", "SilentAudioError", "TooShortError",
           "TruncatedAudioError", "check_samples", "decode", "find_audio", "load", "sniff", "stream"]
