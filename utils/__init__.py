"""fma-genre: music genre classification from log-Mel spectrograms.

Modules, in the order data flows through them: :mod:`utils.audio` (decode),
:mod:`utils.frontend` (log-Mel spectrograms and windows), :mod:`utils.cli`
(the ``fma-genre`` command).
"""
__version__ = "0.1.0"
