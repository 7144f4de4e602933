"""fma-genre: music genre classification from log-Mel spectrograms.

The package is grouped by stage, in the order data flows; each stage imports
only the stages before it:

- :mod:`utils.audio`: decode files, the log-Mel front end, degradations
- :mod:`utils.data`: datasets, splits, download, the window cache, batches
- :mod:`utils.models`: registry, architectures, musicnn transfer, training, cards, predict
- :mod:`utils.evaluation`: metrics, reports, baselines, experiments
- :mod:`utils.apps`: the ``fma-genre`` command line, organize, web, pipeline, slides

:mod:`utils.errors` (the one base error) and :mod:`utils.atomic` (atomic
file writes) serve every stage.
"""
__version__ = "0.1.0"
