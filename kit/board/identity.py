"""Participant identity: the one place that decides what a name is and who it belongs to.

Two functions, used by every way a name enters the kit (inbox file names, the classroom
server's accounts, ``--participant`` on the command line):

- :func:`check_participant_name` accepts or refuses a name and returns its display form
  (Unicode NFKC, spaces tidied, otherwise as first written).
- :func:`participant_key` turns a name into its identity key: two names with the same key
  are the same person (``Bob``, ``BOB``, fullwidth ``ｂｏｂ`` and Cyrillic ``Вов``).

Why the ``confusable-homoglyphs`` package and not only :mod:`unicodedata`: the standard
library knows categories and normal forms but neither the Unicode *Script* property
(needed to see that ``Bоb`` mixes Latin and Cyrillic) nor the Unicode confusables table
(needed to see that Cyrillic ``о`` *looks like* Latin ``o``). The package ships both as
data from the Unicode consortium (``Scripts.txt`` and UTS #39 ``confusables.txt``), with
no dependencies. :mod:`unicodedata` still does the normal forms and general categories.

Rules (UTS #39 "highly restrictive" profile, narrowed to what a name in a class needs):

- letters, combining marks on a letter, decimal digits, space, ``.``, ``_``, ``-`` only;
  it starts and ends with a letter or digit (no ``..``, hidden ``.name``, ``-option``);
- no control, format (zero-width, bidi override), private-use, unassigned, filler or
  other default-ignorable characters (combining grapheme joiner, variation selectors,
  soft hyphen, tags) anywhere in what was written, even where NFKC would remove them;
- at most :data:`MAX_NAME_LENGTH` characters after NFKC: longer names are refused, never
  cut (cutting would turn two long names into one person);
- one script, or one of Unicode's CJK combinations (Latin with Han + Hiragana + Katakana,
  Han + Bopomofo or Han + Hangul); ``Bоb`` with a Cyrillic ``о`` is refused;
- only the scripts in everyday use (UAX #31's Recommended scripts): a name in Cherokee,
  Coptic, Canadian syllabics, Lisu, Osage or Deseret, whose letters pass for Latin ones,
  is refused.

Examples
--------
>>> check_participant_name("  José  Pérez ")
'José Pérez'
>>> check_participant_name("ｂｏｂ")
'bob'
>>> participant_key("Bob") == participant_key("BOB") == participant_key("ｂｏｂ")
True
>>> participant_key("Bob") == participant_key("ВОВ")   # all-Cyrillic look-alike
True
>>> check_participant_name("B\\u043eb")
Traceback (most recent call last):
...
kit.errors.UserError: participant name 'Bоb' mixes Latin and Cyrillic letters (look-alike 'о' U+043E); write it in one script
"""
import functools
import hashlib
import os
import re
import unicodedata

from confusable_homoglyphs import categories, confusables

from kit.errors import UserError
from kit.safetext import is_default_ignorable, printable

#: Longest participant name accepted (characters, after NFKC).
MAX_NAME_LENGTH = 40
#: Punctuation allowed inside a name.
NAME_PUNCTUATION = "._-"

# Characters that render as nothing besides Unicode's default-ignorable ones (Hangul
# fillers, the combining grapheme joiner, variation selectors, tags, the soft hyphen...:
# kit.safetext.is_default_ignorable): the Braille blank (So), which some use as an
# "invisible" name.
_INVISIBLE = frozenset("\u2800")
# Latin letters the UTS #39 confusables data leaves alone, or maps to another rare letter
# (small capital K to kra, small capital M to turned w), read by their Unicode names:
# a small capital, a modifier letter or a letter with a stroke, hook, bar or curl reads
# as its letter, as an accent does (see _latin_letter_table). Kra reads as small capital K.
_LETTER_NAME = re.compile(
    r"(?:LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |DOTLESS )?|MODIFIER LETTER (?:SMALL |CAPITAL )?"
    r"(?:CAPITAL )?)([A-Z])(?: WITH .*)?"
)
_EXTRA_LETTERS = {"\u0138": "k"}  # LATIN SMALL LETTER KRA
# Latin letters are all below this code point (the Basic and Supplementary Multilingual Planes).
_LATIN_END = 0x20000
# Canonical combining classes of marks that stay in the identity key: 0 (vowel signs and
# other marks that write another syllable in Brahmic and other scripts) and 9 (viramas).
# Every other mark is a diacritic on a letter (accents, dots, rings, overlays) and is
# dropped, so an accent nobody sees at a glance does not make another person.
_KEPT_MARK_CLASSES = (0, 9)
# General categories refused anywhere in the raw text: controls, format characters
# (zero-width joiners, bidi overrides, tags), surrogates, private use, unassigned,
# line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Scripts a name may be written in: the Recommended scripts of UAX #31 (Table 4), as UTS #39
# requires of identifiers. The others are historic or of limited use, and several are made
# of letters that pass for Latin ones (Cherokee, Coptic, Canadian syllabics, Lisu, Osage,
# Deseret): a name in them would look like another participant's and be someone else.
RECOMMENDED_SCRIPTS = frozenset({
    "COMMON", "INHERITED", "ARABIC", "ARMENIAN", "BENGALI", "BOPOMOFO", "CYRILLIC", "DEVANAGARI", "ETHIOPIC",
    "GEORGIAN", "GREEK", "GUJARATI", "GURMUKHI", "HAN", "HANGUL", "HEBREW", "HIRAGANA", "KANNADA", "KATAKANA",
    "KHMER", "LAO", "LATIN", "MALAYALAM", "MYANMAR", "ORIYA", "SINHALA", "TAMIL", "TELUGU", "THAANA", "THAI",
    "TIBETAN",
})
# Scripts that may share a name (UTS #39 highly restrictive); any single script is fine.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
# Combining marks allowed in a row on one letter (several accents are real, zalgo is not).
_MAX_MARKS = 3


def _show(text, limit=60):
    """A name as it can safely appear in a one-line message: quoted, invisible characters escaped."""
    text = str(text)
    shown = printable(text[:limit])
    return "'" + shown.replace("'", "\\'") + "'" + ("..." if len(text) > limit else "")


def _invisible(ch):
    """Whether ``ch`` is refused anywhere in a name: control, format, unassigned, private
    use, separator, or a character that renders as nothing (default-ignorable)."""
    return unicodedata.category(ch) in _REFUSED_CATEGORIES or ch in _INVISIBLE or is_default_ignorable(ch)


def _script(ch):
    """Unicode script of one character (``COMMON`` for punctuation and digits 0-9)."""
    try:
        return categories.alias(ch)
    except Exception:  # the package's data is older than this Python's: unknown script
        return "UNKNOWN"


def _describe_char(ch):
    name = unicodedata.name(ch, "control character" if unicodedata.category(ch) == "Cc" else "unnamed character")
    return f"U+{ord(ch):04X} {name}"


def check_participant_name(name):
    """Check a participant name and return its display form.

    Parameters
    ----------
    name : str
        The name as written (a file name prefix, an account name, a ``--participant``).

    Returns
    -------
    str
        The name after Unicode NFKC, with outer spaces stripped and inner runs of spaces
        made one; otherwise as first written (case kept).

    Raises
    ------
    kit.errors.UserError
        With one line saying what is wrong: empty, over-long, a control, invisible or
        bidi character, a character outside letters, digits, space, ``.``, ``_``, ``-``,
        punctuation at either end, or letters from scripts that may not be mixed.

    Examples
    --------
    >>> check_participant_name("Ana_M.")
    Traceback (most recent call last):
    ...
    kit.errors.UserError: participant name 'Ana_M.' must start and end with a letter or digit, found '.' at the end
    >>> check_participant_name("ﬁona")
    'fiona'
    >>> check_participant_name("x" * 41)
    Traceback (most recent call last):
    ...
    kit.errors.UserError: participant name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' has 41 characters; at most
    40 are allowed (it is refused, not shortened)
    """
    if not isinstance(name, str):
        raise UserError(f"participant name must be text, found {type(name).__name__}")
    if len(name) > 8 * MAX_NAME_LENGTH:  # before any normalisation work on hostile input
        raise UserError(
            f"participant name {_show(name)} has {len(name)} characters; at most "
            f"{MAX_NAME_LENGTH} are allowed (it is refused, not shortened)"
        )
    for ch in name:
        if _invisible(ch):
            raise UserError(
                f"participant name {_show(name)} contains an invisible or control character "
                f"({_describe_char(ch)}); use letters, digits, space, '.', '_' or '-'"
            )
    text = " ".join(unicodedata.normalize("NFKC", name).split(" "))
    text = " ".join(part for part in text.split(" ") if part)
    if not text:
        raise UserError("participant name is empty; expected letters or digits")
    if len(text) > MAX_NAME_LENGTH:
        raise UserError(
            f"participant name {_show(text)} has {len(text)} characters; at most "
            f"{MAX_NAME_LENGTH} are allowed (it is refused, not shortened)"
        )
    marks = 0
    previous_letter = False
    for ch in text:
        category = unicodedata.category(ch)
        if _invisible(ch):  # NFKC never makes one, but what is shown is what is checked
            raise UserError(f"participant name {_show(text)} contains an invisible character ({_describe_char(ch)})")
        if category in ("Mn", "Mc"):
            marks += 1
            if not previous_letter or marks > _MAX_MARKS:
                raise UserError(
                    f"participant name {_show(text)} has a combining mark that is not on a "
                    f"letter ({_describe_char(ch)})"
                )
            continue
        marks = 0
        previous_letter = category.startswith("L")
        if previous_letter or category == "Nd" or ch == " " or ch in NAME_PUNCTUATION:
            if _invisible(ch):
                raise UserError(
                    f"participant name {_show(text)} contains an invisible character "
                    f"({_describe_char(ch)})"
                )
            continue
        raise UserError(
            f"participant name {_show(text)} contains {ch!r} ({_describe_char(ch)}); "
            f"use letters, digits, space, '.', '_' or '-'"
        )
    for where, ch in (("start", text[0]), ("end", text[-1])):
        if not (unicodedata.category(ch).startswith(("L", "M")) or unicodedata.category(ch) == "Nd"):
            raise UserError(
                f"participant name {_show(text)} must start and end with a letter or digit, "
                f"found {ch!r} at the {where}"
            )
    _check_scripts(text)
    return text


def _check_scripts(text):
    scripts = {}
    for ch in text:
        # Marks count too: a Devanagari vowel sign on a Latin letter is a mix (generic
        # accents are of the Inherited script and fit any letter).
        if unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd":
            script = _script(ch)
            if script not in ("COMMON", "INHERITED"):
                scripts.setdefault(script, ch)
    for script, ch in scripts.items():
        if script not in RECOMMENDED_SCRIPTS:
            raise UserError(
                f"participant name {_show(text)} is written in {script.replace('_', ' ').title()} "
                f"({_describe_char(ch)}), which is not among the scripts in everyday use (UAX #31) that names "
                "may use; write it in Latin or another everyday script"
            )
    if len(scripts) <= 1 or any(set(scripts) <= mix for mix in _ALLOWED_MIXES):
        return

    names = " and ".join(s.title() for s in sorted(scripts, key=lambda s: text.index(scripts[s])))
    main = _script(next(ch for ch in text if _script(ch) in scripts))
    found = confusables.is_confusable(text, preferred_aliases=[main, "COMMON", "INHERITED"])
    hint = ""
    if found:
        ch = found[0]["character"]
        hint = f" (look-alike {ch!r} U+{ord(ch):04X})"
    raise UserError(
        f"participant name {_show(text)} mixes {names} letters{hint}; write it in one script"
    )


@functools.lru_cache(maxsize=1)
def _skeleton_table():
    """Character -> prototype string from the UTS #39 confusables data.

    The package stores each non-prototype character with exactly one entry, its
    prototype, and each prototype with the list of its sources. Where two characters
    list only each other the direction is unknown, so both map to the smaller one.
    """

    data = confusables.confusables_data
    table = {}
    for char, glyphs in data.items():
        if len(char) != 1 or len(glyphs) != 1:
            continue
        target = glyphs[0]["c"].replace("\u200e", "").replace("\u200f", "")
        back = data.get(target, [])
        if len(back) == 1 and back[0]["c"].replace("\u200e", "") == char:
            target = min(char, target)
        if target != char:
            table[ord(char)] = target
    table.update(_latin_letter_table())
    return table


@functools.lru_cache(maxsize=1)
def _latin_letter_table():
    """Character -> ASCII letter for the Latin letters that read as one by their Unicode name.

    Small capitals (``ᴋ``, ``ꜰ``, ``ꞯ``), modifier letters, dotless letters and letters
    with a stroke, hook, bar or curl (``ƀ``, ``ɗ``, ``ø``) that neither NFKC nor the
    confusables data turn into their letter. Generated from the names of this Python's
    Unicode data, so new letters of a family come with it.

    Examples
    --------
    >>> table = _latin_letter_table()
    >>> "".join(table[ord(ch)] for ch in "ᴋꜰꞯᴍøƀɗȷ")
    'kfqmobdj'
    """
    table = {ord(ch): letter for ch, letter in _EXTRA_LETTERS.items()}
    for code in range(0x80, _LATIN_END):
        ch = chr(code)
        name = unicodedata.name(ch, "")
        match = name.startswith(("LATIN", "MODIFIER")) and _LETTER_NAME.fullmatch(name)
        # Only what NFKC and dropping accents leave as it is (participant_key does those first).
        if match and unicodedata.category(ch).startswith("L") and unicodedata.normalize("NFKC", ch) == ch:
            letter = match.group(1).lower()
            if _without_diacritics(ch).casefold() != letter:
                table[code] = letter
    return table


def _without_diacritics(text):
    """``text`` in NFD without the marks that only decorate a letter (see ``_KEPT_MARK_CLASSES``)."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.combining(ch) in _KEPT_MARK_CLASSES)


def participant_key(name):
    """The identity key of a name: same key, same person.

    NFKC, then the UTS #39 confusable skeleton of the form as written, of the upper-case
    and of the case-folded form, without diacritics (``Zoé`` is ``Zoe``; vowel signs and
    viramas, which write another syllable, are kept), repeated until nothing changes;
    spaces, ``_`` and ``-`` count as one separator. Latin look-alikes that the
    confusables data misses or maps to another rare letter are read by their Unicode
    names (small capitals ``ᴋ ᴍ ꜰ ꞯ``, letters with a stroke or hook such as ``ø`` and
    ``ɗ``: :func:`_latin_letter_table`).
    Like any skeleton it is deliberately coarse: ``I``/``l``/``1``, ``O``/``0`` and
    ``m``/``rn`` fold together, so ``Ian`` and ``lan`` are one person (a class can live
    with that; an impostor is worse). The key is for comparing and indexing only; show
    :func:`check_participant_name`'s display form to people. It follows the confusables
    data of the ``confusable-homoglyphs`` release installed: a stored key should be
    recomputed from the stored name when that package is upgraded.

    Parameters
    ----------
    name : str
        A name (normally one that :func:`check_participant_name` accepted).

    Returns
    -------
    str
        The key. Equal keys mean the same participant.

    Examples
    --------
    >>> participant_key("Bob") == participant_key("ｂｏｂ") == participant_key("bob")
    True
    >>> participant_key("AIice") == participant_key("Alice")   # capital I for small l
    True
    >>> participant_key("Zoé") == participant_key("Zoe") == participant_key("zoe\u0308")
    True
    >>> participant_key("Ana") == participant_key("Anna")
    False
    """
    text = unicodedata.normalize("NFKC", str(name)).strip()
    table = _skeleton_table()
    for _ in range(4):  # reaches a fixed point in two rounds for real names
        before = text
        # Each letter as written first: a small letter may look like a Latin one while its
        # capital does not (Greek small sigma looks like o, capital sigma like no letter).
        text = unicodedata.normalize("NFKC", _without_diacritics(text).translate(table))
        # Then upper case: capitals are where scripts look most alike (Cyrillic ВОВ,
        # Greek ΒΟΒ, and capital I that looks like small l).
        text = unicodedata.normalize("NFKC", _without_diacritics(text.upper()).translate(table))
        text = unicodedata.normalize("NFKC", _without_diacritics(text.casefold()).translate(table))
        text = text.casefold()
        if text == before:
            break
    return "_".join(part for part in text.replace("-", " ").replace("_", " ").split())


#: Longest participant name kept by :func:`sanitize_participant`.
MAX_NAME = MAX_NAME_LENGTH


def sanitize_participant(name):
    """A participant name safe in paths, tables, HTML and plot legends.

    For names that cannot be refused (``$USER``, rows of an existing log). The result is
    always accepted by :func:`kit.board.identity.check_participant_name`, and its
    :func:`kit.board.identity.participant_key` decides who it is. The name is kept as written
    where it can be: letters, digits, ``.``, ``_``, ``-`` and spaces stay (any run of
    white space is one space), characters that render as nothing (zero-width, bidi
    marks) go, anything else becomes ``_``; leading and trailing
    punctuation is dropped (no ``..``, no hidden names, no matplotlib-hidden ``_labels``);
    ``anonymous`` when nothing is left. A name that is still refused (over
    :data:`MAX_NAME` characters, mixed scripts) is never cut into another person's name:
    it keeps a readable start and gets 8 characters of its sha256.

    Examples
    --------
    >>> sanitize_participant("../../etc/passwd")
    'etc_passwd'
    >>> sanitize_participant("<script>alert(1)</script>")
    'script_alert_1_script'
    >>> sanitize_participant("José  Pérez")
    'José Pérez'
    >>> sanitize_participant("x" * 50)
    'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-77cf1206'
    """
    name = unicodedata.normalize("NFKC", str(name or ""))
    kept = []
    for ch in name:
        if unicodedata.category(ch)[0] == "M":
            # A combining mark stays on a letter (Devanagari and Thai vowel signs, accents).
            if kept and unicodedata.category(kept[-1])[0] in "LM":
                kept.append(ch)
        elif is_default_ignorable(ch) or unicodedata.category(ch) == "Cf":
            continue  # renders as nothing (zero-width space, bidi marks): the name as it is seen
        elif ch.isspace():
            kept.append(" ")
        else:
            kept.append(ch if ch.isalnum() or ch in "._-" else "_")
    name = re.sub(r"_+", "_", " ".join("".join(kept).split())).strip("._- ")
    if not name:
        return "anonymous"
    try:
        return check_participant_name(name)
    except UserError:
        pass
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    for start in (name[: MAX_NAME - 9].rstrip("._- "), "".join(ch for ch in name if ch.isascii())[: MAX_NAME - 9]):
        try:
            return check_participant_name(f"{start.strip('._- ')}-{digest}".lstrip("-"))
        except UserError:
            continue
    return f"participant-{digest}"


def canonical_participants(names):
    """Each name replaced by the first-written name of the same person.

    Names with one :func:`kit.board.identity.participant_key` (``Bob``, ``BOB``, ``ＢＯＢ``)
    are one participant in the ranking, shown as they first appear.

    Examples
    --------
    >>> canonical_participants(["Bob", "ann", "BOB", "Ann"])
    ['Bob', 'ann', 'Bob', 'ann']
    """
    first = {}
    return [first.setdefault(participant_key(name), name) for name in names]


def default_participant():
    """``$USER`` (sanitised), else ``you``."""
    return sanitize_participant(os.environ.get("USER") or os.environ.get("USERNAME") or "you")
