"""The same-molecule diagnostic: ``kit prepare`` records it privately, scoring and the pages report it."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from builders import make_competition, read_solution, write_submission_file
from conftest import structure_spectra
from kit.cli import main
from kit.errors import UserError
from kit.scoring.metrics import DIFFERENT_MOLECULE_BIN, SAME_MOLECULE_BIN, molecule_diagnostics
from kit.scoring.scorer import score_submission

N = 60


def with_pair_details(folder, same):
    ids = read_solution(folder)[0]
    pd.DataFrame({"id": ids, "same_molecule": np.asarray(same, dtype=int)}).to_csv(
        folder / "private" / "pair_details.csv", index=False
    )
    return folder


@pytest.fixture
def comp(tmp_path):
    """A tiny competition whose pairs with a true similarity of 1 are same-molecule pairs, but one."""
    truth = np.linspace(0.0, 1.0, N)
    truth[-6:] = 1.0
    folder = make_competition(tmp_path / "data", n_pairs=N, truth=truth, seed=4)
    same = truth == 1.0
    same[-1] = False  # a pair of two molecules with one fingerprint
    return with_pair_details(folder, same)


@pytest.fixture
def submission(comp, tmp_path):
    ids, truth, _ = read_solution(comp)
    guess = np.clip(truth + np.where(truth == 1.0, -0.2, 0.1), 0, 1)
    return write_submission_file(tmp_path / "sub.csv", ids, guess.tolist()), ids, truth, guess


def manual_rmse(truth, guess, mask):
    return float(np.sqrt(np.mean((truth[mask] - guess[mask]) ** 2)))


# --- the metric helper -----------------------------------------------------------------


def test_molecule_diagnostics_split_the_rows():
    truth, guess = np.array([1.0, 1.0, 0.95, 0.3]), np.array([0.9, 0.7, 0.95, 0.1])
    same = np.array([True, False, False, False])
    d = molecule_diagnostics(truth, guess, same)
    assert d["same_molecule_rows"] == 1 and d["different_molecule_rows"] == 3
    assert d["same_molecule_rmse"] == pytest.approx(0.1)
    assert d["different_molecule_rmse"] == pytest.approx(manual_rmse(truth, guess, ~same))
    assert d["top_bin_split"][SAME_MOLECULE_BIN] == pytest.approx(0.1)
    assert d["top_bin_split"][DIFFERENT_MOLECULE_BIN] == pytest.approx(np.sqrt(0.09 / 2))


@pytest.mark.parametrize("same", [[False, False], [True, True]])
def test_molecule_diagnostics_with_one_kind_only(same):
    d = molecule_diagnostics([1.0, 0.2], [0.5, 0.2], same)
    empty = "same_molecule_rmse" if not any(same) else "different_molecule_rmse"
    assert d[empty] is None


@pytest.mark.parametrize("same", [[True], [True, False, True], [[True, False], [True, False]]])
def test_molecule_diagnostics_refuses_flags_of_another_length(same):
    with pytest.raises(ValueError, match="one same_molecule flag per row"):
        molecule_diagnostics([1.0, 0.2], [0.5, 0.2], same)


# --- scoring ------------------------------------------------------------------------


def test_score_reports_same_and_different_molecule_rmse(comp, submission):
    path, ids, truth, guess = submission
    solution = pd.read_csv(comp / "private" / "solution.csv")
    same = pd.read_csv(comp / "private" / "pair_details.csv")["same_molecule"].to_numpy(dtype=bool)
    result = score_submission(path, comp)
    for usage in ("Public", "Private"):
        mask = (solution["Usage"] == usage).to_numpy()
        d = result.details[usage]
        for kind, rows in (("same", same & mask), ("different", ~same & mask)):
            expected = manual_rmse(truth, guess, rows) if rows.any() else None
            assert d[f"{kind}_molecule_rmse"] == pytest.approx(expected)
            assert d[f"{kind}_molecule_rows"] == int(rows.sum())
    out = result.to_dict(private=True)
    assert out["same_molecule_rmse"] == result.details["Public"]["same_molecule_rmse"]
    assert "different_molecule_rmse" in out and "different_molecule_rmse" in out["private_diagnostics"]
    report = result.format(private=True)
    assert "same-molecule RMSE" in report and "different molecules only:" in report
    # The all-bins and the top-bin figures for pairs of different molecules carry different labels.
    labels = [line.split(":")[0].strip() if "only:" in line else line.split("different-molecule")[0].strip()
              for line in report.splitlines() if "different" in line]
    assert len(labels) == 3 and len(set(labels)) == 3, report
    assert "Public, all bins" in report and "0.9-1.0 bin, different molecules only:" in report


def test_pair_details_in_another_order_are_aligned_by_id(comp, submission):
    path = submission[0]
    before = score_submission(path, comp).details["Private"]["same_molecule_rmse"]
    details = pd.read_csv(comp / "private" / "pair_details.csv")
    details.iloc[::-1].to_csv(comp / "private" / "pair_details.csv", index=False)
    assert score_submission(path, comp).details["Private"]["same_molecule_rmse"] == before


def test_kit_score_json_has_the_diagnostic(comp, submission, tmp_path, capsys):
    code = main(["score", str(submission[0]), "--competition", str(comp), "--json", "--private",
                 "--leaderboard", str(tmp_path / "lb")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["same_molecule_rmse"] > 0 and out["different_molecule_rmse"] > 0


def test_older_competition_without_pair_details_scores_without_the_diagnostic(comp, submission):
    (comp / "private" / "pair_details.csv").unlink()
    result = score_submission(submission[0], comp)
    assert "same_molecule_rmse" not in result.to_dict(private=True)
    assert "same_molecule_rmse" not in result.details["Private"]
    assert "same-molecule" not in result.format(private=True)


@pytest.mark.parametrize(
    "content",
    [
        "id,same_molecule\n0,1\n",                                   # too few rows
        "id,same\n" + "".join(f"{i},0\n" for i in range(N)),         # another column
        "id,same_molecule\n" + "".join(f"{i},2\n" for i in range(N)),  # not 0/1
        "id,same_molecule\n" + "".join(f"{i},x\n" for i in range(N)),  # not a number
        "id,same_molecule\n" + "".join(f"{i + 1000},0\n" for i in range(N)),  # other ids
        "id,same_molecule\n" + "".join(f"{i // 2},0\n" for i in range(N)),  # repeated ids
        "id,same_molecule,extra\n" + "".join(f"{i},0,1\n" for i in range(N)),
        "",
        "\x00\x01garbage",
    ],
)
def test_damaged_pair_details_is_one_line_error(comp, submission, content, tmp_path, capsys):
    (comp / "private" / "pair_details.csv").write_text(content)
    with pytest.raises(UserError, match="pair_details.csv"):
        score_submission(submission[0], comp)
    code = main(["score", str(submission[0]), "--competition", str(comp), "--leaderboard", str(tmp_path / "lb")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pair_details.csv" in err[0]
    assert not (tmp_path / "lb" / "practice.csv").exists()


# --- the leaderboard log and page -------------------------------------------------------


def test_log_and_page_carry_the_top_bin_split(comp, submission, tmp_path):
    from kit.board import pages as leaderboard_pages
    from kit.board.leaderboard import build_leaderboard, read_log

    lb = tmp_path / "lb"
    assert main(["score", str(submission[0]), "--competition", str(comp), "--leaderboard", str(lb),
                 "--participant", "ada"]) == 0
    row = read_log(lb / "practice.csv").iloc[0]
    assert row["per_bin_public"]["0.9-1.0"] is not None and SAME_MOLECULE_BIN in row["per_bin_public"]
    # Private per-bin scores stay in the teacher's export until the reveal.
    assert DIFFERENT_MOLECULE_BIN in read_log(comp / "private" / "leaderboard.csv").iloc[0]["per_bin_private"]
    standings = build_leaderboard(comp, leaderboard=lb, private=True)
    titles = [title for title, _, _ in leaderboard_pages.plot_images(standings)]
    assert "Per-bin RMSE" in titles
    assert "The top bin is split" in standings.html_path.read_text()


def test_page_of_an_older_log_keeps_ten_bins(comp, submission, tmp_path):
    from kit.board.leaderboard import build_leaderboard

    (comp / "private" / "pair_details.csv").unlink()
    lb = tmp_path / "lb"
    assert main(["score", str(submission[0]), "--competition", str(comp), "--leaderboard", str(lb)]) == 0
    standings = build_leaderboard(comp, leaderboard=lb)
    assert "The top bin is split" not in standings.html_path.read_text()


# --- kit prepare --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from kit.competition.prepare import prepare_competition
    from kit.data.spectra import save_spectra

    work = tmp_path_factory.mktemp("prepared")
    library = save_spectra(structure_spectra(per_molecule=4), work / "lib.mgf")
    return prepare_competition(library, name="tiny", out=work / "data", test_fraction=0.3, pairs_per_bin=20,
                               progress=False, echo=lambda *_: None)


def test_prepare_writes_pair_details_privately(prepared):
    folder = prepared.path
    details = pd.read_csv(folder / "private" / "pair_details.csv")
    solution = prepared.load_solution()
    assert details["id"].tolist() == solution["id"].tolist()
    assert set(details["same_molecule"]) <= {0, 1} and details["same_molecule"].any()
    # A pair of one molecule has the same structure: its true similarity is 1.
    assert (solution.loc[details["same_molecule"] == 1, "similarity"] == 1.0).all()
    # The flags agree with the private map back to the library's spectra (ids T<molecule>-<k>).
    test_ids = prepared.load_test_ids().set_index("spectrum_id")["source_spectrum_id"]
    molecule = {k: v.split("-")[0] for k, v in test_ids.items()}
    pairs = prepared.test_pairs
    expected = [molecule[a] == molecule[b] for a, b in zip(pairs["spectrum_id_a"], pairs["spectrum_id_b"])]
    assert details["same_molecule"].astype(bool).tolist() == expected
    # Private: hashed in the private manifest, named nowhere in the public description.
    assert "private/pair_details.csv" in prepared.private_file_hashes
    assert "pair_details" not in (folder / "competition.json").read_text()
    assert list(solution.columns) == ["id", "similarity", "Usage"]


def test_prepared_competition_scores_with_the_diagnostic(prepared, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(prepared.path, folder)
    ids = prepared.test_pairs["id"].to_numpy()
    path = write_submission_file(tmp_path / "sub.csv", ids, [0.5] * len(ids))
    result = score_submission(path, folder)
    assert result.details["Public"]["same_molecule_rows"] + result.details["Public"]["different_molecule_rows"] == \
        result.details["Public"]["rows"]
