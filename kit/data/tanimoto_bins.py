"""The ten Tanimoto bins [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0] shared by pairs and metrics."""
import numpy as np

N_BINS = 10
BIN_EDGES = np.linspace(0.0, 1.0, N_BINS + 1)
BIN_LABELS = [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(BIN_EDGES[:-1], BIN_EDGES[1:])]

# The labels of the other breakdowns live here too, so that scoring reads them without RDKit.
POSITIVE, NEGATIVE, CROSS = "positive-positive", "negative-negative", "cross"
#: Every pair type (``pair_type`` of ``private/pair_details.csv``), in the order of their cells.
PAIR_TYPES = (POSITIVE, NEGATIVE, CROSS)
#: Lower edges of the novelty bands (the last band is closed at 1).
BAND_EDGES = (0.0, 0.4, 0.6, 0.8)
#: Novelty band labels, as in ``private/pair_details.csv`` and ``kit score --json``.
BAND_LABELS = tuple(f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(BAND_EDGES, BAND_EDGES[1:] + (1.0,)))


def bin_index(similarity):
    """Index (0-9) of the Tanimoto bin of each value; 1.0 falls in the top bin.

    ``value * 10`` is rounded to 9 decimals before the floor so that a value such as
    0.3, whose float times ten may come out a hair under 3, lands where a person reading
    the CSV expects it.

    Examples
    --------
    >>> bin_index([0.0, 0.05, 0.1, 0.95, 1.0]).tolist()
    [0, 0, 1, 9, 9]
    """
    scaled = np.round(np.asarray(similarity, dtype=float) * N_BINS, 9)
    return np.clip(np.floor(scaled).astype(np.int64), 0, N_BINS - 1)
