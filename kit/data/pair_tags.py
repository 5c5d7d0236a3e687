"""The tags a test pair may carry beside its Tanimoto bin: its pair type and its novelty band.

Plain names with no dependency, so that the metrics (and the standalone Codabench scoring
program, which inlines them) read them without RDKit; :mod:`kit.data.pair_types` and
:mod:`kit.data.novelty` decide which pair gets which tag.

Examples
--------
>>> PAIR_TYPES
('positive-positive', 'negative-negative', 'cross')
>>> BAND_LABELS
('0.0-0.4', '0.4-0.6', '0.6-0.8', '0.8-1.0')
"""

POSITIVE, NEGATIVE, CROSS = "positive-positive", "negative-negative", "cross"
#: Every pair type, in the order of their cells (``pair_type`` in ``private/pair_details.csv``).
PAIR_TYPES = (POSITIVE, NEGATIVE, CROSS)

#: Lower edges of the novelty bands (the last band is closed at 1).
BAND_EDGES = (0.0, 0.4, 0.6, 0.8)
#: Band labels, as in ``private/pair_details.csv`` and ``kit score --json``.
BAND_LABELS = tuple(f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(BAND_EDGES, BAND_EDGES[1:] + (1.0,)))
