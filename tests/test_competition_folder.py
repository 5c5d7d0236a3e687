"""The competition folder as an object: what is public, what is read from private/."""
import json

import pytest

from builders import make_competition
from kit.competition.folder import MANIFEST_FILE, TEST_IDS_FILE, load_competition
from kit.errors import UserError


@pytest.fixture
def folder(tmp_path):
    """A competition in the layout of an older kit: the seed and a private hash in competition.json."""
    return make_competition(tmp_path, seed=11)


def write_manifest(folder, manifest):
    (folder / MANIFEST_FILE).write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))


def test_an_older_competition_keeps_its_seed_and_hands_out_only_public_hashes(folder):
    comp = load_competition(folder)
    assert comp.seed == 11
    assert sorted(comp.file_hashes) == ["sample_submission.csv", "test.mgf", "test_pairs.csv", "train.mgf"]
    assert comp.private_manifest == {} and comp.private_file_hashes == {}


def test_the_private_manifest_wins_over_competition_json(folder):
    write_manifest(folder, {"seed": 987654321, "files": {"private/solution.csv": "ab" * 32}})
    comp = load_competition(folder)
    assert comp.seed == 987654321
    assert comp.private_file_hashes == {"private/solution.csv": "ab" * 32}
    assert "private/solution.csv" not in comp.file_hashes


def test_without_private_and_without_an_old_seed_the_seed_is_unknown(folder):
    meta = json.loads((folder / "competition.json").read_text())
    del meta["seed"]
    (folder / "competition.json").write_text(json.dumps(meta))
    assert load_competition(folder).seed is None


@pytest.mark.parametrize("files", [None, [], "x", 3])
def test_file_hashes_of_an_odd_competition_json_are_empty(folder, files):
    meta = json.loads((folder / "competition.json").read_text())
    meta["files"] = files
    (folder / "competition.json").write_text(json.dumps(meta))
    assert load_competition(folder).file_hashes == {}


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{broken", "not a readable private manifest"),
        ("[1, 2]", "expected a JSON object"),
        (b"\xff\xfe", "not a readable private manifest"),
    ],
)
def test_a_damaged_private_manifest_is_a_user_error(folder, content, fragment):
    path = folder / MANIFEST_FILE
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(UserError, match=fragment):
        _ = load_competition(folder).seed  # the property reads the manifest


def test_the_test_id_map_is_private(folder):
    comp = load_competition(folder)
    with pytest.raises(UserError, match="no test id map .* private/ folder stays"):
        comp.load_test_ids()
    (folder / TEST_IDS_FILE).write_text("spectrum_id,source_spectrum_id\ntest_000001,NA\ntest_000002,MSBNK-1\n")
    frame = load_competition(folder).load_test_ids()
    assert frame.source_spectrum_id.tolist() == ["NA", "MSBNK-1"]  # ids are text, never parsed as missing


def test_as_competition_takes_an_object_a_folder_or_a_name(folder):
    from kit.competition.folder import as_competition

    comp = as_competition(folder)
    assert as_competition(comp) is comp
    assert as_competition(folder.name, data=folder.parent).name == comp.name
    with pytest.raises(UserError):
        as_competition("no-such-competition", data=folder.parent)
