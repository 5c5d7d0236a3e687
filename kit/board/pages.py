"""Rendering a leaderboard: terminal table, Markdown page and a self-contained HTML page.

Everything that came from a participant (names, file names, model names, rejection
reasons quoting their files) is escaped for the format it goes into, after its control
characters are made visible (:func:`kit.safetext.printable`: no ANSI escape reaches a
terminal, no bidi override or newline a page); the HTML page has no scripts and no
external resources, its plots are embedded PNGs.
"""
import base64
import html
import io
import math
from datetime import datetime, timezone

import pandas as pd

from kit._version import __version__
from kit.data.tanimoto_bins import BIN_LABELS
from kit.scoring.metrics import BREAKDOWN_LABELS, DIFFERENT_MOLECULE_BIN, SAME_MOLECULE_BIN, bin_tick
from kit.safetext import printable
from kit.competition.folder import PRIVATE, PUBLIC

#: Participants drawn in colour on the plots; the rest are grey.
MAX_PLOTTED = 10
#: The colour of the participants past :data:`MAX_PLOTTED` on the plots.
GREY = "#b8bec6"
#: Longest name shown whole in a plot legend; longer ones end in an ellipsis.
LEGEND_CHARS = 24


# --- shared --------------------------------------------------------------------------


def _rows(standings):
    """Table rows as lists of display strings, with their column titles."""
    metric, private = standings.metric, standings.private
    titles = ["#", "participant"]
    titles += ["private", "public", "public #"] if private else ["public"]
    titles += ["entries", "model", "submitted (UTC)"]
    rows = []
    for item in standings.ranking.itertuples(index=False):
        cells = [str(item.rank), printable(item.participant)]
        if private:
            move = item.public_rank - item.rank
            shift = f" ({'+' if move > 0 else ''}{move})" if move else ""
            cells += [metric.format(item.private), metric.format(item.public), f"{item.public_rank}{shift}"]
        else:
            cells += [metric.format(item.public)]
        cells += [str(item.entries), printable(item.model or "-"), _when(item.time)]
        rows.append(cells)
    return titles, rows


def _submission_rows(standings):
    """The "all submissions" table: every scored file, by participant (in ranking order), newest first.

    A participant sees each of their files here, a worse new score too (the ranking
    keeps only their best).
    """
    metric, private, log = standings.metric, standings.private, standings.log
    titles = ["participant", "submitted (UTC)", "file", "model", "public"] + (["private"] if private else [])
    if log.empty:
        return titles, []
    order = {name: i for i, name in enumerate(standings.ranking["participant"])}
    log = log.assign(_who=log["participant"].map(order).fillna(len(order)))
    # Newest first; a row whose time the log cannot vouch for (NaT) goes last, in log order.
    log = log.sort_values(["_who", "participant", "time", "order"], ascending=[True, True, False, False],
                          na_position="last", kind="stable")
    rows = []
    for item in log.itertuples(index=False):
        cells = [printable(item.participant), _when(item.time), printable(item.file or "-"), printable(item.model or "-"),
                 metric.format(item.public)]
        if private:
            cells.append(metric.format(item.private))
        rows.append(cells)
    return titles, rows


def _title(standings):
    if standings.private:
        return f"{standings.competition} leaderboard: Final standings"
    return f"{standings.competition} leaderboard"


def _subtitle(standings):
    metric = standings.metric
    if standings.private:
        basis = ("final standings on the Private rows (each participant's chosen final submissions, "
                 "else their best Public submission)")
    else:
        basis = "best Public score per participant; Private scores hidden until revealed"
    return f"{metric.describe()}; {basis}; ties go to the earlier submission"


def _when(value):
    try:
        return value.strftime("%Y-%m-%d %H:%M")
    except (AttributeError, ValueError):
        return "-"


def _summary(standings):
    log = standings.log
    if log.empty:
        return "No scored submissions yet: run `kit score FILE` (or `kit leaderboard --inbox DIR`)."
    return f"{len(standings.ranking)} participant(s), {len(log)} scored submission(s)."


# --- terminal ------------------------------------------------------------------------


def render_text(standings):
    """The leaderboard as an aligned plain-text table."""
    titles, rows = _rows(standings)
    lines = [_title(standings), _subtitle(standings), _summary(standings)]
    if rows:
        widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
        numeric = {0, 2, 3, 4, 5} if standings.private else {0, 2, 3}

        def fmt(cells):
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        lines += ["", fmt(titles).rstrip(), "  ".join("-" * w for w in widths)]
        lines += [fmt(r).rstrip() for r in rows]
    if standings.rejected:
        lines += ["", f"Rejected ({len(standings.rejected)}):"]
        lines += [f"  {printable(name)}: {printable(reason)}" for name, reason in standings.rejected]
    lines += [f"note: {printable(note)}" for note in standings.notes]
    return "\n".join(lines)


# --- Markdown ------------------------------------------------------------------------


def _md(text):
    """Text safe in a Markdown table cell: no raw HTML, no column breaks, no code spans."""
    text = html.escape(printable(text), quote=False)
    for char in "\\|`*_[]":
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


def render_markdown(standings):
    """The leaderboard as a Markdown page."""
    titles, rows = _rows(standings)
    lines = [f"# {_md(_title(standings))}", "", _md(_subtitle(standings)) + ".", "", _md(_summary(standings)), ""]
    if rows:
        lines.append("| " + " | ".join(_md(t) for t in titles) + " |")
        lines.append("|" + "|".join("---:" if t in ("#", "public", "private", "entries") else "---" for t in titles) + "|")
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        lines.append("")
        titles, rows = _submission_rows(standings)
        lines += [f"## All submissions ({len(rows)})", "", "Each participant's files, newest first.", ""]
        lines.append("| " + " | ".join(_md(t) for t in titles) + " |")
        lines.append("|" + "|".join("---:" if t in ("public", "private") else "---" for t in titles) + "|")
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        lines.append("")
    if standings.rejected:
        lines += [f"## Rejected files ({len(standings.rejected)})", ""]
        lines += [f"- {_md(name)}: {_md(reason)}" for name, reason in standings.rejected]
        lines.append("")
    lines += [f"_{_md(note)}_" for note in standings.notes]
    lines.append(f"Generated {_now()} by specsim-kit {__version__}.")
    return "\n".join(lines) + "\n"


# --- HTML ----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;
background:#f6f7f9;color:#1d2330}
main{max-width:1000px;margin:0 auto;padding:28px 24px 40px}
h1{font-size:26px;margin:0 0 4px;overflow-wrap:anywhere}h2{font-size:18px;margin:32px 0 10px}
p.sub{color:#556;margin:0 0 18px;font-size:14px;overflow-wrap:anywhere}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%;box-shadow:0 1px 3px rgba(0,0,0,.08)}
table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{padding:8px 12px;text-align:left;border-bottom:1px solid #e6e8ec;white-space:nowrap}
th{background:#2c3e57;color:#fff;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}
tr.top1 td{background:#fff6d5}tr.top2 td{background:#f2f4f7}tr.top3 td{background:#fbefe6}
td.who{white-space:normal;overflow-wrap:anywhere;min-width:8em;max-width:16em}
td.model,td.file{max-width:220px;overflow:hidden;text-overflow:ellipsis}
figure{margin:0;background:#fff;padding:12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
figure img{width:100%;height:auto;display:block}
figcaption{color:#556;font-size:13px;margin-top:6px}
.plots{display:grid;grid-template-columns:1fr;gap:18px}
ul.rejected{background:#fff;padding:12px 12px 12px 32px;box-shadow:0 1px 3px rgba(0,0,0,.08);font-size:14px}
ul.rejected li{margin:4px 0;word-break:break-word}
footer{color:#889;font-size:12px;margin-top:28px}
.empty{background:#fff;padding:24px;text-align:center;color:#556}
@media (max-width:600px){
main{padding:16px 10px 28px}h1{font-size:21px}
table{font-size:13px}th,td{padding:6px 7px}
td.model,td.file{max-width:120px}td.who{min-width:6em}
}
"""


def render_html(standings, metadata=None):
    """A self-contained HTML page: table, plots (embedded PNG) and rejected files."""
    def esc(text):
        return html.escape(printable(text))

    titles, rows = _rows(standings)
    numeric = {"#", "public", "private", "public #", "entries"}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(_title(standings))}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{esc(_title(standings))}</h1>",
        f'<p class="sub">{esc(_subtitle(standings))}.<br>{esc(_summary(standings))}</p>',
    ]
    if rows:
        parts.append(_html_table(titles, rows, numeric, top=True))
        parts.append('<h2>Plots</h2><div class="plots">')
        for title, caption, png in _plots(standings):
            parts.append(
                f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{png}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        parts.append("</div>")
        titles, rows = _submission_rows(standings)
        parts.append(f"<h2>All submissions ({len(rows)})</h2>"
                     '<p class="sub">Each participant\'s files, newest first: a new score that is worse than '
                     "their best shows here, not in the ranking.</p>")
        parts.append(_html_table(titles, rows, numeric))
    else:
        parts.append(f'<div class="empty">{esc(_summary(standings))}</div>')
    if standings.rejected:
        parts.append(f"<h2>Rejected files ({len(standings.rejected)})</h2><ul class=\"rejected\">")
        parts += [f"<li><b>{esc(name)}</b>: {esc(reason)}</li>" for name, reason in standings.rejected]
        parts.append("</ul>")
    for note in standings.notes:
        parts.append(f'<p class="sub">{esc(note)}</p>')
    parts.append(f"<footer>Generated {esc(_now())} by specsim-kit {esc(__version__)}.</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _html_table(titles, rows, numeric, top=False):
    """A table in its own scrolling box (a phone scrolls the table, not the page).

    Names that may be cut short on screen (model, file) carry their whole text in a
    ``title`` attribute; participant names wrap.
    """
    def esc(text):
        return html.escape(printable(text))

    head = "".join(f'<th class="num">{esc(t)}</th>' if t in numeric else f"<th>{esc(t)}</th>" for t in titles)
    body = []
    for row in rows:
        cls = f' class="top{row[0]}"' if top and row[0] in ("1", "2", "3") else ""
        cells = []
        for t, c in zip(titles, row):
            if t in numeric:
                cells.append(f'<td class="num">{esc(c)}</td>')
            elif _css_class(t) in ("model", "file"):
                cells.append(f'<td class="{_css_class(t)}" title="{esc(c)}">{esc(c)}</td>')
            else:
                cells.append(f'<td class="{_css_class(t)}">{esc(c)}</td>')
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _css_class(title):
    return {"model": "model", "file": "file", "participant": "who"}.get(title, "")


# --- plots ---------------------------------------------------------------------------


def _plots(standings):
    """``(title, caption, base64 PNG)`` for each plot.

    Drawn on :class:`matplotlib.figure.Figure` objects: the global backend (a notebook's
    inline plots) and pyplot's figure list are left alone.
    """
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        return [_history_plot(standings), _bins_plot(standings)]


_STYLE = {
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.8,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    "savefig.dpi": 110,
}


def _colours(standings):
    """A colour for each of the top participants (by the shown ranking)."""
    import matplotlib

    palette = matplotlib.colormaps["tab10"].colors
    top = list(standings.ranking["participant"])[:MAX_PLOTTED]
    return {name: palette[i % len(palette)] for i, name in enumerate(top)}


def _history_plot(standings):
    fig = history_figure(standings)
    caption = "Dots: every submission. Line: each participant's best so far."
    return "Public score over time", caption, _png(fig)


def history_figure(standings):
    """The "Public score over time" plot as a :class:`matplotlib.figure.Figure` (not yet saved).

    Examples
    --------
    >>> fig = history_figure(build_leaderboard("practice", write_pages=False))  # doctest: +SKIP
    >>> time_tick_labels(fig.axes[0])  # doctest: +SKIP
    (['12:00', '12:10', '12:20'], '2025-03-01')
    """
    metric, log = standings.metric, standings.log.sort_values(["time", "order"])
    log = log[log["time"].notna()]  # a row whose time is impossible (year 1, 9999) has no place on the axis
    colours = _colours(standings)
    fig, ax = _figure()
    others = [p for p in log["participant"].unique() if p not in colours]
    end = log["time"].max()
    for name in others + list(colours):
        own = log[log["participant"] == name]
        if own.empty:
            continue
        colour = colours.get(name, GREY)
        best = own["public"].map(metric.sort_key).cummin()
        best = best.map(lambda k: math.nan if k == math.inf else (k if metric.lower_is_better else -k)).tolist()
        # Carry each best to the latest submission of anyone: the line reads "best so far".
        times = own["time"].tolist() + [end]
        ax.plot(times, best + best[-1:], drawstyle="steps-post", color=colour,
                linewidth=2 if name in colours else 1, label=_short(name) if name in colours else None,
                zorder=3 if name in colours else 2)
        ax.scatter(own["time"], own["public"], color=colour, s=22, alpha=0.55, zorder=4 if name in colours else 2,
                   edgecolors="none")
    ax.set_title("Public score over time")
    ax.set_ylabel(f"Public {metric.name} ({'lower' if metric.lower_is_better else 'higher'} is better)")
    _time_axis(ax, log["time"])
    _legend(ax, len(others))
    return fig


def _bins_plot(standings):
    metric, ranking = standings.metric, standings.ranking
    column = "per_bin_private" if standings.private else "per_bin_public"
    usage = PRIVATE if standings.private else PUBLIC
    colours = _colours(standings)
    fig, ax = _figure()
    shown = [getattr(item, column) or {} for item in ranking.itertuples(index=False) if item.participant in colours]
    # Where the scorer knew which pairs are of one molecule, the top bin is drawn as its two halves.
    split = any(SAME_MOLECULE_BIN in bins for bins in shown)
    labels = BIN_LABELS[:-1] + [SAME_MOLECULE_BIN, DIFFERENT_MOLECULE_BIN] if split else BIN_LABELS
    # Competitions of pair types or a novelty split: their RMSEs to the right of the bins, after an
    # empty place (None) that breaks each line there.
    extra = [label for label in BREAKDOWN_LABELS if any(label in bins for bins in shown)]
    labels = labels + ([None] + extra if extra else [])
    x = list(range(len(labels)))
    # The participants past the coloured ones first, thin and grey, under the coloured lines.
    items = sorted(ranking.itertuples(index=False), key=lambda item: item.participant in colours)
    for item in items:
        bins = getattr(item, column) or {}
        y = [math.nan if bins.get(label) is None else bins[label] for label in labels]
        if item.participant not in colours:
            ax.plot(x, y, linewidth=1, color=GREY, zorder=2)
            continue
        score = metric.format(item.private if standings.private else item.public)
        ax.plot(x, y, marker="o", markersize=4, linewidth=1.8, color=colours[item.participant], zorder=3,
                label=f"{_short(item.participant)} ({score})")
    ax.set_xticks(x)
    ax.set_xticklabels([bin_tick(label) if label else "" for label in labels], rotation=0,
                       fontsize=7.5 if extra else 8.5)
    if split or extra:
        fig.subplots_adjust(bottom=0.2)  # room for the three-line ticks of the top bin's halves
    if extra:
        ax.axvline(labels.index(None), color=GREY, linewidth=1, linestyle=":")
    ax.set_xlabel("true Tanimoto similarity bin")
    ax.set_ylabel(f"RMSE on {usage} rows")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Per-bin RMSE of each participant's best ({usage} rows)")
    _legend(ax, max(0, len(ranking) - len(colours)))
    caption = "A flat, low line is a model that is good across the whole similarity range."
    if split:
        caption += (
            " The top bin is split: pairs of two spectra of one molecule (which share their precursor m/z) "
            "and pairs of different molecules."
        )
    if extra:
        caption += (
            " Right of the dotted line: RMSE on each kind of pair over all bins (ion-mode pair types; novelty bands, "
            "by the highest Tanimoto of the pair's less familiar molecule to any training molecule)."
        )
    return "Per-bin RMSE", caption, _png(fig)


def _figure():
    """One size and one set of margins for every plot, so they line up on the page."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.4))
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.08, right=0.76, top=0.9, bottom=0.14)
    return fig, ax


#: Tick formats of the time axis by tick spacing (years, months, days, hours, minutes, seconds): a
#: tick always reads as a date or a clock time, never as a bare day or second count ("02", "45").
TIME_FORMATS = ["%Y", "%b %Y", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"]
#: The same for a tick at the start of the next larger unit (a new year, month or day).
TIME_ZERO_FORMATS = ["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M:%S"]
#: The date (or hour) written once beside the axis when the ticks leave it out.
TIME_OFFSET_FORMATS = ["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"]


def _time_axis(ax, times):
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, formats=TIME_FORMATS, zero_formats=TIME_ZERO_FORMATS, offset_formats=TIME_OFFSET_FORMATS))
    if len(times) and times.min() == times.max():
        # One instant: give the axis some width so the point is not on the frame.
        centre = times.min()

        ax.set_xlim(centre - pd.Timedelta(hours=1), centre + pd.Timedelta(hours=1))
    ax.set_xlabel("submission time (UTC)")


def time_tick_labels(ax):
    """``(labels, offset)``: the texts of the time axis' ticks and the date written beside them.

    Read from the axis' locator and formatter, so the figure need not be drawn or saved.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> import pandas as pd
    >>> ax = Figure().add_subplot()
    >>> times = pd.Series(pd.to_datetime(["2025-03-01 12:00", "2025-03-01 12:40"]))
    >>> _ = ax.plot(times, [0.3, 0.2])
    >>> _time_axis(ax, times)
    >>> time_tick_labels(ax)
    (['12:00', '12:10', '12:20', '12:30', '12:40'], '2025-03-01')
    """
    formatter = ax.xaxis.get_major_formatter()
    labels = formatter.format_ticks(ax.xaxis.get_majorticklocs())
    return labels, formatter.get_offset()


def _legend(ax, hidden):
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    title = f"+{hidden} more in grey" if hidden else None
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, title=title,
              title_fontsize=8.5)


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(name, limit=LEGEND_CHARS):
    """A name for a plot legend: whole, or cut with a visible ellipsis (the table has it whole).

    Examples
    --------
    >>> _short("ada")
    'ada'
    >>> _short("a-very-long-participant-name-indeed", 12)
    'a-very-long…'
    """
    name = printable(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --- public pieces (the classroom server builds its live page from them) --------------

#: The HTML page's stylesheet.
STYLESHEET = _CSS


def table(standings):
    """``(titles, rows)`` of the leaderboard table, every cell a display string (not escaped).

    Examples
    --------
    >>> titles, rows = table(build_leaderboard("practice", write_pages=False))  # doctest: +SKIP
    """
    return _rows(standings)


def headings(standings):
    """``(title, subtitle, summary)`` lines shown above the table (not escaped)."""
    return _title(standings), _subtitle(standings), _summary(standings)


def plot_images(standings):
    """``(title, caption, base64 PNG)`` for each plot of the HTML page (matplotlib; not thread-safe)."""
    return _plots(standings)
