"""Licence strings of library records, compared the way contributors actually write them.

MassBank records name their licence in free text: ``CC BY-NC-ND``, ``CC-BY-NC-ND``,
``cc by nc nd 4.0``, ``Attribution-NonCommercial-NoDerivatives 4.0 International`` or a
creativecommons.org address all mean the same licence. :func:`normalise_licence` maps
them to one spelling (``CC-BY-NC-ND-4.0``) so that ``kit prepare --exclude-licence`` and
the hosting commands' warning about restrictive licences see them as one.
"""
import re

from kit.errors import UserError
from kit.safetext import printable

#: Creative Commons licence elements in the order the licences' own names use.
CC_ELEMENTS = ("BY", "NC", "ND", "SA")
#: What a restriction forbids, for the hosting warning.
RESTRICTIONS = {"ND": "no derivatives", "NC": "non-commercial use only", "ARR": "no redistribution"}
MAX_PATTERN = 100
_WORDS = (
    (re.compile(r"CREATIVE[\s_-]*COMMONS"), " CC "),
    (re.compile(r"NON[\s_-]*COMMERCIAL"), " NC "),
    (re.compile(r"NO[\s_-]*DERIV(?:ATIVE|ATIVES|S)?\b"), " ND "),
    (re.compile(r"SHARE[\s_-]*ALIKE"), " SA "),
    (re.compile(r"ATTRIBUTION"), " BY "),
    (re.compile(r"ALL[\s_-]*RIGHTS[\s_-]*RESERVED"), " ARR "),
)
_NOISE = {"INTERNATIONAL", "UNPORTED", "GENERIC", "LICENSE", "LICENCE", "LICENSES", "LICENCES", "WWW", "ORG",
          "HTTP", "HTTPS", "DEED", "EN", "LEGALCODE", "VERSION", "VER"}
_URL = re.compile(r"(?:https?://)?(?:www\.)?creativecommons\.org/(?:licen[cs]es/(?P<elements>[a-z-]+)|"
                  r"publicdomain/(?P<zero>zero))(?:/(?P<version>\d+(?:\.\d+)*))?\S*", re.IGNORECASE)
_VERSION = re.compile(r"\d+(?:\.\d+)*")
#: ``v4.0``, ``V4``: a version with its letter.
_LETTERED_VERSION = re.compile(r"V(\d+(?:\.\d+)*)")


def normalise_licence(text):
    """One spelling for a licence string: upper case, words joined by ``-``, CC elements in order.

    Long names become their codes (``Attribution`` -> ``BY``, ``NonCommercial`` -> ``NC``,
    ``NoDerivatives`` -> ``ND``, ``ShareAlike`` -> ``SA``), a creativecommons.org address
    becomes the licence it names, and words such as ``International`` are dropped.

    Parameters
    ----------
    text : object
        A licence as written (converted with ``str``; None is empty).

    Returns
    -------
    str
        The normalised licence; empty when ``text`` names nothing.

    Examples
    --------
    >>> normalise_licence("cc by-nc-nd 4.0"), normalise_licence("CC-BY-ND-NC")
    ('CC-BY-NC-ND-4.0', 'CC-BY-NC-ND')
    >>> normalise_licence("https://creativecommons.org/licenses/by-nc-nd/4.0/")
    'CC-BY-NC-ND-4.0'
    >>> normalise_licence("Attribution-NonCommercial-NoDerivatives 4.0 International")
    'CC-BY-NC-ND-4.0'
    >>> normalise_licence("CC BY-NC-ND v4.0"), normalise_licence("Copyright (c) 2020 all rights reserved")
    ('CC-BY-NC-ND-4.0', 'COPYRIGHT-C-2020-ARR')
    """
    text = _URL.sub(_url_licence, str(text or ""))
    text = text.upper()
    for pattern, code in _WORDS:
        text = pattern.sub(code, text)
    tokens = [t.strip(".") for t in re.split(r"[^A-Z0-9.]+", text)]
    tokens = [t for t in tokens if t and t not in _NOISE]
    tokens = [version[1] if (version := _LETTERED_VERSION.fullmatch(t)) else t for t in tokens]
    if tokens[:2] == ["CC", "0"] or tokens[:2] == ["CC", "ZERO"]:
        tokens = ["CC0", *tokens[2:]]
    if tokens and tokens[0] in CC_ELEMENTS:
        tokens = ["CC", *tokens]  # "Attribution-NonCommercial ..." names a CC licence without saying CC
    if tokens and tokens[0] == "CC":
        start = end = 1
        while end < len(tokens) and tokens[end] in CC_ELEMENTS:
            end += 1
        elements = sorted(set(tokens[start:end]), key=CC_ELEMENTS.index)
        tokens = tokens[:start] + elements + tokens[end:]
    return "-".join(tokens)


def _url_licence(match):
    """The licence a creativecommons.org address names (its deed or language parts dropped)."""
    name = "CC0" if match.group("zero") else f"CC {match.group('elements')}"
    return f" {name} {match.group('version') or ''} "


def licence_matches(licence, pattern):
    """Whether a record's ``licence`` is, or holds, the licence ``pattern`` names, in any version.

    Both are normalised (:func:`normalise_licence`) into words. The pattern's words must
    appear, in order and next to each other, among the licence's words (``ALL RIGHTS
    RESERVED`` is in ``Copyright (c) 2020 all rights reserved``), and the word after them,
    if any, must not be another Creative Commons element: ``CC-BY-NC`` is not
    ``CC-BY-NC-ND``. Versions compare as numbers (``4`` is ``4.0``); a pattern without a
    version matches every version.

    Examples
    --------
    >>> licence_matches("CC BY-NC-ND 4.0", "CC-BY-NC-ND"), licence_matches("CC BY-NC-ND", "cc by nc nd")
    (True, True)
    >>> licence_matches("CC BY-NC-ND", "CC-BY-NC"), licence_matches("CC BY-NC-ND 3.0", "CC-BY-NC-ND-4.0")
    (False, False)
    >>> licence_matches("CC BY-NC-ND v4.0", "CC BY-NC-ND 4"), licence_matches("(c) 2020 All rights reserved", "ARR")
    (True, True)
    """
    have, want = _words(licence), _words(pattern)
    if not want:
        return False
    for start in range(len(have) - len(want) + 1):
        end = start + len(want)
        if have[start:end] == want and (end == len(have) or have[end] not in CC_ELEMENTS):
            return True
    return False


def _words(text):
    """The normalised words of a licence, versions without trailing ``.0`` (``4.0`` is ``4``)."""
    return [_version(w) if _VERSION.fullmatch(w) else w for w in normalise_licence(text).split("-") if w]


def _version(word):
    """A version without its trailing zero parts: ``4.0.0`` is ``4``."""
    parts = word.split(".")
    while len(parts) > 1 and not parts[-1].strip("0"):
        parts.pop()
    return ".".join(parts)


def exclusion_pattern(licence):
    """The ``--exclude-licence`` value that drops ``licence`` and its other versions and spellings.

    Examples
    --------
    >>> exclusion_pattern("CC BY-NC-SA 4.0"), exclusion_pattern("Copyright 2020, all rights reserved")
    ('CC-BY-NC-SA', 'ALL-RIGHTS-RESERVED')
    """
    words = normalise_licence(licence).split("-")
    if "CC" in words:
        start = end = words.index("CC") + 1
        while end < len(words) and words[end] in CC_ELEMENTS:
            end += 1
        return "-".join(words[start - 1 : end])
    if "ARR" in words:
        return "ALL-RIGHTS-RESERVED"
    return "-".join(w for w in words if not _VERSION.fullmatch(w))[:MAX_PATTERN]


def restrictions(licence):
    """The restrictions (keys of :data:`RESTRICTIONS`) a licence places on sharing a competition.

    Examples
    --------
    >>> sorted(restrictions("CC BY-NC-ND")), restrictions("CC BY-SA 4.0")
    (['NC', 'ND'], set())
    """
    return set(normalise_licence(licence).split("-")) & set(RESTRICTIONS)


def check_exclusions(patterns):
    """``--exclude-licence`` values as normalised licences; a UserError for one that names nothing.

    A value must hold a letter, at most :data:`MAX_PATTERN` characters and no control or
    invisible characters.

    Examples
    --------
    >>> check_exclusions(["CC BY-NC-ND", "cc-by-nc-nd", "CC-BY-NC"])
    ['CC-BY-NC-ND', 'CC-BY-NC']
    """
    found = []
    for pattern in patterns or ():
        if not isinstance(pattern, str):
            raise UserError(f"--exclude-licence {pattern!r}: expected a licence name such as CC-BY-NC-ND")
        normal = normalise_licence(pattern)
        if not re.search("[A-Z]", normal) or len(pattern) > MAX_PATTERN or printable(pattern) != pattern:
            raise UserError(f"--exclude-licence {printable(pattern, 60)!r}: expected a licence name such as "
                            f"CC-BY-NC-ND (up to {MAX_PATTERN} characters)")
        if normal not in found:
            found.append(normal)
    return found


def drop_licences(spectra, patterns, report=None, echo=print):
    """``spectra`` without the records whose licence is one of ``patterns`` (``--exclude-licence``).

    Licences are compared in one spelling (:func:`licence_matches`): ``CC BY-NC-ND``,
    ``cc-by-nc-nd`` and ``CC BY-NC-ND 4.0`` are one licence; ``CC-BY-NC`` does not match
    ``CC BY-NC-ND``. Each pattern's drops are counted in ``report`` and returned; a pattern
    that matches no record gets a note naming the licences found.

    Returns
    -------
    (list, dict)
        The kept spectra and ``{pattern: records dropped}``.

    Examples
    --------
    >>> records = [{"license": "CC BY-NC-ND"}, {"license": "CC-BY-NC-ND 4.0"}, {"license": "CC BY-NC"}]
    >>> kept, dropped = drop_licences(records, ["cc by nc nd"])
    >>> kept, dropped
    ([{'license': 'CC BY-NC'}], {'CC-BY-NC-ND': 2})
    """
    patterns = check_exclusions(patterns)
    dropped = dict.fromkeys(patterns, 0)
    if not patterns:
        return list(spectra), dropped
    verdict = {}  # a library has a handful of distinct licence strings: match each once
    kept = []
    for spectrum in spectra:
        licence = str(spectrum.get("license") or "")
        if licence not in verdict:
            verdict[licence] = next((p for p in patterns if licence_matches(licence, p)), None)
        if verdict[licence] is None:
            kept.append(spectrum)
        else:
            dropped[verdict[licence]] += 1
    for pattern, n in dropped.items():
        if report is not None and n:
            report.dropped[f"licence {pattern} (--exclude-licence)"] += n
        if not n:
            found = ", ".join(printable(v, 40) for v in sorted(verdict) if v) or "none"
            echo(f"note: --exclude-licence {pattern} matched no record (licences in the library: {found[:300]})")
    return kept, dropped
