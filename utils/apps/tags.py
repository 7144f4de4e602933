"""The one home of what fma-genre writes into audio files: genre tags as players read them.

Used by ``fma-genre organize --write-tags`` (on its copies) and by the beets plugin
(``beet fmagenre -w``, :mod:`beetsplug.fmagenre`). The genre goes where every player
looks for it (ID3 ``TCON`` in MP3, WAV and AIFF; Vorbis ``GENRE`` in FLAC, Ogg and Opus;
MP4 ``©gen``; ASF ``WM/Genre``); the classifier's own answer, its probability and the
model's name go into namespaced tags beside it (:data:`PREDICTION`, :data:`PROBABILITY`,
:data:`MODEL`: ID3 ``TXXX:<name>``, a Vorbis comment ``<name>``, MP4
``----:com.fma-genre:<name>``, an ASF attribute ``<name>``), so another genre a user
chose is never confused with the model's. A file is changed whole or not at all: the tags
are written into a copy that then replaces it (:func:`utils.atomic.write_atomic`).

Genre names: a model's labels are its taxonomy's (GTZAN's ``hiphop``, FMA's ``Hip-Hop``);
:func:`genre_name` writes them in either taxonomy's spelling, or through a mapping of
the user's.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from utils import audio
from utils.atomic import write_atomic

PREDICTION = "FMA_GENRE"  # the model's genre, whatever the file's own genre tag says
PROBABILITY = "FMA_GENRE_PROBABILITY"  # its probability, 4 decimals
MODEL = "FMA_GENRE_MODEL"  # the model that said it (:func:`model_name`)
MP4_MEAN = "com.fma-genre"  # the reverse-DNS "mean" of MP4 freeform atoms, as iTunes' own are com.apple.iTunes

GTZAN = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
# FMA's 16 top-level genres (fma_metadata/genres.csv, parent 0), the labels of a model trained on FMA
FMA = ("Blues", "Classical", "Country", "Easy Listening", "Electronic", "Experimental", "Folk", "Hip-Hop",
       "Instrumental", "International", "Jazz", "Old-Time / Historic", "Pop", "Rock", "Soul-RnB", "Spoken")
# each GTZAN genre's name in FMA's taxonomy: a top-level genre, or the sub-genre FMA files it under
# (Disco under Soul-RnB, Metal under Rock, Reggae - Dub under International)
GTZAN_TO_FMA = {"blues": "Blues", "classical": "Classical", "country": "Country", "disco": "Disco",
                "hiphop": "Hip-Hop", "jazz": "Jazz", "metal": "Metal", "pop": "Pop", "reggae": "Reggae - Dub",
                "rock": "Rock"}
FMA_TO_GTZAN = {fma: gtzan for gtzan, fma in GTZAN_TO_FMA.items()}
NAMES = ("model", "fma", "gtzan")  # the spellings :func:`genre_name` knows by name


@dataclass(frozen=True)
class GenreTags:
    """What to write into one file; a field that is None leaves its tag as it is.

    Attributes
    ----------
    genre : the genre players show (ID3 ``TCON``, Vorbis ``GENRE``, MP4 ``©gen``)
    prediction : the model's genre (:data:`PREDICTION`)
    probability : its probability (:data:`PROBABILITY`)
    model : the model's name (:data:`MODEL`, see :func:`model_name`)
    """

    genre: str | None = None
    prediction: str | None = None
    probability: float | None = None
    model: str | None = None

    def namespaced(self) -> dict[str, str]:
        """The namespaced tags to write, by name: those whose value is given."""
        values = {PREDICTION: self.prediction, MODEL: self.model,
                  PROBABILITY: None if self.probability is None else f"{self.probability:.4f}"}
        return {name: value for name, value in values.items() if value is not None}


def write_tags(path: str | os.PathLike, tags: GenreTags) -> None:
    """Write ``tags`` into the audio file at ``path`` (a link: into the file it points to), atomically.

    Raises :class:`utils.audio.AudioError` naming the file if it has no tag format
    fma-genre can write (raw AAC, not audio) or cannot be written; the file is then left as it was.
    """
    import mutagen

    path = Path(path).resolve()

    def write(tmp: Path) -> None:
        shutil.copy2(path, tmp)
        tagged = kind(tmp)  # the kind found from the file's own name: the copy's ends in .tmp
        if tagged.tags is None:
            tagged.add_tags()
        _set(tagged.tags, tags)
        tagged.save()

    try:
        found = mutagen.File(path)
        if found is None:
            raise mutagen.MutagenError("no tag format known for this kind of file")
        kind = type(found)
        write_atomic(path, write)
    except (mutagen.MutagenError, OSError, KeyError, TypeError, ValueError) as err:
        reason = getattr(err, "strerror", None) or err
        raise audio.AudioDecodeError(path, f"cannot write tags: {reason}") from None


def _set(container, tags: GenreTags) -> None:
    """Set ``tags`` in mutagen's ``container`` of whichever format the file has."""
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3, TCON, TXXX
    from mutagen.mp4 import AtomDataType, MP4FreeForm, MP4Tags

    named = tags.namespaced()
    if isinstance(container, ID3):  # MP3, and the ID3 chunk of WAV and AIFF
        if tags.genre is not None:
            container.setall("TCON", [TCON(encoding=3, text=[tags.genre])])
        for name, value in named.items():
            container.setall(f"TXXX:{name}", [TXXX(encoding=3, desc=name, text=[value])])
    elif isinstance(container, MP4Tags):
        if tags.genre is not None:
            container["\xa9gen"] = [tags.genre]
        for name, value in named.items():
            container[f"----:{MP4_MEAN}:{name}"] = [MP4FreeForm(value.encode(), AtomDataType.UTF8)]
    elif isinstance(container, ASFTags):
        if tags.genre is not None:
            container["WM/Genre"] = [tags.genre]
        container.update({name: [value] for name, value in named.items()})
    else:  # Vorbis comments (FLAC, Ogg Vorbis, Opus): free-form names, GENRE by convention
        if tags.genre is not None:
            container["GENRE"] = [tags.genre]
        for name, value in named.items():
            container[name] = [value]


def genre_name(label: str, names: str | Mapping[str, str] = "model") -> str:
    """A model's ``label`` as it is written: ``names`` is ``"model"`` (the label as it is),
    ``"fma"`` (FMA's spelling: GTZAN's ``hiphop`` is ``Hip-Hop``), ``"gtzan"`` (GTZAN's:
    FMA's ``Hip-Hop`` is ``hiphop``, a genre GTZAN lacks is lower-cased without punctuation,
    ``Old-Time / Historic`` ``oldtimehistoric``) or a mapping of labels to names (a label
    it lacks stays as it is).
    """
    if not isinstance(names, str):
        return str(names.get(label, label))
    if names == "fma":
        return GTZAN_TO_FMA.get(label, label)
    if names == "gtzan":
        return FMA_TO_GTZAN.get(label) or re.sub(r"[^0-9a-z]", "", label.lower())
    if names == "model":
        return label
    raise ValueError(f"names must be one of {', '.join(NAMES)} or a mapping, got {names!r}")


def taxonomy(labels: Iterable[str], names: str | Mapping[str, str] = "model") -> str:
    """The taxonomy genre names are written in: ``"fma"`` or ``"gtzan"`` when ``names`` asks for one;
    with ``"model"``, the one all of a model's ``labels`` belong to, else ``"custom"``, as with a mapping."""
    if isinstance(names, str) and names != "model":
        return names
    labels = set(labels)
    if isinstance(names, str):
        if labels <= set(GTZAN):
            return "gtzan"
        if labels <= set(FMA) | set(FMA_TO_GTZAN):
            return "fma"
    return "custom"


def model_name(model: str | os.PathLike | None) -> str:
    """The name a model's results are recorded under (:data:`MODEL`, beets' ``fmagenre_model``): a shipped
    model's name (:data:`utils.models.predict.SHIPPED`; None, the default, is ``gtzan``), also when it is
    given by its file, else the model file's absolute path. Either is a ``model`` that
    :func:`~utils.models.predict.load_predictor` takes."""
    from utils.models.predict import SHIPPED, model_path

    path = model_path(model).resolve()
    return next((name for name, shipped in SHIPPED.items() if shipped.resolve() == path), str(path))
