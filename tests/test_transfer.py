"""Genre head on musicnn embeddings, the composed window model, fine-tuning, zero-shot mapping.

Real audio: classical and metal GTZAN clips of ../shared/data/gtzan_mini (2 genres x 2 clips, 11
musicnn patches each), through the pretrained musicnn (models/musicnn/msd_musicnn.npz).
"""
import csv

import keras
import numpy as np
import pytest

from utils import audio
from utils.data.datasets import gtzan_index
from utils.audio.frontend import MUSICNN, LogMel, windows
from utils.models.pooling import mean_per_track
from utils.models.musicnn import MSD_TAGS, embed_patches, embedding_model, load_musicnn
from utils.models.transfer import (FMA_TAGS, FMA_UNMAPPED, GTZAN_TAGS, GTZAN_UNMAPPED, FineTuneConfig, HeadConfig,
                            fine_tune, genre_model, patch_features, pooled_embedding,
                            train_head, unfreeze, zero_shot)

GENRES = ("classical", "metal")
CONFIG = HeadConfig(epochs=20)


@pytest.fixture(scope="module")
def base() -> keras.Model:
    return load_musicnn()


@pytest.fixture(scope="module")
def clips(gtzan_sample, base):
    """Per clip: (genre index, MUSICNN windows (11, 187, 96), embeddings {layer: (11, dim)})."""
    lm = LogMel(MUSICNN)
    extractor = embedding_model(base, ("penultimate", "max_pool", "tags"))
    out = []
    for g, genre in enumerate(GENRES):
        for path in sorted((gtzan_sample / genre).glob("*.wav")):
            w = windows(lm(audio.load(path, MUSICNN.sample_rate)), MUSICNN, str(path))
            out.append((g, w, embed_patches(extractor, w)))
    return out


def stack(clips):
    x = np.concatenate([patch_features(e, CONFIG.layers) for _, _, e in clips])
    y = np.concatenate([np.full(len(w), g) for g, w, _ in clips])
    track = np.concatenate([np.full(len(w), i) for i, (_, w, _) in enumerate(clips)])
    return x, y, track


@pytest.fixture(scope="module")
def head(clips):
    train = [c for i, c in enumerate(clips) if i % 2 == 0]  # the .00000 clip of each genre
    x, y, _ = stack(train)
    return train_head(x, y, len(GENRES), CONFIG)


def test_head_trained_on_one_clip_per_genre_classifies_the_others(clips, head):
    held_out = [c for i, c in enumerate(clips) if i % 2 == 1]
    x, _, track = stack(held_out)
    probs = mean_per_track(np.asarray(head.predict_on_batch(x)), track, len(held_out))
    assert probs.shape == (2, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert list(probs.argmax(axis=1)) == [g for g, _, _ in held_out]


def test_composed_model_equals_head_on_embeddings(base, clips, head, tmp_path):
    model = genre_model(base, head, CONFIG.layers)
    assert model.input_shape == (None, MUSICNN.window_frames, MUSICNN.n_mels)
    _, w, emb = clips[1]
    direct = np.asarray(head.predict_on_batch(patch_features(emb, CONFIG.layers)))
    composed = np.asarray(model.predict_on_batch(w))
    np.testing.assert_allclose(composed, direct, atol=1e-5)
    model.save(tmp_path / "m.keras")  # the shipped form: one .keras file
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(w)), composed, atol=1e-6)


def test_fine_tuning_changes_weights_but_not_batch_norm_statistics(clips):
    base = load_musicnn()  # its own copy: fine-tuning changes weights in place
    x, y, _ = stack(clips)
    model = genre_model(base, train_head(x, y, len(GENRES), HeadConfig(epochs=2)), CONFIG.layers)
    conv = base.get_layer("timbral_74_conv").kernel
    bn = base.get_layer("penultimate").moving_mean
    before_conv, before_bn = keras.ops.convert_to_numpy(conv), keras.ops.convert_to_numpy(bn)
    windows_ = np.concatenate([w[:2] for _, w, _ in clips])  # 8 windows, 2 steps of 4
    labels = np.concatenate([np.full(2, g) for g, _, _ in clips])
    history = fine_tune(model, windows_, labels, FineTuneConfig(learning_rate=1e-4, epochs=1, batch_size=4))
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(keras.ops.convert_to_numpy(conv), before_conv)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn), before_bn)


def test_unfreeze_keeps_batch_norm_frozen(base):
    model = unfreeze(load_musicnn())
    trainable = {layer.name: layer.trainable for layer in model.layers}
    assert trainable["timbral_74_conv"] and trainable["penultimate_dense"]
    assert not trainable["input_bn"] and not trainable["penultimate"]


def test_pooled_embedding_is_mean_then_max(clips):
    _, _, emb = clips[0]
    v = pooled_embedding(emb, ("penultimate",))
    np.testing.assert_allclose(v, np.concatenate([emb["penultimate"].mean(0), emb["penultimate"].max(0)]),
                               rtol=1e-6)


def test_zero_shot_on_real_clips(gtzan_sample, base):
    """The MSD tags alone name jazz and hip-hop; classical has no tag and is never predicted."""
    lm, extractor = LogMel(MUSICNN), embedding_model(base, ("tags",))
    genres = sorted(GTZAN_TAGS) + list(GTZAN_UNMAPPED)
    names = ["jazz/jazz.00000.wav", "jazz/jazz.00001.wav", "hiphop/hiphop.00001.wav"]
    tags = np.stack([embed_patches(extractor, windows(lm(audio.load(gtzan_sample / n, 16000)), MUSICNN))
                     ["tags"].mean(axis=0) for n in names])
    probs = zero_shot(tags, genres, GTZAN_TAGS)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert [genres[i] for i in probs.argmax(axis=1)] == ["jazz", "jazz", "hiphop"]
    assert (probs[:, [genres.index(g) for g in GTZAN_UNMAPPED]] == 0).all()


def test_zero_shot_mappings_cover_the_genres(sample):
    gtzan = {clip.split(".")[0] for clip in gtzan_index()}  # Sturm's index names all 1,000 clips
    assert set(GTZAN_TAGS) | set(GTZAN_UNMAPPED) == gtzan and not set(GTZAN_TAGS) & set(GTZAN_UNMAPPED)
    with open(sample / "fma" / "metadata" / "genres.csv", newline="") as f:
        top = {row["title"] for row in csv.DictReader(f) if row["parent"] == "0"}
    assert len(top) == 16
    assert set(FMA_TAGS) | set(FMA_UNMAPPED) == top and not set(FMA_TAGS) & set(FMA_UNMAPPED)
    for mapping in (GTZAN_TAGS, FMA_TAGS):
        assert all(t in MSD_TAGS for tags in mapping.values() for t in tags)
    one_hot = np.eye(len(MSD_TAGS))[[MSD_TAGS.index("Hip-Hop"), MSD_TAGS.index("funk")]]
    probs = zero_shot(one_hot, sorted(top), FMA_TAGS)
    assert [sorted(top)[i] for i in probs.argmax(axis=1)] == ["Hip-Hop", "Soul-RnB"]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="embedding layers"):
        HeadConfig(layers=("logits",))
    with pytest.raises(ValueError, match="expected x"):
        train_head(np.zeros((3, 5)), np.zeros(3, int), 2, CONFIG)
    with pytest.raises(ValueError, match="tag probabilities"):
        zero_shot(np.zeros((2, 10)), ["blues"], GTZAN_TAGS)
    with pytest.raises(ValueError, match="tracks without windows"):
        mean_per_track(np.ones((2, 2)) / 2, np.array([0, 0]), 2)
