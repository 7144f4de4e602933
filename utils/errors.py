"""The one base error of fma-genre.

Every error the package raises for a user's input or environment derives
from :class:`FmaGenreError`; the CLI (:func:`utils.apps.cli.main`) turns
any of them into one line on stderr and an exit code, never a traceback.
An error about a file names it first: ``str(err)`` is ``"<path>: <problem>"``.

Examples
--------
>>> str(FmaGenreError("song.mp3", "not an audio file"))
'song.mp3: not an audio file'
>>> str(FmaGenreError("no model given"))
'no model given'
"""
from __future__ import annotations

import os


class FmaGenreError(Exception):
    """An input, file or setting that cannot be used; the message says what to do.

    Parameters
    ----------
    path_or_problem : the file at fault, or the whole message when ``problem`` is not given
    problem : what is wrong with ``path``
    """

    def __init__(self, path_or_problem: str | os.PathLike, problem: str | None = None) -> None:
        if problem is None:
            self.path, self.problem = None, str(path_or_problem)
            super().__init__(self.problem)
        else:
            self.path, self.problem = str(path_or_problem), problem
            super().__init__(f"{self.path}: {problem}")
