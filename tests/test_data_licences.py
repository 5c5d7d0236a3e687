"""kit.data.licences: one spelling for a licence, exact matching with versions, restrictions."""
import pytest

from kit.data.licences import check_exclusions, drop_licences, exclusion_pattern, licence_matches, normalise_licence, restrictions
from kit.errors import UserError


@pytest.mark.parametrize("written", [
    "CC BY-NC-ND", "CC-BY-NC-ND", "cc by nc nd", "CC_BY_NC_ND", " CC  BY - NC - ND ", "CC BY-ND-NC",
    "Creative Commons Attribution-NonCommercial-NoDerivatives", "Attribution-NonCommercial-NoDerivs",
    "CC BY-NC-ND-NC",
])
def test_spellings_of_one_licence_normalise_alike(written):
    assert normalise_licence(written) == "CC-BY-NC-ND"


@pytest.mark.parametrize("written, normal", [
    ("CC BY-NC-ND 4.0", "CC-BY-NC-ND-4.0"),
    ("https://creativecommons.org/licenses/by-nc-nd/4.0/", "CC-BY-NC-ND-4.0"),
    ("http://creativecommons.org/licenses/by/3.0/deed.en", "CC-BY-3.0"),
    ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
    ("CC0", "CC0"), ("CC-0", "CC0"), ("cc zero", "CC0"),
    ("dl-de/by-2-0", "DL-DE-BY-2-0"),
    ("CC BY-NC-ND 3.0 DE", "CC-BY-NC-ND-3.0-DE"),
    ("All rights reserved", "ARR"),
    ("", ""), (None, ""), ("---", ""),
])
def test_normal_forms(written, normal):
    assert normalise_licence(written) == normal


@pytest.mark.parametrize("licence, pattern, expected", [
    ("CC BY-NC-ND", "CC-BY-NC-ND", True),
    ("CC BY-NC-ND 4.0", "CC-BY-NC-ND", True),  # any version when the pattern names none
    ("CC BY-NC-ND 3.0 DE", "CC-BY-NC-ND", True),
    ("CC BY-NC-ND 4.0", "CC-BY-NC-ND-4.0", True),
    ("CC BY-NC-ND 3.0", "CC-BY-NC-ND-4.0", False),
    ("CC BY-NC-ND", "CC-BY-NC-ND-4.0", False),
    ("CC BY-NC-ND", "CC-BY-NC", False),  # a prefix of another licence is not that licence
    ("CC BY-NC-SA", "CC-BY-NC", False),
    ("CC BY-SA", "CC-BY", False),
    ("CC BY", "CC", False),
    ("CC BY", "CC-BY", True),
    ("dl-de/by-2-0", "dl-de/by", True),
    ("", "CC-BY", False),
    ("CC BY", "", False),
    # versions written with a letter or fewer parts, and a pattern inside a longer licence
    ("CC BY-NC-ND v4.0", "CC-BY-NC-ND", True),
    ("CC BY-NC-ND v4.0", "CC BY-NC-ND 4", True),
    ("CC BY-NC-ND 4.0", "CC BY-NC-ND 4", True),
    ("CC BY-NC-ND Version 4.0", "CC-BY-NC-ND-4.0.0", True),
    ("CC BY-NC-ND 4.1", "CC BY-NC-ND 4", False),
    ("CC BY-NC-ND 40", "CC BY-NC-ND 4", False),
    ("CC BY-NC-ND V3", "CC BY-NC-ND 4", False),
    ("Copyright (c) 2020 all rights reserved", "ALL RIGHTS RESERVED", True),
    ("Copyright 2019 Univ. X. All Rights Reserved.", "all-rights-reserved", True),
    ("all rights reserved", "Copyright", False),
    ("CC BY-NC-ND 4.0", "CC-BY-NC", False),  # still: a prefix of another CC licence is not that licence
    ("Licensed under CC BY-NC 4.0", "CC-BY-NC", True),
    ("Licensed under CC BY-NC-SA 4.0", "CC-BY-NC", False),
])
def test_licence_matches(licence, pattern, expected):
    assert licence_matches(licence, pattern) is expected


@pytest.mark.parametrize("licence, expected", [
    ("CC BY-NC-ND", {"NC", "ND"}), ("CC BY-ND", {"ND"}), ("CC BY-NC-SA 4.0", {"NC"}), ("CC BY", set()),
    ("CC0", set()), ("dl-de/by-2-0", set()), ("Non-commercial use only", {"NC"}), ("all rights reserved", {"ARR"}),
    ("ENDURANCE", set()), ("ncnd", set()),  # letters inside a word are not a licence element
])
def test_restrictions(licence, expected):
    assert restrictions(licence) == expected


def test_check_exclusions_merges_spellings_and_keeps_order():
    assert check_exclusions(["cc-by-nc", "CC BY-NC-ND", "CC_BY_NC"]) == ["CC-BY-NC", "CC-BY-NC-ND"]
    assert check_exclusions(None) == []


@pytest.mark.parametrize("pattern", ["", " ", "-", "4.0", "x" * 101, "CC\x00BY", "CC\u200bBY", 5, None])
def test_check_exclusions_refuses_what_names_nothing(pattern):
    with pytest.raises(UserError, match="--exclude-licence") as info:
        check_exclusions([pattern])
    assert "\n" not in str(info.value) and "\x00" not in str(info.value)


#: Spellings of MassBank's LICENSE field.
LICENCES = ["CC BY", "CC BY-NC-ND", "cc-by-nc-nd 4.0", "CC BY-NC", "CC BY NC ND", "CC-BY-ND-NC 3.0", "CC BY-NC-SA"]


@pytest.mark.parametrize("pattern, dropped", [
    ("CC-BY-NC-ND", {"CC BY-NC-ND", "cc-by-nc-nd 4.0", "CC BY NC ND", "CC-BY-ND-NC 3.0"}),
    ("cc by nc nd", {"CC BY-NC-ND", "cc-by-nc-nd 4.0", "CC BY NC ND", "CC-BY-ND-NC 3.0"}),
    ("CC_BY_NC_ND", {"CC BY-NC-ND", "cc-by-nc-nd 4.0", "CC BY NC ND", "CC-BY-ND-NC 3.0"}),
    ("Attribution-NonCommercial-NoDerivatives", {"CC BY-NC-ND", "cc-by-nc-nd 4.0", "CC BY NC ND", "CC-BY-ND-NC 3.0"}),
    ("https://creativecommons.org/licenses/by-nc-nd/4.0/", {"cc-by-nc-nd 4.0"}),
    ("CC BY-NC-ND 3.0", {"CC-BY-ND-NC 3.0"}),
    ("CC-BY-NC", {"CC BY-NC"}),  # not CC BY-NC-ND nor CC BY-NC-SA
    ("CC BY", {"CC BY"}),
])
def test_drop_licences_matches_every_spelling_and_no_other_licence(pattern, dropped):
    records = [{"license": name, "k": k} for k, name in enumerate(LICENCES * 2)]
    kept, counts = drop_licences(records, [pattern], echo=lambda line: None)
    assert {r["license"] for r in kept} == set(LICENCES) - dropped
    assert list(counts.values()) == [2 * len(dropped)] and len(kept) + 2 * len(dropped) == len(records)


def test_a_licence_matching_nothing_gets_a_note():
    lines = []
    kept, counts = drop_licences([{"license": "CC BY"}, {}], ["CC-BY-NC-ND"], echo=lines.append)
    assert len(kept) == 2 and counts == {"CC-BY-NC-ND": 0}
    assert lines == ["note: --exclude-licence CC-BY-NC-ND matched no record (licences in the library: CC BY)"]


def test_a_licence_note_escapes_what_the_library_wrote():
    lines = []
    drop_licences([{"license": "CC BY\x1b[2J"}], ["CC-BY-NC-ND"], echo=lines.append)
    assert "\x1b" not in lines[0] and "\\x1b" in lines[0]


@pytest.mark.parametrize("written, pattern", [
    ("CC BY-NC-SA 4.0", "CC-BY-NC-SA"), ("cc-by-nc", "CC-BY-NC"), ("Attribution-NonCommercial-NoDerivs", "CC-BY-NC-ND"),
    ("CC BY-NC-ND v4.0", "CC-BY-NC-ND"), ("Copyright (c) 2020 all rights reserved", "ALL-RIGHTS-RESERVED"),
    ("https://creativecommons.org/licenses/by-nd/4.0/", "CC-BY-ND"),
])
def test_the_exclusion_pattern_of_a_licence_drops_it(written, pattern):
    assert exclusion_pattern(written) == pattern and licence_matches(written, pattern)
    assert check_exclusions([pattern]) == [normalise_licence(pattern)]


@pytest.mark.parametrize("text", ["1" + ".0" * 50_000 + ".1", "CC BY " + "v" * 100_000 + "1", "NON" + " " * 100_000,
                                  "CC " + "BY " * 50_000])
def test_long_licence_strings_are_compared_in_linear_time(text):
    import time

    started = time.perf_counter()
    licence_matches(text, "CC-BY-NC-ND-4.0"), restrictions(text), exclusion_pattern(text)
    assert time.perf_counter() - started < 2
