"""``python -m utils.apps.cli``: the ``fma-genre`` command."""
import sys

from utils.apps.cli import main

sys.exit(main())
