"""The competition's pages (overview, evaluation, data, terms) written from ``competition.json``.

The same Markdown goes to Codabench (bundle pages) and to Kaggle (competition pages).
Names a participant could set (competition name, library file names, licence strings)
are written as code spans, so Markdown in them is shown, not interpreted.
"""
import re
from collections import Counter

from kit.competition.folder import DEFAULT_DAILY_LIMIT
from kit.constraints import Integral, Interval, check_param
from kit.data.licences import RESTRICTIONS, exclusion_pattern, restrictions
from kit.data.tanimoto_bins import BIN_LABELS
from kit.errors import UserError
from kit.paths import COMPETITION_FILE
from kit.safetext import printable

#: What a host needs of ``max_daily_submissions``: "no limit" (0 or null) is not one it can express.
DAILY_LIMIT = Interval(Integral, 1, None)

REFERENCE = (
    "Huber F, van der Burg S, van der Hooft JJJ, Ridder L (2021). MS2DeepScore: a novel deep learning "
    "similarity measure to compare tandem mass spectra. *J Cheminform* 13:84. "
    "https://doi.org/10.1186/s13321-021-00558-4"
)
MASSBANK = "MassBank (https://massbank.eu, https://github.com/MassBank/MassBank-data)"
#: Lines of an MGF record that name the record's licence. The value is stripped after the
#: match: a lazy value followed by optional spaces had two ways to split a run of spaces,
#: and took time quadratic in it.
_LICENCE_LINE = re.compile(rb"^(?:LICENSE|LICENCE)=([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


def code(text, limit=120):
    """``text`` as a Markdown code span, shortened and without backticks or line breaks.

    Examples
    --------
    >>> print(code("a`b"))
    `a'b`
    """
    text = " ".join(str(text).split()).replace("`", "'")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"`{text}`"


def licence_counts(files):
    """How many records of each licence the MGF files hold (``LICENSE=`` lines).

    Parameters
    ----------
    files : iterable of (str, Path)
        The public files (only ``.mgf`` ones are read).

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/kit-doc-lic.mgf").write_text("BEGIN IONS\\nLICENSE=CC BY\\nEND IONS\\n")
    >>> licence_counts([("x.mgf", Path("/tmp/kit-doc-lic.mgf"))])
    Counter({'CC BY': 1})
    """
    counts = Counter()
    for name, path in files:
        if name.lower().endswith(".mgf"):
            counts.update(m.strip().decode("utf-8", "replace") or "(empty)"
                          for m in _LICENCE_LINE.findall(path.read_bytes()))
    return counts


def hosted_licences(competition, files):
    """Records per licence among every spectrum the competition hands out, train and test.

    Test spectra lose their licence field (it would narrow down which record each one is),
    so the files alone undercount: competition.json's ``library.licenses``, written by
    ``kit prepare`` over all spectra, is used when it is there, the files' counts otherwise.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> hosted_licences(SimpleNamespace(metadata={"library": {"licenses": {"CC BY": 3}}}), [])
    Counter({'CC BY': 3})
    """
    recorded = competition.metadata.get("library", {})
    recorded = recorded.get("licenses") if isinstance(recorded, dict) else None
    if isinstance(recorded, dict) and all(isinstance(n, int) and not isinstance(n, bool) for n in recorded.values()):
        return Counter({str(name): n for name, n in recorded.items() if str(name) != "unknown"})
    return licence_counts(files)


def licence_warning(counts):
    """One line warning that the public files hold records whose licence restricts hosting them, or None.

    A competition's files are a derivative of the library (cleaned, stripped, renamed
    spectra), and a hosting platform redistributes them: records under a no-derivatives
    (ND) or non-commercial (NC) licence, or with all rights reserved, need the teacher's
    judgement. Both ``kit kaggle host`` and ``kit export codabench`` print it.

    Parameters
    ----------
    counts : Counter
        Records per licence, as :func:`licence_counts` gives them.

    Examples
    --------
    >>> from collections import Counter
    >>> print(licence_warning(Counter({"CC BY": 9, "CC BY-NC-ND": 2, "CC BY-NC 4.0": 3, "cc by-nc": 1})))
    warning: the competition hands out records whose licence restricts sharing them: 2 no derivatives, 6
    non-commercial use only (CC-BY-NC: 4, CC-BY-NC-ND: 2); check that hosting them is allowed, or rebuild the
    competition without them: kit prepare ... --exclude-licence CC-BY-NC --exclude-licence CC-BY-NC-ND
    >>> licence_warning(Counter({"CC BY": 9})) is None
    True
    """
    restricted = {name: n for name, n in counts.items() if restrictions(name)}
    if not restricted:
        return None
    totals = [f"{sum(n for name, n in restricted.items() if key in restrictions(name)):,} {what}"
              for key, what in RESTRICTIONS.items()
              if any(key in restrictions(name) for name in restricted)]
    # Every restricted licence, its spellings and versions counted as the option that drops them.
    by_pattern = Counter()
    for name, n in restricted.items():
        by_pattern[exclusion_pattern(name)] += n
    ranked = sorted(by_pattern.items(), key=lambda item: (-item[1], item[0]))
    names = ", ".join(f"{printable(pattern, 40)}: {n:,}" for pattern, n in ranked)
    options = " ".join(f"--exclude-licence {printable(pattern, 40)}" for pattern, _ in ranked)
    return (f"warning: the competition hands out records whose licence restricts sharing them: {', '.join(totals)} "
            f"({names}); check that hosting them is allowed, or rebuild the competition without them: "
            f"kit prepare ... {options}")


def build_pages(competition, files, title=None):
    """The four pages as ``{"overview"|"evaluation"|"data"|"terms": (title, markdown)}``.

    Parameters
    ----------
    competition : Competition
        The competition (its ``competition.json`` supplies sizes, label and limits).
    files : list of (str, Path)
        The public files (:func:`kit.hosting.files.public_files`).
    title : str, optional
        The competition's title on the platform.
    """
    meta = competition.metadata
    title = title or default_title(competition)
    return {
        "overview": ("Overview", _overview(meta, title)),
        "evaluation": ("Evaluation", _evaluation(meta)),
        "data": ("Data", _data(meta, files)),
        "terms": ("Terms", _terms(meta, files)),
    }


def default_title(competition):
    """A title from the competition's name: ``Spectral similarity: <name>``."""
    return f"Spectral similarity: {competition.name}"[:60]


def check_title(text):
    """``text`` on one line, 1 to 100 characters; a :class:`UserError` otherwise.

    Examples
    --------
    >>> check_title("  Spectral   similarity ")
    'Spectral similarity'
    """
    text = " ".join(str(text).split())
    if not text or len(text) > 100:
        raise UserError(f"--title {text!r}: expected 1 to 100 characters")
    return text


def brief_description():
    """One line describing the task (Kaggle's brief description, Codabench's description)."""
    return "Predict how similar two molecules are (fingerprint Tanimoto) from their MS/MS spectra alone."


def daily_limit(competition):
    """``max_daily_submissions`` from competition.json as a positive int (a host needs one).

    The default is the classroom modes' (:data:`kit.competition.folder.DEFAULT_DAILY_LIMIT`);
    "no limit" (0 or null), which a host cannot express, is refused.
    """
    value = competition.metadata.get("max_daily_submissions", DEFAULT_DAILY_LIMIT)
    try:
        return check_param(value, f"{competition.path / COMPETITION_FILE}: max_daily_submissions", DAILY_LIMIT)
    except TypeError as exc:  # a file's value of the wrong type is the file's fault, not a caller's
        raise UserError(str(exc)) from None


def _overview(meta, title):
    split = meta.get("split", {})
    return f"""# {title}

{brief_description()}

Each row of `test_pairs.csv` names two test spectra. Predict the structural similarity of the
two molecules behind them: the Tanimoto score of their fingerprints, a number in [0, 1].
The test spectra carry no structure (no SMILES, InChI, InChIKey, formula or name), and no
test molecule appears in the training data, so the model has to learn similarity from the
fragmentation patterns themselves.

This is the problem of MS2DeepScore, where a siamese neural network maps each spectrum to
an embedding and the cosine of two embeddings predicts the Tanimoto score:

> {REFERENCE}

- competition: {code(meta.get("name", "-"))}
- training spectra: {_count(split.get("train_spectra"))} of {_count(split.get("train_molecules"))} molecules
- test spectra: {_count(split.get("test_spectra"))} of {_count(split.get("test_molecules"))} molecules
- test pairs: {_count(meta.get("pairs", {}).get("total"))}, balanced over ten similarity bins

The starter kit (`specsim-kit`) trains baselines from a mean predictor to a siamese network
and writes valid submissions: `kit train siamese`, then `kit predict`.
"""


def _evaluation(meta):
    public = meta.get("public_fraction", 0.3)
    per_bin = meta.get("pairs", {}).get("per_bin") or []
    return f"""# Evaluation

Submissions are scored by the **root mean squared error** (lower is better) between the
predicted and the true similarity:

    RMSE = sqrt(mean((similarity - truth)^2))

exactly as `sklearn.metrics.root_mean_squared_error` and Kaggle compute it, reported to 5
decimals. Diagnostics come with every score: the RMSE within each bin of the true
similarity ({", ".join(BIN_LABELS)}), their unweighted mean ("binned RMSE", as MS2DeepScore
reports it; a model good only on the common low-similarity pairs scores badly on it), the
mean absolute error and Pearson's r.

## Public and Private

The test pairs are split at random, once, into Public rows ({public:.0%}) and Private rows
({1 - public:.0%}). During the competition the leaderboard shows the RMSE on the Public rows.
The final ranking uses the Private rows, which nobody has seen a score for: each
participant's best Public submission is scored on them when the final phase opens.

## Submission file

A CSV with the header `id,similarity` and one row per `id` of `test_pairs.csv`, in any
order, each similarity a finite number (values outside [0, 1] are scored as written):

    id,similarity
    0,0.4211
    1,0.0873

A file that breaks a rule is refused with one line that names the rule and the first
offending lines; it does not count as a score. At most {meta.get("max_daily_submissions", DEFAULT_DAILY_LIMIT)}
submissions a day. Pairs per bin: {", ".join(str(n) for n in per_bin) or "-"}.
"""


def _data(meta, files):
    label = meta.get("label", {})
    rows = "\n".join(f"| `{name}` | {path.stat().st_size:,} | {_FILE_NOTES.get(name, '')} |" for name, path in files)
    return f"""# Data

| file | bytes | what it holds |
|---|---:|---|
{rows}

## Label

{label.get("definition", "Tanimoto similarity of the two molecules' fingerprints")}.

The split is by molecule: no molecule is on both sides. Two different spectra of the same
molecule count as similarity 1 (the top bin). Test spectra keep their peaks, precursor m/z,
charge, ion mode, adduct and instrument, and get neutral ids (`test_000001`, ...) in
shuffled order.
"""


_FILE_NOTES = {
    "train.mgf": "training spectra with their structures (SMILES, InChI, InChIKey)",
    "test.mgf": "test spectra, every structure-revealing field removed",
    "test_pairs.csv": "`id,spectrum_id_a,spectrum_id_b`: the pairs to predict",
    "sample_submission.csv": "a valid submission (every similarity 0.5)",
    "competition.json": "how the competition was made: sizes, label, metric, limits, hashes",
}


def _terms(meta, files):
    counts = licence_counts(files)
    sources = [s for s in meta.get("library", {}).get("sources", []) if isinstance(s, dict)]
    names = ", ".join(code(s.get("source", "?"), 60) for s in sources) or "-"
    if any(s.get("source") == "simulated" for s in sources):
        origin = ("The spectra were generated by the kit's in-silico fragmenter from seeded edits of "
                  "molecules of RDKit's NCI sample: they are not measurements.")
    elif any("massbank" in str(s.get("source", "")).lower() for s in sources):
        origin = f"The spectra come from {MASSBANK}."
    else:
        origin = "The spectra come from the library named above."
    if counts:
        listing = "\n".join(f"- {code(name, 60)}: {n:,} records" for name, n in counts.most_common())
        licences = f"""{origin} Each record keeps the licence its contributor chose:

{listing}

Use and share them under those licences: name the library and the contributors wherever a
licence asks for attribution (every CC BY and dl-de/by licence does){_nc_note(counts)}."""
    else:
        licences = (f"{origin} The records carry no licence field: check the licence of the library they "
                    "came from before sharing them.")
    return f"""# Terms

By taking part you agree to:

1. submit only predictions made by your own code, one account per person;
2. not try to recover the answers from public spectral libraries or structure databases:
   the point is to predict similarity from spectra alone;
3. share nothing of the test set's structures you might find, and report any leak to the
   organisers;
4. accept that the final ranking is the one on the Private rows.

## Data licences

Library: {names}.

{licences}
"""


def _nc_note(counts):
    if any("NC" in restrictions(name) for name in counts):
        return "; records under an NC licence are for non-commercial use only"
    return ""


def _count(value):
    return f"{value:,}" if isinstance(value, int) else "-"
