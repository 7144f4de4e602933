"""The names of the models fma-genre trains, in one place and without Keras.

The CLI, the pipeline, the experiment scripts and the benchmarks read the
names from here, so listing them or validating an argument never imports a
deep-learning framework. :mod:`utils.models.architectures` builds the CNNs
by these names; ``"musicnn"`` is the pretrained MSD musicnn with a genre head
(:mod:`utils.models.transfer`).

Examples
--------
>>> CNN_MODELS
('cnn', 'crnn', 'parallel', 'short_res', 'cnn1d')
>>> "musicnn" in MODELS
True
"""
CNN_MODELS: tuple[str, ...] = ("cnn", "crnn", "parallel", "short_res", "cnn1d")
TRANSFER_MODELS: tuple[str, ...] = ("musicnn",)
MODELS: tuple[str, ...] = CNN_MODELS + TRANSFER_MODELS


def n_outputs(n_classes: int) -> int:
    """Output units of a model for ``n_classes`` classes: 1 (sigmoid) for two, else one each."""
    return 1 if n_classes == 2 else n_classes


def check_model(name: str, known: tuple[str, ...] = MODELS) -> str:
    """``name`` if it is one of ``known``, else a ValueError that lists them."""
    if name not in known:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(known)}")
    return name
