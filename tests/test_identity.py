"""kit.identity: which names are accepted, how they are shown, and who is the same person."""
import doctest

import pytest

import kit.identity
from kit.errors import UserError
from kit.identity import MAX_NAME_LENGTH, check_participant_name, participant_key


def test_doctests():
    failures, tests = doctest.testmod(kit.identity, optionflags=doctest.ELLIPSIS)
    assert tests > 0 and failures == 0


@pytest.mark.parametrize("written, shown", [
    ("Bob", "Bob"),
    ("  Bob  ", "Bob"),
    ("Bob   Smith", "Bob Smith"),
    ("ｂｏｂ", "bob"),                      # fullwidth
    ("ﬁona", "fiona"),                     # ligature
    ("José", "José"),                      # precomposed
    ("Jose\u0301", "José"),                # combining accent, composed by NFKC
    ("ana_m.lopez-2", "ana_m.lopez-2"),
    ("a..b", "a..b"),                      # no slash, so not a path step
    ("42", "42"),
    ("Иван", "Иван"),                      # one script other than Latin
    ("Ελένη", "Ελένη"),
    ("山田太郎", "山田太郎"),
    ("やまだ Taro", "やまだ Taro"),         # Latin + Han/Hiragana/Katakana is one allowed mix
    ("김민준", "김민준"),
    ("अनिल", "अनिल"),                       # Devanagari vowel signs are combining marks
    ("محمد", "محمد"),
    ("x" * MAX_NAME_LENGTH, "x" * MAX_NAME_LENGTH),
    ("Ｘ" * MAX_NAME_LENGTH, "X" * MAX_NAME_LENGTH),
])
def test_accepted_names(written, shown):
    assert check_participant_name(written) == shown


@pytest.mark.parametrize("written, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("\u3000\u3000", "empty"),                       # ideographic spaces
    ("x" * (MAX_NAME_LENGTH + 1), "at most 40"),
    ("x" * 100_000, "at most 40"),
    ("\ufdfa" * 3, "at most 40"),                    # one character that NFKC makes 18
    ("ab\u200bc", "ZERO WIDTH SPACE"),
    ("a\u200db", "ZERO WIDTH JOINER"),
    ("a\u200cb", "ZERO WIDTH NON-JOINER"),
    ("\ufeffbob", "ZERO WIDTH NO-BREAK SPACE"),
    ("bob\u2060", "WORD JOINER"),
    ("\u202eboB", "RIGHT-TO-LEFT OVERRIDE"),
    ("bo\u2066b", "LEFT-TO-RIGHT ISOLATE"),
    ("bob\u00ad", "SOFT HYPHEN"),
    ("bob\U000e0041", "TAG"),
    ("\u3164", "HANGUL FILLER"),
    ("bob\u2800", "BRAILLE PATTERN BLANK"),
    ("bob\nsmith", "U+000A"),
    ("bob\rsmith", "U+000D"),
    ("bob\tsmith", "U+0009"),
    ("\x1b[31mred", "U+001B"),
    ("bob\x00", "U+0000"),
    ("bob\u2028", "LINE SEPARATOR"),
    ("bob\ue000", "U+E000"),                         # private use
    ("bob\ud800", "U+D800"),                         # lone surrogate
    ("..", "start and end"),
    (".", "start and end"),
    ("__", "start and end"),
    ("-rf", "start and end"),
    (".csv", "start and end"),
    (".hidden", "start and end"),
    ("bob.", "start and end"),
    ("\u2024\u2024", "start and end"),               # ONE DOT LEADER x2, NFKC gives '..'
    ("\uff0e\uff0e", "start and end"),               # fullwidth full stops
    ("a/b", "'/'"),
    ("../../etc/passwd", "'/'"),
    ("a\\b", "'\\\\'"),
    ("a\u2215b", "'∕'"),                             # division slash
    ("<script>", "'<'"),
    ("bob@x", "'@'"),
    ("=cmd", "'='"),
    ("bob😀", "GRINNING FACE"),
    ("b\u0301ob", None),                             # accent on a letter is fine: see below
    ("\u0301bob", "not on a letter"),
    ("z" + "\u0301" * 5, "not on a letter"),         # zalgo
    ("z" + "\u0301" * 4, None),                      # z+acute composes; three marks left
    ("bob²", None),                                  # NFKC: superscript two -> 2
    ("B\u043eb", "mixes Latin and Cyrillic"),
    ("\u0392ob", "mixes Greek and Latin"),
    ("paypa\u04cf", "Cyrillic"),
    ("bob\u0661", "Arabic"),                         # Arabic-Indic digit in a Latin name
    ("Ива\u043dn", "mixes Cyrillic and Latin"),
    ("Иван\u03b1", "mixes Cyrillic and Greek"),
    (42, "must be text"),
    (None, "must be text"),
    (b"bob", "must be text"),
])
def test_refused_names(written, reason):
    if reason is None:  # the few cases above that look hostile but are fine
        assert check_participant_name(written)
        return
    with pytest.raises(UserError) as err:
        check_participant_name(written)
    message = str(err.value)
    assert reason in message
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message


def test_error_message_names_the_look_alike():
    with pytest.raises(UserError, match="look-alike 'о' U\\+043E"):
        check_participant_name("B\u043eb")


@pytest.mark.parametrize("variant", [
    "Bob", "BOB", "bob", "bOb", "ｂｏｂ", "ＢＯＢ", " bob ",
    "ВОВ",      # all Cyrillic capitals
    "ΒΟΒ",      # all Greek capitals
    "Вов",      # Cyrillic, mixed case
    "B\u043eb",  # mixed script: refused by the check, still the same key
    "𝐁𝐨𝐛",      # mathematical bold, NFKC
])
def test_same_person(variant):
    assert participant_key(variant) == participant_key("Bob")


@pytest.mark.parametrize("a, b", [
    ("Alice", "AIice"),          # capital I for small l
    ("alice", "ALICE"),
    ("fiona", "ﬁona"),
    ("José", "Jose\u0301"),
    ("José", "Jose"),            # an accent is easily missed at a glance: one person, not two
    ("Zoë", "zoe"),
    ("zoe\u0335", "zoe"),        # overlay stroke
    ("ɑlice", "alice"),          # Latin alpha
    ("ᴀlice", "alice"),          # small capitals
    ("ʙoʙ", "bob"),
    ("ȷane", "jane"),            # dotless j
    ("Straße", "STRASSE"),
    ("bob smith", "bob_smith"),
    ("bob smith", "Bob-Smith"),
    ("bob  smith", "bob smith"),
    ("mike", "rnike"),           # rn looks like m
    ("bob0", "bobO"),
    ("bob1", "bobl"),
])
def test_same_key(a, b):
    assert participant_key(a) == participant_key(b)


@pytest.mark.parametrize("a, b", [
    ("Ana", "Anna"),
    ("bob", "bobby"),
    ("bob.smith", "bob_smith"),
    ("山田", "田山"),
    ("Иван", "Ivan"),
    ("रेखा", "रखा"),              # a vowel sign writes another syllable: kept
    ("राम", "रम"),
    ("क्षमा", "कषमा"),            # so does a virama
])
def test_different_people(a, b):
    assert participant_key(a) != participant_key(b)


def test_key_is_stable_and_idempotent():
    for name in ["Bob", "José Pérez", "Ελένη", "山田太郎", "mike", "Straße"]:
        key = participant_key(name)
        assert participant_key(key) == key
        assert participant_key(name) == key


def test_long_names_are_never_cut_into_one_person():
    a = "a" * MAX_NAME_LENGTH + "1"
    b = "a" * MAX_NAME_LENGTH + "2"
    for name in (a, b):
        with pytest.raises(UserError, match="refused, not shortened"):
            check_participant_name(name)
    assert participant_key(a) != participant_key(b)


# --- the leaderboard's names agree with kit.identity --------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kit.leaderboard import canonical_participants, logged_entry, sanitize_participant  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_sanitized_names_are_always_accepted(text):
    name = sanitize_participant(text)
    assert check_participant_name(name) == name
    assert participant_key(text) == participant_key(text)   # never raises, deterministic


@pytest.mark.parametrize("a, b", [("x" * 41, "x" * 42), ("a" * 40 + "1", "a" * 40 + "2"),
                                  ("B\u043eb" * 20, "Bob" * 20)])
def test_sanitize_never_cuts_two_names_into_one(a, b):
    assert sanitize_participant(a) != sanitize_participant(b)


@pytest.mark.parametrize("name, kept", [("अनिल", "अनिल"), ("Ελένη", "Ελένη"), ("Jose\u0301 Pérez", "José Pérez"),
                                        ("山田 太郎", "山田 太郎"), ("\u0301x", "x")])
def test_sanitize_keeps_letters_of_every_script(name, kept):
    assert sanitize_participant(name) == kept


def test_log_rows_of_one_person_are_one_participant():
    import pandas as pd

    assert canonical_participants(["Bob", "ann", "BOB", "ｂｏｂ", "Ann"]) == ["Bob", "ann", "Bob", "Bob", "ann"]
    log = pd.DataFrame({"sha256": ["h1", "h2"], "participant": ["Bob", "ann"]})
    assert logged_entry(log, "h1", "BOB") is not None
    assert logged_entry(log, "h1", "ann") is None


# Characters that render as nothing (Unicode Default_Ignorable_Code_Point): refused wherever
# they are, even those that are combining marks on a letter or letters (Hangul fillers).
DEFAULT_IGNORABLE = [
    "\u034f",                                              # COMBINING GRAPHEME JOINER (Mn)
    "\ufe00", "\ufe0e", "\ufe0f", "\U000e0100", "\U000e01ef",  # variation selectors (Mn)
    "\u180b", "\u180c", "\u180d", "\u180f",                # Mongolian free variation selectors (Mn)
    "\u180e",                                              # MONGOLIAN VOWEL SEPARATOR
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f",
    "\u2060", "\u2061", "\u2062", "\u2063", "\u2064",
    "\ufeff", "\u00ad", "\u061c",
    "\u115f", "\u1160", "\u3164", "\uffa0",                # Hangul fillers (Lo)
    "\u17b4", "\u17b5",                                    # Khmer inherent vowels (Mn)
    "\U000e0000", "\U000e0001", "\U000e0020", "\U000e0041", "\U000e007f",  # tags
    "\U0001bca0", "\U0001d173",
]


@pytest.mark.parametrize("ch", DEFAULT_IGNORABLE)
@pytest.mark.parametrize("where", ["end", "middle", "start"])
def test_default_ignorable_characters_are_refused(ch, where):
    name = {"end": f"zoe{ch}", "middle": f"zo{ch}e", "start": f"{ch}zoe"}[where]
    with pytest.raises(UserError, match="invisible") as err:
        check_participant_name(name)
    message = str(err.value)
    assert ch not in message and f"U+{ord(ch):04X}" in message


@pytest.mark.parametrize("ch", ["\u034f", "\ufe0f", "\U000e0100", "\u180b"])
def test_invisible_marks_after_an_accent_are_refused(ch):
    with pytest.raises(UserError, match="invisible"):
        check_participant_name(f"zoe\u0301{ch}")


@pytest.mark.parametrize("name", ["zoe\u0941", "bob\u093e", "anna\u0e34"])
def test_marks_of_another_script_on_a_latin_letter_are_refused(name):
    with pytest.raises(UserError, match="mixes"):
        check_participant_name(name)


@pytest.mark.parametrize("name", ["अनिल", "क्षमा", "สมชาย", "Zoë", "Nguyễn", "Åsa"])
def test_marks_of_the_letters_own_script_or_accents_are_fine(name):
    assert check_participant_name(name)


def test_inbox_style_look_alikes_of_one_name_are_one_person_or_refused():
    """The names a student tried, to get more daily submissions: each is refused or is zoe."""
    names = ["zoe", "zoe\u034f", "zoe\ufe00", "zoe\ufe0f", "zoe\U000e0100", "zoe\u180b", "zoe\u180c", "zoe\u180d",
             "zoé", "ZOE", "zoe\u0308", "ᴢoe", "zᴏe"]
    keys = set()
    for name in names:
        try:
            keys.add(participant_key(check_participant_name(name)))
        except UserError:
            continue
    assert keys == {participant_key("zoe")}
