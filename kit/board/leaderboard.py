"""The leaderboard as shown: a competition's ranking rendered, and its pages written (text, Markdown, HTML).

Where the competition's ``private/`` folder is here, the rows come from its store of
record (:mod:`kit.board.recording`, :mod:`kit.board.exports`); elsewhere (a handed-out
copy) the CSV export is read as it is (:mod:`kit.board.logfile`). The ranking is
:mod:`kit.board.ranking`'s.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path

from kit.board import pages
from kit.board.exports import export_shown, read_rejected
from kit.board.logfile import log_path, read_log, shown_frame, skipped_notes
from kit.board.ranking import rank_standings, submissions_frame
from kit.board.recording import has_store, open_store
from kit.competition.folder import Competition, load_competition
from kit.errors import UserError
from kit.fileio import write_text_atomic
from kit.paths import DEFAULT_COMPETITION
from kit.scoring.metrics import get_metric


@dataclass
class Standings:
    """A rendered leaderboard: the ranking and where its pages were written."""

    competition: str
    metric: object
    private: bool
    ranking: object
    log: object
    text: str
    markdown_path: Path = None
    html_path: Path = None
    log_path: Path = None
    rejected: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    #: True when this call set the store's reveal flag (``kit leaderboard --private``).
    revealed_now: bool = False


def build_leaderboard(competition=None, *, data=None, leaderboard=None, private=False, write_pages=True,
                      rejected=None, notes=(), store=None):
    """Rank a competition's submissions, render them, and write the exports and pages.

    Where the competition's ``private/`` folder is here, the rows come from its store
    (:func:`kit.board.recording.open_store`) and the CSV exports are rewritten first
    (:func:`kit.board.exports.export_logs`);
    elsewhere the CSV export ``leaderboard/<name>.csv`` is read as it is. Every score
    shown is rounded to :data:`kit.scoring.metrics.SHOWN_DECIMALS`, and ranks use the rounded values.

    Parameters
    ----------
    competition : Competition, str or Path, optional
        The competition (its name names the log); default ``practice``. When only the
        log exists, the name is enough.
    data, leaderboard : str or Path, optional
        Folders overriding ``./data`` and ``./leaderboard``.
    private : bool
        Reveal Private scores and rank on them (the final standings). Where the store is
        here this is the teacher's reveal: it sets the store's reveal flag (the one
        ``POST /api/reveal`` sets), so submissions close everywhere (server, inbox,
        ``kit score``) and every export shows the Private scores; ``.revealed_now`` says
        whether this call did it. A store whose flag is set is shown revealed either way.
    write_pages : bool
        Write ``leaderboard/<name>.md`` and ``.html`` (the HTML embeds its plots).
    rejected : list of (str, str), optional
        Files refused by classroom mode, with the reason, to list on the pages. Default:
        those the last inbox run refused (:func:`kit.board.exports.read_rejected`), so the final page keeps them.
    store : Database, optional
        The competition's open store (default: opened and closed here).

    Returns
    -------
    Standings
        ``.text`` is the terminal table; ``.ranking`` a DataFrame.

    Examples
    --------
    >>> standings = build_leaderboard("practice")   # doctest: +SKIP
    >>> print(standings.text)                        # doctest: +SKIP
    """
    comp, name, metric, meta, error = _describe(competition, data)
    path = log_path(name, leaderboard)
    notes = list(notes)
    revealed_now = False
    if comp is not None and (store is not None or has_store(comp)):
        db = store or open_store(comp, leaderboard, notes)
        try:
            if private and not db.revealed:
                # Never Private scores in a world-readable export of a competition still
                # open: showing them is the reveal, and the reveal closes submissions.
                db.set_revealed(True)
                revealed_now = True
            path, shown, private = export_shown(db, comp, leaderboard)
            log = submissions_frame(db, private)  # a team's rows under its name, final choices marked
        finally:
            if store is None:
                db.close()
    else:
        if error is not None and not path.is_file():
            raise error
        log = shown_frame(read_log(path))
    if rejected is None:
        rejected = read_rejected(path)
    ranking = rank_standings(log, metric, private=private)
    standings = Standings(name, metric, private, ranking, log, text="", rejected=list(rejected),
                          notes=notes + skipped_notes(log, path), log_path=path, revealed_now=revealed_now)
    standings.text = pages.render_text(standings)
    if write_pages:
        base = path.with_suffix("")
        standings.markdown_path = write_text_atomic(base.with_suffix(".md"), pages.render_markdown(standings))
        standings.html_path = write_text_atomic(base.with_suffix(".html"), pages.render_html(standings, meta))
    return standings


def _describe(competition, data=None):
    """(competition, name, metric, metadata, error) of a competition.

    When the competition folder is missing, a bare name still names its log; the
    competition is then None and ``error`` the UserError to raise if there is no log either.
    """
    if isinstance(competition, Competition):
        comp = competition
    else:
        try:
            comp = load_competition(competition, data=data)
        except UserError as exc:
            name = str(competition or DEFAULT_COMPETITION)
            if "/" in name or os.sep in name:
                raise
            return None, name, get_metric("rmse"), {"name": name}, exc
    return comp, comp.name, get_metric(comp.metadata.get("metric", "rmse")), comp.metadata, None
