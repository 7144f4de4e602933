"""The training augmentation (pedalboard chains), the held-out conditions and the probe's (sox, ffmpeg), on a real clip."""
import numpy as np
import pytest

from utils import audio
from utils.audio.augment import FAMILIES, RandomChain, family_copy
from utils.evaluation import conditions

SR = 22050


@pytest.fixture(scope="module")
def clip(fma_wavs) -> np.ndarray:
    return audio.load(fma_wavs[0], SR, duration=8.0)


def test_chain_is_seeded_and_keeps_length(clip):
    chain = RandomChain()
    a, b, c = chain(clip, SR, 7), chain(clip, SR, 7), chain(clip, SR, 8)
    assert a.shape == clip.shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_chains_draw_varied_families_and_leave_out_the_excluded_one():
    drawn = [RandomChain().families(s) for s in range(200)]
    assert {f for fs in drawn for f in fs} == set(FAMILIES)
    assert {len(fs) for fs in drawn} == {1, 2, 3}
    assert all("codec" not in RandomChain(exclude=("codec",)).families(s) for s in range(200))
    with pytest.raises(ValueError, match="exclude"):
        RandomChain(exclude=("vinyl",))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_changes_the_sound(clip, family):
    z = family_copy(family, clip, SR, 3)
    assert z.shape == clip.shape and np.isfinite(z).all()
    assert np.abs(z - clip).max() > 1e-3


@pytest.mark.skipif(not conditions.available(), reason="needs the sox and ffmpeg programs (.ci/run installs them)")
@pytest.mark.parametrize("name", [*conditions.CONDITIONS, *conditions.PROBE_CONDITIONS])
def test_held_out_and_probe_conditions_come_from_sox_and_ffmpeg(clip, name):
    z = conditions.apply(name, clip, SR)
    assert z.dtype == np.float32 and np.isfinite(z).all() and z.ndim == 1
    assert np.array_equal(z, conditions.apply(name, clip, SR))  # repeatable: sox -R seeds its dither and noise
    program, args = (conditions.CONDITIONS | conditions.PROBE_CONDITIONS)[name]
    speed = float(args[1]) if program == "sox" and args[0] == "speed" else 1.0  # a longer copy is cut to the clip
    assert len(z) == pytest.approx(min(len(clip), len(clip) / speed), abs=2)
    n = min(len(z), len(clip))
    assert np.abs(z[:n] - clip[:n]).max() > 1e-3
    if name == "sox_gain_-20dB":
        assert np.sqrt(np.mean(z ** 2) / np.mean(clip ** 2)) == pytest.approx(0.1, rel=0.01)
    if name == "sox_gain_+6dB_clipped":
        assert np.abs(z).max() == pytest.approx(1.0, abs=1e-3) and np.mean(np.abs(z) > 0.999) > 1e-3


def test_the_probe_tries_conditions_the_experiment_does_not():
    assert not set(conditions.PROBE_CONDITIONS) & set(conditions.CONDITIONS)
    assert not set(conditions.PROBE_CONDITIONS.values()) & set(conditions.CONDITIONS.values())


@pytest.mark.skipif(not conditions.available(), reason="needs the sox program (.ci/run installs it)")
@pytest.mark.parametrize("name, args", [(n, a) for n, (program, a) in
                                        (conditions.CONDITIONS | conditions.PROBE_CONDITIONS).items()
                                        if program == "sox_noise"])
def test_noise_conditions_have_the_snr_they_are_named_for(clip, name, args):
    z = conditions.apply(name, clip, SR)
    y = np.round(np.clip(clip, -1, 1) * 32767) / 32767  # the clip as the 16-bit file sox mixed
    assert 10 * np.log10(np.mean(y ** 2) / np.mean((z - y) ** 2)) == pytest.approx(float(args[1]), abs=0.5)


def test_a_failing_program_is_one_clear_error(clip, monkeypatch):
    monkeypatch.setitem(conditions.CONDITIONS, "broken", ("sox", ("no_such_effect",)))
    with pytest.raises(RuntimeError, match="sox failed"):
        conditions.apply("broken", clip, SR)
