"""Stage 2, data: datasets as track tables (FMA, GTZAN, any folder), splits and
folds, the FMA downloader, the log-Mel cache (with Dask extraction) and batches
of its windows. Imports only :mod:`utils.audio` below it.
"""
