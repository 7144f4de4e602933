"""``python -m utils.apps.cli``: the ``fma-genre`` command."""
from utils.apps.cli import console

console()
