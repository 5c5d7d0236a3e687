"""Progress bars whose time estimate leaves out the warm-up.

The first item of a loop often pays for imports, caches or compiled patterns (RDKit,
matchms); a plain tqdm bar divides that cost by one item and shows an absurd first ETA.
:func:`progress` restarts the bar's clock after the first item and smooths the rate over
the latest updates, so the estimate reflects the steady pace.
:func:`keras_verbosity` gives Keras one line per epoch where no terminal redraws a bar.
"""
import sys

from tqdm import tqdm

__all__ = ["keras_verbosity", "progress"]

# Rate averaged over recent updates (tqdm's exponential smoothing), redrawn at most twice a second.
SMOOTHING = 0.1
MININTERVAL = 0.5


def keras_verbosity(verbose, stream=None):
    """Keras's ``verbose`` for ``fit``: ``"auto"`` is a bar on a terminal, one line per epoch elsewhere.

    Keras's own ``"auto"`` draws its bar everywhere; in a log file, a CI log or a pipe
    each redraw is one more line (hundreds per epoch). A number is kept as given.

    Parameters
    ----------
    verbose : int or "auto"
    stream : file object, optional
        Where Keras writes (default ``sys.stdout``).

    Examples
    --------
    >>> import io
    >>> keras_verbosity("auto", io.StringIO()), keras_verbosity(0, io.StringIO())
    (2, 0)
    """
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        terminal = False
    return 1 if terminal else 2


def progress(iterable, **kwargs):
    """Iterate over ``iterable`` behind a tqdm bar whose ETA excludes the first item.

    Parameters
    ----------
    iterable : iterable
    **kwargs
        Passed to :class:`tqdm.tqdm` (``desc``, ``unit``, ``total``, ``disable``, ``file``,
        ...); ``smoothing`` and ``mininterval`` default to 0.1 and 0.5 s.

    Yields
    ------
    The items of ``iterable``.

    Examples
    --------
    >>> [x * 2 for x in progress(range(3), disable=True)]
    [0, 2, 4]
    """
    kwargs.setdefault("smoothing", SMOOTHING)
    kwargs.setdefault("mininterval", MININTERVAL)
    with tqdm(iterable, **kwargs) as bar:
        if bar.disable:
            yield from iterable
            return
        for index, item in enumerate(iterable):
            yield item
            if index == 0:
                # The first item counts, its time does not: the clock and the smoothed rate
                # start once the warm-up is done (the ETA shows "?" until the next update).
                bar.n = bar.last_print_n = 1
                bar.start_t = bar.last_print_t = bar._time()
            else:
                bar.update(1)
