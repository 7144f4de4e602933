"""Genre tags as players read them, in every format fma-genre reads: written by utils.apps.tags
(the one writer of organize and the beets plugin), read back by mutagen and by beets' MediaFile."""
import subprocess

import mutagen
import pytest
from mediafile import MediaFile

from utils import audio
from utils.apps import tags

WRITTEN = tags.GenreTags(genre="Hip-Hop", prediction="hiphop", probability=0.87654, model="gtzan")
NAMESPACED = {"FMA_GENRE": "hiphop", "FMA_GENRE_PROBABILITY": "0.8765", "FMA_GENRE_MODEL": "gtzan"}


def namespaced(path) -> dict[str, str]:
    """fma-genre's namespaced tags in ``path``, read the way each format stores free-form tags."""
    found = mutagen.File(path).tags
    if isinstance(found, mutagen.id3.ID3):
        return {f.desc: str(f) for f in found.getall("TXXX")}
    if isinstance(found, mutagen.mp4.MP4Tags):
        return {k.split(":")[-1]: bytes(v[0]).decode() for k, v in found.items() if k.startswith("----:com.fma-genre:")}
    if isinstance(found, mutagen.asf.ASFTags):
        return {k: str(v[0]) for k, v in found.items() if k.startswith("FMA_GENRE")}
    return {k.upper(): v[0] for k, v in found.items() if k.upper().startswith("FMA_GENRE")}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fma_mp3s):
    """Two seconds of a real FMA clip in each format, made by FFmpeg, without tags."""
    folder = tmp_path_factory.mktemp("formats")
    made = {}
    for suffix, codec in [(".mp3", "libmp3lame"), (".wav", "pcm_s16le"), (".aiff", "pcm_s16be"), (".flac", "flac"),
                          (".ogg", "libvorbis"), (".opus", "libopus"), (".m4a", "aac"), (".wma", "wmav2")]:
        made[suffix] = folder / f"clip{suffix}"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(fma_mp3s[0]), "-t", "2", "-map_metadata", "-1",
                        "-c:a", codec, str(made[suffix])], check=True)
    return made


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".aiff", ".flac", ".ogg", ".opus", ".m4a", ".wma"])
def test_genre_and_namespaced_tags_where_players_look(clips, suffix, tmp_path):
    path = tmp_path / clips[suffix].name
    path.write_bytes(clips[suffix].read_bytes())
    tags.write_tags(path, WRITTEN)
    assert MediaFile(path).genres == ["Hip-Hop"]  # TCON, GENRE, ©gen or WM/Genre, as beets and players read it
    assert namespaced(path) == NAMESPACED
    assert audio.load(path, 16000).shape == audio.load(clips[suffix], 16000).shape  # the audio is untouched
    tags.write_tags(path, tags.GenreTags(prediction="rock", probability=0.5))  # None leaves a tag as it is
    assert MediaFile(path).genres == ["Hip-Hop"] and namespaced(path)["FMA_GENRE_MODEL"] == "gtzan"
    assert namespaced(path)["FMA_GENRE"] == "rock" and namespaced(path)["FMA_GENRE_PROBABILITY"] == "0.5000"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def test_a_file_without_tags_is_one_error_and_left_as_it_was(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_bytes(b"not audio" * 50)
    with pytest.raises(audio.AudioError, match="notes.mp3: cannot write tags"):
        tags.write_tags(path, WRITTEN)
    assert path.read_bytes() == b"not audio" * 50 and [p.name for p in tmp_path.iterdir()] == ["notes.mp3"]


def test_genre_names_in_either_taxonomy():
    assert tags.genre_name("hiphop", "fma") == "Hip-Hop" and tags.genre_name("Hip-Hop", "gtzan") == "hiphop"
    assert tags.genre_name("Electronic", "gtzan") == "electronic"  # no GTZAN counterpart: GTZAN's spelling
    assert tags.genre_name("Electronic", "fma") == "Electronic" and tags.genre_name("hiphop", "model") == "hiphop"
    assert tags.genre_name("hiphop", {"hiphop": "Rap"}) == "Rap" and tags.genre_name("rock", {"x": "y"}) == "rock"
    fma_small = ("Electronic", "Experimental", "Folk", "Hip-Hop", "Instrumental", "International", "Pop", "Rock")
    assert tags.taxonomy(tags.GTZAN) == "gtzan" and tags.taxonomy(fma_small) == "fma"
    assert tags.taxonomy(fma_small, "gtzan") == "gtzan" and tags.taxonomy(("ambient",)) == "custom"
    assert tags.taxonomy(tags.GTZAN, {"hiphop": "Rap"}) == "custom"
    with pytest.raises(ValueError, match="names must be one of model, fma, gtzan"):
        tags.genre_name("rock", "klingon")


def test_model_names(tmp_path):
    from utils.models.predict import DEFAULT_MODEL

    assert tags.model_name(None) == tags.model_name("gtzan") == tags.model_name(DEFAULT_MODEL) == "gtzan"
    assert tags.model_name("fma-small") == "fma-small"
    assert tags.model_name(tmp_path / "m.keras") == str(tmp_path / "m.keras")
