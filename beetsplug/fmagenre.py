"""``beet fmagenre``: the genre of the music in a beets library, from its audio.

A beets plugin (enable it with ``plugins: fmagenre`` in beets' ``config.yaml``; it comes
with ``pip install fma-genre[beets]``). ``beet fmagenre [QUERY]`` classifies the matched
items with fma-genre's :class:`~utils.models.predict.Predictor` (a budget of 3 s windows
per track, decoded by seeking) and stores the result in flexible fields: ``fmagenre``
(the genre), ``fmagenre_probability``, ``fmagenre_model`` and ``fmagenre_taxonomy``.
``--write-genre`` also fills beets' own ``genres`` field when the model is sure enough
(``min_probability``) and the item has no genre (``--force`` replaces one); ``-w``
writes the tags into the files (:mod:`utils.apps.tags`); ``-p`` shows what would change
and changes nothing. Items the same model classified before are skipped unless ``--force``.
``auto: yes`` classifies what ``beet import`` adds.

Nothing is lost: a file that cannot be read or written gets one line and is left as it
was; each item's file is written first (atomically), then its row is stored in one
transaction, with Ctrl-C and SIGTERM held until both are done, so an interrupted run
leaves every item untouched or fully updated.

Configuration (beets' ``config.yaml``, every key optional)::

    fmagenre:
        model: gtzan           # a shipped model's name (gtzan, fma-small) or a .keras file with its .card.json
        windows: 12            # 3 s windows a track is judged on
        min_probability: 0.5   # --write-genre fills genres only at least this sure
        write_genre: no        # --write-genre by default
        names: model           # model, fma, gtzan, or a mapping {model's genre: name}
        auto: no               # classify on import
"""
from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from beets import ui
from beets.dbcore import types
from beets.library import Item, Library
from beets.plugins import BeetsPlugin

from utils import audio
from utils.apps import tags
from utils.apps.cli import quiet

if TYPE_CHECKING:  # the model's modules load only when a command classifies: beets imports every plugin at start
    from utils.models.predict import Predictor

@dataclass(frozen=True)
class Settings:
    """One run's choices: the configuration overlaid with the command's options.

    Attributes
    ----------
    model : a shipped model's name or a ``.keras`` file's absolute path (:func:`utils.apps.tags.model_name`)
    windows : the window budget per track
    min_probability : the least probability at which ``genres`` is filled
    write_genre : fill beets' ``genres`` field
    names : how genres are spelt (:func:`utils.apps.tags.genre_name`)
    force : classify items the same model did before, and replace a genre already there
    pretend : show, change nothing
    write : write the tags into the files too
    """

    model: str
    windows: int
    min_probability: float
    write_genre: bool
    names: str | Mapping[str, str]
    force: bool = False
    pretend: bool = False
    write: bool = False


@dataclass
class Tally:
    """What a run did, for its closing line."""

    classified: int = 0
    filled: int = 0
    kept: int = 0  # had a genre: not replaced without --force
    unsure: int = 0  # below min_probability
    skipped: int = 0  # classified by the same model before
    failed: int = 0  # could not be read or written

    def add(self, outcome: str) -> None:
        """Count one item classified, with what happened to its genres (:func:`_genre_outcome`)."""
        self.classified += 1
        if outcome:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def line(self, settings: Settings, total: int) -> str:
        verb = "would classify" if settings.pretend else "classified"
        parts = [f"{verb} {self.classified} of {total} items with {settings.model}"]
        if settings.write_genre:
            parts.append(f"genres {'to fill' if settings.pretend else 'filled'}: {self.filled}")
            if self.kept:
                parts.append(f"{self.kept} kept the genre they had (--force replaces it)")
            if self.unsure:
                parts.append(f"{self.unsure} below min_probability {settings.min_probability}")
        if self.skipped:
            parts.append(f"{self.skipped} done by this model before (--force does them again)")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return "; ".join(parts)


class FmaGenrePlugin(BeetsPlugin):
    """``beet fmagenre``, the ``fmagenre_*`` fields and, with ``auto``, classification on import."""

    item_types = {"fmagenre_probability": types.Float(2)}  # numeric: `beet ls fmagenre_probability:0.8..`

    def __init__(self) -> None:
        super().__init__()
        # model: the shipped default, windows: the Predictor's DEFAULT_BUDGET, unless set (read when a command runs)
        self.config.add({"min_probability": 0.5, "write_genre": False, "names": "model", "auto": False})
        self._predictors: dict[tuple[str, int], Predictor] = {}
        if self.config["auto"].get(bool):
            self.register_listener("import_task_files", self.imported)

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("fmagenre", help="classify the genre of items from their audio (fma-genre)")
        p = cmd.parser
        p.usage = "%prog [options] [QUERY]"
        p.add_option("-p", "--pretend", action="store_true", help="show what would change; change nothing")
        p.add_option("-w", "--write", action="store_true", help="also write the tags into the files")
        p.add_option("--write-genre", action="store_true", default=None,
                     help="fill beets' genres field (only if empty, unless --force)")
        p.add_option("-f", "--force", action="store_true",
                     help="classify items this model did before, and replace genres already set")
        p.add_option("-m", "--model", help="a shipped model's name or a .keras file (default: the config's model)")
        p.add_option("--windows", type="int", metavar="N",
                     help="3 s windows a track is judged on (default: the config's windows)")
        p.add_option("--min-probability", type="float", metavar="P",
                     help="fill genres only this sure or surer (default: the config's min_probability)")
        p.add_option("--names", help="genre names: model (as the model says them), fma or gtzan "
                                      "(default: the config's names)")
        cmd.func = self.command
        return [cmd]

    def settings(self, **options) -> Settings:
        """The configuration, with the options given (those not None) over it; one line if it is invalid."""
        from utils.models.predict import DEFAULT_BUDGET

        windows = self.config["windows"].get(int) if self.config["windows"].exists() else DEFAULT_BUDGET
        model = self.config["model"].as_str() if self.config["model"].exists() else None
        chosen = {"model": model, "windows": windows,
                  "min_probability": self.config["min_probability"].as_number(),
                  "write_genre": self.config["write_genre"].get(bool), "names": self.config["names"].get()}
        chosen.update({k: v for k, v in options.items() if v is not None})
        settings = Settings(**{**chosen, "model": tags.model_name(chosen["model"])})
        if settings.windows < 1:
            raise ui.UserError(f"fmagenre: windows must be 1 or more, got {settings.windows}")
        if not 0.0 <= settings.min_probability <= 1.0:
            raise ui.UserError(f"fmagenre: min_probability must be between 0 and 1, got {settings.min_probability}")
        if not isinstance(settings.names, Mapping) and settings.names not in tags.NAMES:
            raise ui.UserError(f"fmagenre: names must be one of {', '.join(tags.NAMES)} or a mapping of the "
                               f"model's genres to names, got {settings.names!r}")
        return settings

    def command(self, lib: Library, opts, args: list[str]) -> None:
        settings = self.settings(model=opts.model, windows=opts.windows, min_probability=opts.min_probability,
                                 write_genre=opts.write_genre, names=opts.names, force=bool(opts.force),
                                 pretend=bool(opts.pretend), write=bool(opts.write))
        items = list(lib.items(args))
        tally = Tally()
        try:
            with quiet.native_logs_filtered():  # TensorFlow's C++ log lines, should a model need Keras
                self.classify(lib, items, settings, tally, show=True)
        except KeyboardInterrupt:
            raise ui.UserError(f"interrupted after {tally.classified} items, each untouched or fully updated; "
                               "run it again to do the rest") from None
        ui.print_(tally.line(settings, len(items)))
        if tally.failed:
            raise ui.UserError(f"{tally.failed} of {len(items)} items failed (each named above), "
                               "left as they were")

    def imported(self, session, task) -> None:
        """``import_task_files``: classify what the import added, writing tags if the import writes them."""
        settings = dataclasses.replace(self.settings(), write=bool(session.config["write"].get(bool)))
        with quiet.native_logs_filtered():
            self.classify(session.lib, task.imported_items(), settings, Tally(), show=False)

    def predictor(self, settings: Settings) -> Predictor:
        """The model of ``settings``, loaded once per process (an import calls for it every album)."""
        from utils.errors import FmaGenreError
        from utils.models.predict import load_predictor

        key = (settings.model, settings.windows)
        if key not in self._predictors:
            try:
                self._predictors[key] = load_predictor(settings.model, max_windows=settings.windows)
            except FmaGenreError as err:
                raise ui.UserError(f"fmagenre: {err}") from None
        return self._predictors[key]

    def classify(self, lib: Library, items: Sequence[Item], settings: Settings, tally: Tally, show: bool) -> None:
        """Classify ``items`` and update each (fields, then file and row) as its result comes; count in ``tally``."""
        todo = [item for item in items if settings.force or item.get("fmagenre_model") != settings.model]
        tally.skipped += len(items) - len(todo)
        if not todo:
            return
        predictor = self.predictor(settings)
        taxonomy = tags.taxonomy(predictor.labels, settings.names)
        for item, (path, result) in zip(todo, predictor.predict_files([item.filepath for item in todo])):
            if isinstance(result, audio.AudioError):
                self._log.error("{}", result)
                tally.failed += 1
                continue
            name = tags.genre_name(result.genre, settings.names)
            probability = float(result.probabilities.max())
            item.update({"fmagenre": name, "fmagenre_probability": probability, "fmagenre_model": settings.model,
                         "fmagenre_taxonomy": taxonomy})
            outcome = _genre_outcome(item, settings, probability)
            if outcome == "filled":
                item.genres = [name]
            if show:
                ui.show_model_changes(item, fields=("fmagenre", "fmagenre_probability", "genres"), always=True)
                if outcome == "kept":
                    ui.print_(f"  genres kept: {'; '.join(item.genres)} (--force replaces it)")
                elif outcome == "unsure":
                    ui.print_(f"  genres left as they are: {probability:.2f} is below min_probability "
                              f"{settings.min_probability}")
            else:
                self._log.info("{}: {} {:.2f}", item.filepath, name, probability)
            written = tags.GenreTags(name if outcome == "filled" else None, name, probability, settings.model)
            with _uninterrupted():  # the file, the row and the count change together
                if not settings.pretend:
                    try:
                        self._save(lib, item, written if settings.write else None)
                    except audio.AudioError as err:
                        self._log.error("{}", err)
                        tally.failed += 1
                        continue
                tally.add(outcome)

    @staticmethod
    def _save(lib: Library, item: Item, written: tags.GenreTags | None) -> None:
        """Write ``written`` into the item's file (None: leave it), then store its row in one transaction.
        Raises :class:`utils.audio.AudioError` if the file cannot be written; nothing is stored then."""
        if written is not None:
            tags.write_tags(item.filepath, written)
            item.mtime = item.current_mtime()  # beets' own check that the file has not changed since
        with lib.transaction():
            item.store()


def _genre_outcome(item: Item, settings: Settings, probability: float) -> str:
    """What ``--write-genre`` does to ``item``'s genres: ``"filled"``, ``"kept"`` (it has one, no
    ``--force``), ``"unsure"`` (below ``min_probability``), or ``""`` (not asked)."""
    if not settings.write_genre:
        return ""
    if probability < settings.min_probability:
        return "unsure"
    return "kept" if item.genres and not settings.force else "filled"


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the body is done, then deliver them: an item's file and its
    row change together. Python runs signal handlers in the main thread only; elsewhere (beets' import
    threads) the body runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in held:
            signal.raise_signal(s)
