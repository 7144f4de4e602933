"""Stage 5, apps: what a user runs. The ``fma-genre`` command line, the music
library organizer, the web app, the notebook pipeline (with S3 output) and the
slide deck. Nothing below imports from here.
"""
