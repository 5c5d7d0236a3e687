"""kit.board.identity: which names are accepted, how they are shown, and who is the same person."""
import doctest

import pytest

import kit.board.identity
from kit.board.identity import MAX_NAME_LENGTH, check_participant_name, participant_key
from kit.errors import UserError


def test_doctests():
    failures, tests = doctest.testmod(kit.board.identity, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
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


# --- the leaderboard's names agree with kit.board.identity --------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kit.board.identity import canonical_participants, sanitize_participant  # noqa: E402
from kit.board.logfile import logged_entry  # noqa: E402


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


# --- look-alike letters: one key, or refused ---------------------------------------------

SMALL_CAPITALS = "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘꞯʀꜱᴛᴜᴠᴡʏᴢ"   # every Latin letter but x has one


@pytest.mark.parametrize("small, letter", list(zip(SMALL_CAPITALS, "abcdefghijklmnopqrstuvwyz")))
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_every_small_capital_is_its_letter(small, letter, where):
    name = {"start": "{}anna", "middle": "an{}na", "end": "anna{}"}[where]
    assert check_participant_name(name.format(small))  # Latin: accepted
    assert participant_key(name.format(small)) == participant_key(name.format(letter))
    assert participant_key(name.format(small)) == participant_key(name.format(letter.upper()))


def _named_letters(pattern):
    """Characters whose Unicode name matches ``pattern`` (its last group the letter)."""
    import re
    import sys
    import unicodedata

    found = {}
    for code in range(0x80, sys.maxunicode + 1):
        match = re.fullmatch(pattern, unicodedata.name(chr(code), ""))
        if match:
            found[chr(code)] = match.groups()[-1]
    return found


def test_small_capitals_named_by_unicode_all_fold():
    # Every LATIN LETTER SMALL CAPITAL X this Python knows, beyond the list above.
    found = _named_letters(r"LATIN (?:CAPITAL )?LETTER SMALL CAPITAL ([A-Z])")
    assert set(SMALL_CAPITALS) <= set(found)
    for small, letter in found.items():
        assert check_participant_name(f"j{small}n")
        assert participant_key(f"j{small}n") == participant_key(f"j{letter}n"), small


def test_every_styled_latin_letter_is_its_letter_or_refused():
    # Modifier, fullwidth, mathematical, circled, squared, parenthesized letters: NFKC turns
    # most into the letter; what it leaves is not a letter and is refused.
    found = _named_letters(r"(?:MODIFIER LETTER|FULLWIDTH LATIN|MATHEMATICAL [A-Z -]+|CIRCLED LATIN|"
                           r"SQUARED LATIN|NEGATIVE SQUARED LATIN|NEGATIVE CIRCLED LATIN|PARENTHESIZED LATIN|"
                           r"REGIONAL INDICATOR SYMBOL) (?:SMALL |CAPITAL )?(?:LETTER )?([A-Z])")
    assert len(found) > 900
    folded = 0
    for styled, letter in found.items():
        try:
            check_participant_name(f"j{styled}n")
        except UserError:
            continue
        assert participant_key(f"j{styled}n") == participant_key(f"j{letter}n"), (styled, letter)
        folded += 1
    assert folded > 800


@pytest.mark.parametrize("look_alike, name", [
    ("ᴋᴍꜰꞯ", "kmfq"),                    # the small capitals confusable-homoglyphs 3.3.1 lacks
    ("ɑlice", "alice"), ("ɡreg", "greg"), ("ıan", "ian"), ("ȷane", "jane"), ("ɪvy", "ivy"), ("ʏuki", "yuki"),
    ("ĸim", "kim"),                      # kra, as a small capital K
    ("ƀob", "bob"), ("ɗan", "dan"), ("ƙim", "kim"), ("ƥeter", "peter"), ("ʈom", "tom"), ("ɦans", "hans"),
    ("Søren", "Soren"), ("Łukasz", "Lukasz"), ("Đorđe", "Dorde"), ("Ħana", "Hana"), ("ꝁim", "kim"),
    ("ᵃlice", "alice"), ("ᴬlice", "alice"),   # modifier letters (NFKC)
    # Greek, all one script
    ("ΤΟΜ", "TOM"), ("ΚΙΜ", "KIM"), ("ΗΑΝΝΑ", "HANNA"), ("ΝΙΚΟ", "NIKO"), ("ΖΟΕ", "ZOE"), ("ΑΒΕ", "ABE"),
    ("οο", "oo"), ("σσ", "oo"), ("ΥΧΡ", "YXP"),
    # Cyrillic, all one script
    ("АЕКМНОРСТХ", "AEKMHOPCTX"), ("асеорху", "aceopxy"), ("ѕіј", "sij"), ("һԁԛԝ", "hdqw"), ("ӏео", "leo"),
    ("Вов", "Bob"), ("Тот", "TOT"),
    # Armenian, all one script
    ("ոս", "nu"), ("հօ", "ho"), ("օս", "ou"), ("ցզ", "gq"),
    # mathematical letters, enclosed, squared and fullwidth (NFKC)
    ("𝐀𝐥𝐢𝐜𝐞", "Alice"), ("𝔞𝔩𝔦𝔠𝔢", "alice"), ("𝒶𝓁𝒾𝒸ℯ", "alice"), ("𝖆𝖑𝖎𝖈𝖊", "alice"), ("𝚊𝚕𝚒𝚌𝚎", "alice"),
    ("𝕒𝕝𝕚𝕔𝕖", "alice"), ("ⓐⓛⓘⓒⓔ", "alice"), ("Ⓐlice", "Alice"), ("🄰lice", "Alice"), ("ａｌｉｃｅ", "alice"),
    ("ℓiam", "liam"), ("ｌｉａｍ", "liam"),
    # combining marks on a letter: decorations that are easy to miss
    ("a\u0338lice", "alice"), ("a\u0336lice", "alice"), ("ali\u0307ce", "alice"), ("alic\u0323e", "alice"),
    ("al\u0334ice", "alice"), ("ali\u0335ce", "alice"), ("a\u0300\u0301lice", "alice"),
])
def test_look_alikes_are_one_person(look_alike, name):
    shown = check_participant_name(look_alike)
    assert participant_key(shown) == participant_key(name)
    assert participant_key(look_alike) == participant_key(name)


@pytest.mark.parametrize("name, script", [
    ("ᎪᏞᎥᏟᎬ", "Cherokee"), ("ᏫᎾᎬ", "Cherokee"), ("ꮃꮎꭼ", "Cherokee"),   # capitals and small letters
    ("ⲀⲖⲒⲤⲈ", "Coptic"), ("ⲃⲟⲃ", "Coptic"), ("ϤϢ", "Coptic"),
    ("ᗩᒪᑕ", "Canadian Aboriginal"), ("ᑭᗩᑌᒪ", "Canadian Aboriginal"),
    ("ꓮꓡꓲꓚꓰ", "Lisu"), ("ꓐꓳꓐ", "Lisu"),
    ("𐐒𐐄𐐒", "Deseret"), ("𐐺𐐬𐐺", "Deseret"),
    ("𐒴𐓂𐒴", "Osage"), ("𐓏𐓘𐓻", "Osage"),
    ("ᚱᛁᚲ", "Runic"), ("ⵀⵓⵍ", "Tifinagh"), ("𐌀𐌋𐌄", "Old Italic"), ("𐌰𐌻𐌴", "Gothic"),
    ("ⰀⰁⰂ", "Glagolitic"), ("ꕷꕸ", "Vai"), ("𐊠𐊡", "Carian"), ("𐐀𐐁", "Deseret"), ("ꔀꔁ", "Vai"),
    ("ߊߋ", "Nko"), ("𐓀𐓁", "Osage"), ("ᱚᱛ", "Ol Chiki"), ("ꁀꁁ", "Yi"),
])
def test_names_in_look_alike_or_rare_scripts_are_refused(name, script):
    with pytest.raises(UserError, match=f"written in {script}") as err:
        check_participant_name(name)
    message = str(err.value)
    assert "\n" not in message and "U+" in message


@pytest.mark.parametrize("name", ["Bᴏb\u0421", "ᎪLICE", "AⲖICE", "ꓮlice", "ᗩlice"])
def test_look_alike_scripts_mixed_with_latin_are_refused(name):
    with pytest.raises(UserError, match="mixes|written in"):
        check_participant_name(name)


@pytest.mark.parametrize("hidden", [
    "ali\u200dce", "ali\u200cce", "\u200falice", "alice\u200e", "\u202balice", "\u202aalice\u202c",
    "\u2067alice\u2069", "\u2066alice", "\u2068alice", "\u061calice", "alice\u202d", "al\u202eice",
    "ali\u034fce", "alice\ufe0f", "ali\u2060ce", "alice\u2063", "a\u180elice",
])
def test_joiners_and_direction_marks_are_refused(hidden):
    with pytest.raises(UserError, match="invisible"):
        check_participant_name(hidden)


@pytest.mark.parametrize("name", ["alice\u20dd", "⒜lice", "🅰lice", "alice\u0489"])
def test_enclosing_marks_and_symbols_that_are_not_letters_are_refused(name):
    with pytest.raises(UserError):
        check_participant_name(name)


@pytest.mark.parametrize("a, b", [("ᴋim", "Tim"), ("Søren", "Sören-Ann"), ("ꞯuinn", "guinn")])
def test_folding_look_alikes_keeps_other_names_apart(a, b):
    assert participant_key(a) != participant_key(b)


def test_the_letter_table_is_built_quickly_and_once():
    import time

    kit.board.identity._latin_letter_table.cache_clear()
    start = time.perf_counter()
    table = kit.board.identity._latin_letter_table()
    assert time.perf_counter() - start < 5 and table is kit.board.identity._latin_letter_table()
    assert all(len(v) == 1 and v.isascii() for v in table.values())
