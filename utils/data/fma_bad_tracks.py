"""Known-bad FMA audio clips: the one list, with the maintainers' reports it comes from.

The 30 s clips of ``fma_small``, ``fma_medium`` and ``fma_large`` were cut
from the middle of each track, where the middle was computed from the
duration the FMA web API reported. For the 21 tracks below that duration is
wrong, so the clip was cut at the wrong place, "possibly even beyond their
total length, which resulted in a zero-length clip" (M. Defferrard, FMA
maintainer, https://github.com/mdeff/fma/issues/8, comment of 2017-11-18,
which gives both durations for each track). The published archives were not
re-cut: their SHA-1s are still those of the 2017-05-09 release.

- Three clips have no audio at all: 099134, 108925, 133297 (maintainer,
  https://github.com/mdeff/fma/issues/44, "a known issue (#41)").
- Six clips of ``fma_small`` are "much shorter than 30s": 098565, 098567,
  098569, 099134, 108925, 133297 (https://github.com/mdeff/fma/issues/8,
  opening report, confirmed there by the maintainer).
- The other 12 are the rest of the maintainer's table in issue 8.

The untrimmed tracks of ``fma_full`` are whole (``fma_full/133/133297.mp3``
is 4.5 MB, https://github.com/mdeff/fma/issues/4), so this list applies to
the clip archives only. Decoding failures reported by users for other
``fma_large`` files (https://github.com/mdeff/fma/issues/49) were not
confirmed by the maintainers (the files match the published checksums) and
are not listed here: a clip that fails to decode is recorded with its error
when spectrograms are extracted.
"""
from __future__ import annotations

from dataclasses import dataclass

ISSUE_8 = "https://github.com/mdeff/fma/issues/8"
ISSUE_44 = "https://github.com/mdeff/fma/issues/44"


@dataclass(frozen=True)
class BadTrack:
    """One known-bad FMA clip.

    Attributes
    ----------
    track_id : FMA track id
    metadata_s : duration the FMA metadata reports, in seconds
    actual_s : duration of the full track as the maintainer measured it, in seconds
    no_audio : the clip holds no audio at all
    sources : URLs of the reports
    """

    track_id: int
    metadata_s: int
    actual_s: float
    no_audio: bool = False
    sources: tuple[str, ...] = (ISSUE_8,)

    @property
    def reason(self) -> str:
        """Why the clip is excluded, in one line."""
        problem = "no audio" if self.no_audio else "clip cut at the wrong place"
        return (f"{problem}: FMA metadata gives {self.metadata_s} s, "
                f"the track lasts {self.actual_s:.2f} s ({', '.join(self.sources)})")


BAD_TRACKS: tuple[BadTrack, ...] = (
    BadTrack(1486, 90, 14.39),
    BadTrack(5574, 563, 30.46),
    BadTrack(65753, 242, 9.74),
    BadTrack(80391, 600, 67.84),
    BadTrack(98558, 216, 87.67),
    BadTrack(98559, 193, 58.80),
    BadTrack(98560, 341, 86.13),
    BadTrack(98565, 158, 65.31),
    BadTrack(98566, 148, 63.63),
    BadTrack(98567, 191, 79.39),
    BadTrack(98568, 249, 114.55),
    BadTrack(98569, 184, 77.37),
    BadTrack(98571, 139, 50.81),
    BadTrack(99134, 308, 33.25, no_audio=True, sources=(ISSUE_44, ISSUE_8)),
    BadTrack(105247, 123, 18.91),
    BadTrack(108924, 187, 105.38),
    BadTrack(108925, 151, 7.44, no_audio=True, sources=(ISSUE_44, ISSUE_8)),
    BadTrack(126981, 216, 17.45),
    BadTrack(127336, 275, 13.27),
    BadTrack(133297, 600, 113.58, no_audio=True, sources=(ISSUE_44, ISSUE_8)),
    BadTrack(143992, 211, 26.23),
)
