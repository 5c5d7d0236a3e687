"""The ranking: each participant's best submission, ties to the earlier one, and Kaggle's rule for final submissions.

As on Kaggle: each participant's best Public score, ties to the earliest submission.
With ``private=True`` the same chosen submissions are ranked on their Private score,
unless the participant chose final submissions (:func:`rank_standings`).
"""
import pandas as pd

from kit.board.exports import shown_entries, store_entries
from kit.board.logfile import entries_frame
from kit.board.store import SCORED


def rank(log, metric, private=False):
    """Best submission per participant, ranked.

    Each participant's submission with the best Public score is chosen (of equal
    scores, the earliest). Without ``private`` they are ranked on Public; with it, on the
    Private score of that same submission, and ``public_rank`` shows where each stood
    before. Ties (equal scores at the metric's decimals) go to the earlier submission,
    as on Kaggle; only submissions with equal scores and equal times share a rank (for
    example identical inbox files first seen together). A time the log cannot vouch
    for sorts last.

    Parameters
    ----------
    log : DataFrame
        From :func:`kit.board.logfile.read_log`.
    metric : kit.scoring.metrics.Metric
        Knows the direction and the reported decimals; ties compare at those decimals.
    private : bool

    Returns
    -------
    DataFrame
        ``rank, participant, public, private, public_rank, entries, time, model, file,
        per_bin_public, per_bin_private``, best first.
    """
    columns = ["rank", "participant", "public", "private", "public_rank", "entries", "time", "model", "file",
               "validation", "per_bin_public", "per_bin_private"]
    if log.empty:
        return pd.DataFrame(columns=columns)
    log = log.assign(_key=log["public"].map(metric.sort_key))
    log = log.sort_values(["_key", "time", "order"], kind="stable")
    best = log.drop_duplicates("participant", keep="first").copy()
    best["entries"] = best["participant"].map(log["participant"].value_counts()).astype(int)
    best["public_rank"] = _tie_ranks(best, "_key")
    if private:
        best["_pkey"] = best["private"].map(metric.sort_key)
        best = best.sort_values(["_pkey", "time", "order"], kind="stable")
        best["rank"] = _tie_ranks(best, "_pkey")
    else:
        best["rank"] = best["public_rank"]
    return best[columns].reset_index(drop=True)


def _tie_ranks(best, key):
    """Ranks of rows sorted by ``(key, time)``: 1, 2, 3 ..., shared only where key and time are both equal."""
    times = best["time"]
    same_time = times.eq(times.shift()) | (times.isna() & times.shift().isna())
    tied = best[key].eq(best[key].shift()) & same_time
    positions = pd.Series(range(1, len(best) + 1), index=best.index, dtype="float64")
    return positions.mask(tied).ffill().astype(int)


#: What a final row was ranked on (the ``basis`` column): the chosen final submissions, or the best Public one.
SELECTED, BEST_PUBLIC = "selected", "best Public"


class _Snapshot:
    """One read of the store's scored submissions, handed to :func:`store_entries`."""

    def __init__(self, db):
        self.rows = db.submissions(status=SCORED)

    def submissions(self, status=None):
        return self.rows


def submissions_frame(db, revealed=False):
    """The store's scored submissions as participants may see them, as a leaderboard log frame.

    The frame has the columns of :func:`kit.board.logfile.read_log`, in order of arrival,
    plus ``id`` (the submission's) and ``final`` (chosen as a final submission); scores
    are rounded, Private ones left out unless ``revealed``. A team member's rows are
    under the team's name: a team has one row on the leaderboard.
    """
    snapshot = _Snapshot(db)
    frame = entries_frame(shown_entries(store_entries(snapshot), revealed))
    teams = db.teams()
    frame["participant"] = [teams.get(name, name) for name in frame["participant"]]
    frame["id"] = [row["id"] for row in snapshot.rows]
    chosen = {submission for ids in db.finals().values() for submission in ids}
    frame["final"] = frame["id"].isin(chosen)
    return frame


def rank_standings(log, metric, private=False):
    """The ranking of a log frame, with Kaggle's rule for final submissions once ``private``.

    Before the reveal (``private`` False) this is :func:`rank`. After it, a
    participant with rows marked ``final`` ranks on the best Private score among them (ties
    to the earlier); one without, on the Private score of their best Public submission.
    ``public_rank`` and ``entries`` stay those of the Public ranking. The column ``basis``
    says which rule each row followed (:data:`SELECTED` or :data:`BEST_PUBLIC`).

    Examples
    --------
    >>> from kit.scoring.metrics import get_metric
    >>> log = entries_frame([{"time": "2026-03-01T12:00:00Z", "participant": "Ann", "public": 0.1, "private": 0.3},
    ...                      {"time": "2026-03-01T13:00:00Z", "participant": "Ann", "public": 0.2, "private": 0.1}])
    >>> ranked = rank_standings(log.assign(final=[False, True]), get_metric("rmse"), private=True)
    >>> ranked[["participant", "private", "basis"]].values.tolist()
    [['Ann', 0.1, 'selected']]
    """
    if not private or log.empty or "final" not in log:
        ranking = rank(log, metric, private=private)
        ranking["basis"] = BEST_PUBLIC
        return ranking
    chosen = log[log["final"].astype(bool)]
    chosen = chosen.assign(_key=chosen["private"].map(metric.sort_key))
    picked = chosen.sort_values(["_key", "time", "order"], kind="stable").drop_duplicates("participant")
    selecting = set(picked["participant"])
    keep = ~log["participant"].isin(selecting) | log.index.isin(picked.index)
    ranking = rank(log[keep], metric, private=True)
    public = rank(log, metric, private=False).set_index("participant")
    ranking["entries"] = ranking["participant"].map(public["entries"]).astype(int)
    ranking["public_rank"] = ranking["participant"].map(public["rank"]).astype(int)
    ranking["basis"] = [SELECTED if name in selecting else BEST_PUBLIC for name in ranking["participant"]]
    return ranking
