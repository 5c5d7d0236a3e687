import gzip
import hashlib
import http.server
import json
import shutil
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import SMILES, TWINS, kit_cli, kit_cli_subprocess, massbank_file, structure_spectra

from kit.competition.folder import load_competition
from kit.errors import UserError
from kit.data.pairs import private_rows_known_from_public
from kit.competition.prepare import prepare_competition
from kit.data.spectra import save_spectra

STRUCTURE_KEYS = ("SMILES=", "INCHI=", "INCHIKEY=", "FORMULA=", "NAME=", "COMPOUND_NAME=", "TITLE=")


def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def library(tmp_path):
    return save_spectra(structure_spectra(per_molecule=3), tmp_path / "lib.mgf")


def test_prepare_writes_the_contract(workdir, library):
    comp = prepare_competition(library, name="tiny", seed=1, test_fraction=0.25, pairs_per_bin=5, progress=False)
    folder = workdir / "data" / "tiny"
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == [
        "competition.json", "private/manifest.json", "private/pair_details.csv", "private/solution.csv", "private/test_ids.csv",
        "sample_submission.csv", "test.mgf", "test_pairs.csv", "train.mgf",
    ]
    meta = json.loads((folder / "competition.json").read_text())
    assert sorted(meta["files"]) == ["sample_submission.csv", "test.mgf", "test_pairs.csv", "train.mgf"]
    private = json.loads((folder / "private" / "manifest.json").read_text())
    assert set(private["files"]) == set(meta["files"]) | {
        "competition.json", "private/pair_details.csv", "private/solution.csv", "private/test_ids.csv"}
    for f, digest in [*meta["files"].items(), *private["files"].items()]:
        assert hashlib.sha256((folder / f).read_bytes()).hexdigest() == digest
    assert meta["split"]["test_molecules"] == 5 and "seed" not in meta and private["seed"] == comp.seed == 1
    assert comp.file_hashes == meta["files"] and comp.private_file_hashes == private["files"]
    pairs, solution = comp.test_pairs, comp.load_solution()
    assert list(pairs.columns) == ["id", "spectrum_id_a", "spectrum_id_b"]
    assert list(solution.columns) == ["id", "similarity", "Usage"]
    assert list(comp.sample_submission.columns) == ["id", "similarity"]
    assert (solution.id == pairs.id).all() and len(pairs) == meta["pairs"]["total"] == sum(meta["pairs"]["per_bin"])
    assert max(meta["pairs"]["per_bin"]) <= 5
    assert abs((solution.Usage == "Public").mean() - 0.3) <= 0.03
    assert meta["public_rows"] == (solution.Usage == "Public").sum() and meta["private_rows"] == (solution.Usage == "Private").sum()
    test_ids = {s.get("spectrum_id") for s in comp.test_spectra}
    assert set(pairs.spectrum_id_a) | set(pairs.spectrum_id_b) <= test_ids
    text = (folder / "test.mgf").read_text()
    assert not any(key in text for key in STRUCTURE_KEYS)


def _all_files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_prepare_is_byte_identical_for_a_seed_and_differs_for_another(workdir, library):
    contents = []
    for out, seed in (("a", 3), ("b", 3), ("c", 4)):
        comp = prepare_competition(library, name="same", out=workdir / out, seed=seed, test_fraction=0.25, pairs_per_bin=5, progress=False)
        contents.append(_all_files(comp.path))
    assert "private/test_ids.csv" in contents[0] and "private/manifest.json" in contents[0]
    assert contents[0] == contents[1]
    for f in ("test.mgf", "test_pairs.csv", "private/solution.csv", "private/test_ids.csv", "private/manifest.json"):
        assert contents[0][f] != contents[2][f], f


def _save_through_spectra(records, path):
    """The writer ``kit prepare`` used before :func:`kit.data.spectra.save_records`: a matchms Spectrum per record."""
    from matchms import Spectrum

    return save_spectra([Spectrum(mz, intensities, metadata, metadata_harmonization=False)
                         for metadata, mz, intensities in records], path)


@pytest.mark.parametrize("library_name", ["lib.mgf", "lib.mgf.gz"])
def test_prepare_writes_the_same_files_for_any_jobs_and_as_through_matchms_spectra(
    workdir, library, monkeypatch, library_name,
):
    import kit.competition.prepare
    import kit.data.spectra

    path = library
    if library_name.endswith(".gz"):
        path = library.with_name(library_name)
        path.write_bytes(gzip.compress(library.read_bytes()))
    monkeypatch.setattr(kit.data.spectra, "CHUNK_RECORDS", 4)  # several chunks, so that workers clean them
    options = dict(name="same", seed=5, test_fraction=0.25, pairs_per_bin=5, progress=False)
    one = _all_files(prepare_competition(path, out=workdir / "one", jobs=1, **options).path)
    two = _all_files(prepare_competition(path, out=workdir / "two", jobs=2, **options).path)
    monkeypatch.setattr(kit.competition.prepare, "save_records", _save_through_spectra)
    slow = _all_files(prepare_competition(path, out=workdir / "slow", jobs=1, **options).path)
    assert one["train.mgf"] and one["test.mgf"]
    assert two == one and slow == one


SECRET_SEED = 73914628


@pytest.fixture
def licensed(tmp_path):
    """A library whose spectra carry licences, as MassBank's do."""
    spectra = structure_spectra(per_molecule=3)
    for k, s in enumerate(spectra):
        s.set("license", "CC BY 4.0" if k % 3 else "CC BY-NC")
    return save_spectra(spectra, tmp_path / "licensed.mgf")


@pytest.fixture
def handed_out(workdir, licensed):
    """A competition prepared with a secret seed: (competition, library ids, test id map)."""
    comp = prepare_competition(licensed, name="graded", seed=SECRET_SEED, test_fraction=0.25, pairs_per_bin=5, progress=False)
    library_ids = [s.get("spectrum_id") for s in structure_spectra(per_molecule=3)]
    return comp, library_ids, comp.load_test_ids()


def test_test_ids_are_neutral_shuffled_and_mapped_in_private(handed_out):
    comp, library_ids, id_map = handed_out
    test_ids = [s.get("spectrum_id") for s in comp.test_spectra]
    assert test_ids == [f"test_{k:06d}" for k in range(1, len(test_ids) + 1)]
    assert not set(test_ids) & set(library_ids)
    assert id_map.spectrum_id.tolist() == test_ids
    sources = id_map.source_spectrum_id.tolist()
    assert set(sources) <= set(library_ids) and len(set(sources)) == len(sources)
    assert sources != sorted(sources, key=library_ids.index), "test.mgf keeps the library's order"
    # The map is right: each neutral id carries its source spectrum's peaks.
    by_id = {s.get("spectrum_id"): s for s in structure_spectra(per_molecule=3)}
    for spectrum, source in zip(comp.test_spectra, sources):
        np.testing.assert_allclose(spectrum.peaks.mz, by_id[source].peaks.mz)
    pairs = comp.test_pairs
    assert set(pairs.spectrum_id_a) | set(pairs.spectrum_id_b) <= set(test_ids)


def test_no_public_file_names_a_test_record_the_seed_or_the_library_hash(handed_out, licensed):
    library = licensed
    comp, _, id_map = handed_out
    secrets = [*id_map.source_spectrum_id, str(SECRET_SEED), hashlib.sha256(library.read_bytes()).hexdigest(), str(library.parent)]
    secrets += list(comp.private_file_hashes.values())
    public = {name: data.decode() for name, data in _all_files(comp.path).items() if not name.startswith("private/")}
    assert sorted(public) == ["competition.json", "sample_submission.csv", "test.mgf", "test_pairs.csv", "train.mgf"]
    for name, text in public.items():
        found = [secret for secret in secrets if secret in text and not (name == "competition.json" and secret in comp.file_hashes.values())]
        assert not found, f"{name} reveals {found}"
    assert "LICENSE=" not in public["test.mgf"] and "LICENSE=" in public["train.mgf"]
    meta = json.loads(public["competition.json"])
    assert "seed" not in meta and "sha256" not in json.dumps(meta["library"])
    assert meta["library"]["licenses"] == {"CC BY 4.0": 40, "CC BY-NC": 20}
    private = json.loads((comp.path / "private" / "manifest.json").read_text())
    assert private["seed"] == SECRET_SEED and private["library"]["sources"][0]["sha256"] == hashlib.sha256(library.read_bytes()).hexdigest()


def test_the_handed_out_folder_cannot_rebuild_the_answers(handed_out, licensed, workdir):
    library = licensed
    comp, _, _ = handed_out
    public = workdir / "public"
    shutil.copytree(comp.path, public, ignore=shutil.ignore_patterns("private"))
    participant = load_competition(public)
    assert participant.seed is None and participant.private_manifest == {} and not participant.has_solution
    assert participant.file_hashes == comp.file_hashes
    with pytest.raises(UserError, match="no test id map"):
        participant.load_test_ids()
    # Re-running prepare with everything public (library, options) but a guessed seed gives other answers.
    guess = prepare_competition(library, name="guess", test_fraction=0.25, pairs_per_bin=5, progress=False)
    assert guess.file_hashes["train.mgf"] != comp.file_hashes["train.mgf"]
    assert (guess.path / "private" / "solution.csv").read_bytes() != (comp.path / "private" / "solution.csv").read_bytes()


def test_library_ids_shaped_like_test_ids_or_repeated_stay_apart(workdir, tmp_path):
    spectra = structure_spectra(per_molecule=3)
    for k, s in enumerate(spectra):
        s.set("spectrum_id", f"test_{k + 1:06d}" if k % 2 else "same")
    comp = prepare_competition(save_spectra(spectra, tmp_path / "tricky.mgf"), name="tricky", test_fraction=0.25, pairs_per_bin=5,
                               progress=False)
    train_ids = [s.get("spectrum_id") for s in comp.train_spectra]
    test_ids = [s.get("spectrum_id") for s in comp.test_spectra]
    assert len(set(train_ids)) == len(train_ids) and not set(train_ids) & set(test_ids)
    assert all(i.startswith("library_test_") or i.startswith("same") for i in train_ids)
    sources = comp.load_test_ids().source_spectrum_id
    assert sources.is_unique and set(sources).isdisjoint(train_ids)


def test_competition_from_an_older_kit_keeps_working(workdir, library):
    comp = prepare_competition(library, name="old", seed=5, test_fraction=0.25, pairs_per_bin=5, progress=False)
    meta = dict(comp.metadata, seed=5, files={**comp.file_hashes, "private/solution.csv": "0" * 64})
    (comp.path / "competition.json").write_text(json.dumps(meta))
    (comp.path / "private" / "manifest.json").unlink()
    old = load_competition(comp.path)
    assert old.seed == 5 and "private/solution.csv" not in old.file_hashes and old.private_file_hashes == {}
    (comp.path / "private" / "manifest.json").write_text("{broken")
    with pytest.raises(UserError, match="private manifest"):
        load_competition(comp.path).seed


def test_existing_folder_needs_force(workdir, library):
    prepare_competition(library, name="x", test_fraction=0.25, pairs_per_bin=2, progress=False)
    with pytest.raises(UserError, match="already exists"):
        prepare_competition(library, name="x", test_fraction=0.25, pairs_per_bin=2, progress=False)
    before = (workdir / "data" / "x" / "test_pairs.csv").read_bytes()
    prepare_competition(library, name="x", seed=9, test_fraction=0.25, pairs_per_bin=2, force=True, progress=False)
    assert (workdir / "data" / "x" / "test_pairs.csv").read_bytes() != before
    assert sorted(p.name for p in (workdir / "data").iterdir()) == ["x"]  # no temporary leftovers


def test_invalid_smiles_are_dropped_and_counted(workdir, tmp_path):
    spectra = structure_spectra(per_molecule=2)
    for s in spectra[:4]:
        s.set("smiles", "C1CC(bad")
        s.set("inchikey", None)
    lib = save_spectra(spectra, tmp_path / "some_bad.mgf")
    comp = prepare_competition(lib, name="bad", test_fraction=0.25, pairs_per_bin=2, progress=False)
    cleaning = comp.metadata["library"]["cleaning"]
    assert cleaning["dropped"] == {"SMILES that RDKit cannot parse": 4}
    assert cleaning["kept"] == len(spectra) - 4


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--library", "missing.mgf"], ["not found", "missing.mgf"]),
        (["--library", "lib.txt"], ["unknown spectra format", ".txt"]),
        (["--library", "corrupt.mgf.gz"], ["corrupt gzip"]),
        (["--library", "nostructure.mgf"], ["no spectrum with a usable structure"]),
        (["--library", "lib.mgf", "--test-fraction", "0"], ["--test-fraction", "between 0 and 1", "found 0.0"]),
        (["--library", "lib.mgf", "--test-fraction", "1.5"], ["--test-fraction", "found 1.5"]),
        (["--library", "lib.mgf", "--test-fraction", "0.01"], ["too few molecules", "found 20 molecules"]),
        (["--library", "lib.mgf", "--public-fraction", "2"], ["--public-fraction"]),
        (["--library", "lib.mgf", "--pairs-per-bin", "0"], ["--pairs-per-bin"]),
        (["--library", "lib.mgf", "--out", "afile/sub"], ["cannot create folder"]),
        (["--library", "lib.mgf", "--out", "/proc/kit-data"], ["cannot create folder"]),
        (["--library", "lib.mgf", "--name", "../escape"], ["not allowed"]),
        (["--library", "lib.mgf", "--test-fraction", "abc"], ["invalid float value"]),
        (["--library", "lib.mgf", "--jobs", "0"], ["--jobs", "expected an integer >= 1, found 0"]),
        (["--library", "lib.mgf", "--jobs", "two"], ["--jobs", "expected an integer >= 1, found 'two'"]),
        (["--library", "lib.mgf", "--jobs", "1.5"], ["--jobs", "expected an integer >= 1, found '1.5'"]),
        (["--library", "lib.mgf", "--jobs", "-3"], ["--jobs", "expected an integer >= 1, found -3"]),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, fragments):
    save_spectra(structure_spectra(per_molecule=2), tmp_path / "lib.mgf")
    (tmp_path / "lib.txt").write_text("hello")
    (tmp_path / "afile").write_text("in the way")
    good = gzip.compress((tmp_path / "lib.mgf").read_bytes())
    (tmp_path / "corrupt.mgf.gz").write_bytes(good[: len(good) // 2])
    bare = structure_spectra(per_molecule=1)
    for s in bare:
        s.set("smiles", None)
        s.set("inchikey", None)
    save_spectra(bare, tmp_path / "nostructure.mgf")
    proc = kit_cli("prepare", *args, "--quiet", cwd=tmp_path)
    assert_user_error(proc, *fragments)
    data = tmp_path / "data"
    assert not data.exists() or not any(p.name != "cache" for p in data.iterdir())


BROKEN_LIBRARIES = {
    "empty.mgf": "",
    "empty.msp": "",
    "endless.mgf": "BEGIN IONS\nPEPMASS=100\n50 1\n",
    "textpeak.mgf": "BEGIN IONS\nPEPMASS=100\nabc def\nEND IONS\n",
    "junk.mzML": "<mzML>garbage",
    "junk.json": "{not json",
    "page.msp": "<!DOCTYPE html><html><body>404</body></html>",
}


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--library", "empty.mgf"], ["empty.mgf: no spectra found"]),
        (["--library", "empty.msp"], ["empty.msp: no spectra found"]),
        (["--library", "endless.mgf"], ["endless.mgf: unreadable mgf file", "no END IONS"]),
        (["--library", "textpeak.mgf"], ["textpeak.mgf: unreadable mgf file", "abc def"]),
        (["--library", "junk.mzML"], ["junk.mzML: unreadable mzml file"]),
        (["--library", "junk.json"], ["junk.json: unreadable json file"]),
        (["--library", "page.msp"], ["page.msp: unreadable msp file", "line 1"]),
        (["--library", "lib.mgf", "empty.mgf"], ["empty.mgf: no spectra found"]),
        (["--library", "noise.mgf.gz"], ["noise.mgf.gz: no spectra found"]),
        (["--library", "utf16.mgf"], ["utf16.mgf: unreadable mgf file", "UnicodeDecodeError"]),
        (["--library", "cut.msp.gz"], ["cut.msp.gz: corrupt gzip file"]),
        (["--public-fraction", "0.00001"], ["--public-fraction 1e-05 leaves no Public row among at most 10,000 test pairs",
                                            "between 0.0001 and 0.9999 for 10,000 pairs"]),
        (["--public-fraction", "0.99999"], ["leaves no Private row among at most 10,000"]),
        (["--public-fraction", "0.01", "--pairs-per-bin", "2"], ["leaves no Public row among at most 20 test pairs",
                                                                 "between 0.05 and 0.95"]),
        (["--public-fraction", "nan"], ["--public-fraction must be between 0 and 1", "found nan"]),
        (["--public-fraction", "inf"], ["--public-fraction must be between 0 and 1"]),
        (["--test-fraction", "nan"], ["--test-fraction must be between 0 and 1"]),
        # Known only once the test molecules are grouped: 5 test molecules, and none or all Public.
        (["--library", "lib.mgf", "--test-fraction", "0.25", "--pairs-per-bin", "2", "--public-fraction", "0.04"],
         ["found 5 test molecules", "--public-fraction 0.04 leaves the Public group empty"]),
        (["--library", "lib.mgf", "--test-fraction", "0.25", "--public-fraction", "0.95"],
         ["found 5 test molecules", "--public-fraction 0.95 leaves the Private group empty"]),
    ],
)
def test_broken_libraries_and_public_fractions_are_one_line_exit_2(workdir, library, capsys, args, fragments):
    from kit.cli import main

    assert library == workdir / "lib.mgf"  # workdir is tmp_path, where the library fixture writes
    for name, text in BROKEN_LIBRARIES.items():
        (workdir / name).write_text(text)
    (workdir / "noise.mgf.gz").write_bytes(gzip.compress(np.random.default_rng(0).bytes(5000)))
    (workdir / "utf16.mgf").write_text("BEGIN IONS\nPEPMASS=100\n50 1\nEND IONS\n", encoding="utf-16")
    (workdir / "cut.msp.gz").write_bytes(gzip.compress(b"Name: a\nNum Peaks: 1\n50 1\n" * 50)[:-30])
    assert main(["prepare", *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    data = workdir / "data"
    assert not data.exists() or not any(p.name != "cache" for p in data.iterdir())


def test_broken_values_never_reach_the_competition_files(workdir, tmp_path):
    spectra = structure_spectra(per_molecule=3)
    text = save_spectra(spectra, tmp_path / "clean.mgf").read_text()
    records = text.split("END IONS\n")
    broken = [
        records[0].replace("PRECURSOR_MZ=", "PRECURSOR_MZ=nan\nX=", 1),
        records[1].rsplit("\n", 2)[0] + "\nnan 1.0\n",
        records[2].rsplit("\n", 2)[0] + "\n99.5 inf\n",
        records[3].rsplit("\n", 2)[0] + "\n99.5 -1\n",
    ]
    (tmp_path / "broken.mgf").write_text("END IONS\n".join(broken + records[4:]))
    comp = prepare_competition(tmp_path / "broken.mgf", name="broken", test_fraction=0.25, pairs_per_bin=5, progress=False)
    cleaning = comp.metadata["library"]["cleaning"]
    assert cleaning["dropped"] == {"require_finite_values": 4} and cleaning["kept"] == len(spectra) - 4
    for f in ("train.mgf", "test.mgf"):
        written = (comp.path / f).read_text().lower()
        assert "nan" not in written and "inf" not in written and " -" not in written, f
    for s in comp.train_spectra + comp.test_spectra:
        assert np.isfinite(s.peaks.mz).all() and (s.peaks.intensities >= 0).all() and np.isfinite(s.get("precursor_mz"))


def test_cli_prepare_and_load(tmp_path, library):
    # The command's one run in a child process (the installed entry point); the rest run in-process.
    proc = kit_cli_subprocess("prepare", "--library", library, "--name", "cli", "--test-fraction", "0.25", "--pairs-per-bin", "3", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "pairs per Tanimoto bin" in proc.stdout
    assert "no molecule on both sides" in proc.stdout and "% Public)" in proc.stdout
    comp = load_competition(tmp_path / "data" / "cli")
    assert comp.name == "cli" and len(comp.train_spectra) + len(comp.test_spectra) == 3 * len(SMILES)


class _OneFile(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


def test_massbank_download_from_a_local_server(tmp_path, library):
    from matchms.exporting import save_as_msp

    msp = tmp_path / "served.msp"
    save_as_msp(structure_spectra(per_molecule=2), str(msp))
    handler = type("Handler", (_OneFile,), {"payload": msp.read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"SPECSIM_MASSBANK_URL": f"http://127.0.0.1:{server.server_port}/MassBank_NISTformat.msp"}
        proc = kit_cli("prepare", "--library", "massbank", "--test-fraction", "0.25", "--pairs-per-bin", "3", cwd=tmp_path, env=env)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    cached = tmp_path / "data" / "cache" / "MassBank_NISTformat.msp"
    assert cached.read_bytes() == msp.read_bytes()
    assert "downloading MassBank_NISTformat.msp" in proc.stderr  # the progress bar
    assert "MassBank is public" in proc.stdout
    comp = load_competition(tmp_path / "data" / "massbank")
    assert comp.metadata["library"]["sources"][0]["source"] == "MassBank_NISTformat.msp"


def _rdkit_label(smiles_a, smiles_b):
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=7, fpSize=2048)
    return DataStructs.TanimotoSimilarity(gen.GetFingerprint(Chem.MolFromSmiles(smiles_a)), gen.GetFingerprint(Chem.MolFromSmiles(smiles_b)))


@pytest.mark.slow
@pytest.mark.massbank
def test_massbank_negative_competition_contract(tmp_path):
    """The whole contract of a competition folder (README, "A competition on disk") on real data, checked independently."""
    source = massbank_file("negative")
    for name in ("one", "two"):
        proc = kit_cli("prepare", "--library", source, "--name", name, "--seed", "7", "--pairs-per-bin", "300", "--quiet", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    one, two = tmp_path / "data" / "one", tmp_path / "data" / "two"
    for f in ("train.mgf", "test.mgf", "test_pairs.csv", "sample_submission.csv", "private/solution.csv", "private/test_ids.csv"):
        assert (one / f).read_bytes() == (two / f).read_bytes(), f

    # The library as written by MassBank: spectrum id -> (InChIKey block, SMILES).
    library = {}
    with gzip.open(source, "rt") as handle:
        record = {}
        for line in handle:
            if line.startswith("SPECTRUM_ID="):
                record["id"] = line.strip().split("=", 1)[1]
            elif line.startswith("INCHIKEY="):
                record["key"] = line.strip().split("=", 1)[1][:14]
            elif line.startswith("SMILES="):
                record["smiles"] = line.strip().split("=", 1)[1]
            elif line.startswith("END IONS"):
                library[record["id"]] = record
                record = {}
    comp = load_competition(one)
    train_ids = [s.get("spectrum_id") for s in comp.train_spectra]
    source_of = dict(comp.load_test_ids().itertuples(index=False))
    neutral = [s.get("spectrum_id") for s in comp.test_spectra]
    assert all(i.startswith("test_") and i not in library for i in neutral)
    test_ids = [source_of[i] for i in neutral]
    train_keys = {library[i]["key"] for i in train_ids}
    test_keys = {library[i]["key"] for i in test_ids}
    assert not train_keys & test_keys, "a molecule is on both sides"
    assert 0.08 < len(test_keys) / (len(test_keys) + len(train_keys)) < 0.12

    text = (one / "test.mgf").read_text()
    assert not any(key in text for key in STRUCTURE_KEYS)

    # Labels recomputed with RDKit from each molecule's representative SMILES.
    representative = {}
    in_test = set(test_ids)
    for sid in (i for i in library if i in in_test):  # the library's order: ties go to the first seen
        representative.setdefault(library[sid]["key"], []).append(library[sid]["smiles"])
    rep = {k: pd.Series(v).value_counts(sort=True).index[0] if len(set(v)) > 1 else v[0] for k, v in representative.items()}
    for k, v in representative.items():  # ties go to the first seen
        counts = pd.Series(v).value_counts()
        best = counts[counts == counts.max()].index
        rep[k] = next(s for s in v if s in best)
    pairs, solution = comp.test_pairs, comp.load_solution()
    expected = [
        _rdkit_label(rep[library[source_of[a]]["key"]], rep[library[source_of[b]]["key"]])
        for a, b in zip(pairs.spectrum_id_a, pairs.spectrum_id_b)
    ]
    np.testing.assert_array_equal(solution.similarity.to_numpy(), np.array(expected))

    per_bin = np.bincount(np.clip((np.round(solution.similarity * 10, 9)).astype(int), 0, 9), minlength=10)
    assert per_bin.tolist() == comp.metadata["pairs"]["per_bin"]
    assert (per_bin == 300).sum() >= 8, per_bin  # balanced: most bins full
    assert (pairs.spectrum_id_a != pairs.spectrum_id_b).all()
    public = (solution.Usage == "Public").mean()
    assert abs(public - 0.3) < 1e-3


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_test_id_map_is_safe_to_open_in_a_spreadsheet(workdir, tmp_path, prefix):
    # The library's ids are its author's text: a formula must not run in the teacher's spreadsheet.
    spectra = structure_spectra(per_molecule=3)
    for k, s in enumerate(spectra):
        s.set("spectrum_id", f"{prefix}HYPERLINK(x{k})")
    comp = prepare_competition(save_spectra(spectra, tmp_path / "formulas.mgf"), name="formulas", test_fraction=0.25,
                               pairs_per_bin=5, progress=False)
    raw = (comp.path / "private" / "test_ids.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert raw and all(line.split(",", 1)[1].startswith("'" + prefix) for line in raw)
    assert all(s.startswith(prefix + "HYPERLINK(") for s in comp.load_test_ids().source_spectrum_id)


SIMULATED_MOLECULES = 60  # a small simulated library: the contract is the same at 2,000


@pytest.fixture
def simulated_seeds(monkeypatch):
    """Make the simulated library small; return the list of seeds it was simulated with."""
    import kit.data.simulate

    real, seeds = kit.data.simulate.simulate_library, []

    def small(seed=0, progress=False, **kwargs):
        seeds.append(seed)
        return real(n_molecules=SIMULATED_MOLECULES, seed=seed, progress=False)

    monkeypatch.setattr(kit.data.simulate, "simulate_library", small)
    return seeds


def _peak_keys(spectra):
    return {(round(float(s.get("precursor_mz")), 4), tuple(np.round(s.peaks.mz, 4))) for s in spectra}


def test_simulated_library_cannot_be_rebuilt_from_the_kit(workdir, simulated_seeds):
    """The simulator ships with the kit: a library seeded with a known seed would give every answer away."""
    from kit.data.simulate import simulate_library

    comp = prepare_competition(None, name="sim", seed=SECRET_SEED, test_fraction=0.25, pairs_per_bin=5, progress=False)
    (used,) = simulated_seeds
    assert used not in (0, SECRET_SEED) and used > 2**32
    # The student's attack: simulate with the default seed (or the competition's, once known), look the peaks up.
    for guess in (0, 1, SECRET_SEED):
        rebuilt = _peak_keys(simulated_seeds.clear() or simulate_library(seed=guess))
        assert not rebuilt & _peak_keys(comp.test_spectra), guess
        assert not rebuilt & _peak_keys(comp.train_spectra), guess
    text = (comp.path / "competition.json").read_text()
    source = json.loads(text)["library"]["sources"][0]
    assert source["source"] == "simulated" and "secret seed" in source["generator"]
    assert "simulation_seed" not in source and "seed=" not in text and str(used) not in text
    assert not any(str(used) in (comp.path / f).read_text() for f in ("test.mgf", "train.mgf", "test_pairs.csv"))
    private = json.loads((comp.path / "private" / "manifest.json").read_text())
    assert private["library"]["sources"][0]["simulation_seed"] == used and private["seed"] == SECRET_SEED


def test_simulated_competition_is_byte_identical_for_a_seed(workdir, simulated_seeds):
    runs = [prepare_competition(None, name="sim", out=workdir / out, seed=seed, test_fraction=0.25, pairs_per_bin=5, progress=False)
            for out, seed in (("a", 5), ("b", 5), ("c", 6))]
    assert simulated_seeds[0] == simulated_seeds[1] != simulated_seeds[2]
    first, second, other = (_all_files(comp.path) for comp in runs)
    assert first == second
    assert first["test.mgf"] != other["test.mgf"]


def test_seed_streams_of_earlier_versions_are_kept(workdir, library):
    """The simulated library's stream was added after the others: a seed keeps its split, pairs and rows."""
    children = np.random.SeedSequence(SECRET_SEED).spawn(5)
    earlier = np.random.SeedSequence(SECRET_SEED).spawn(4)
    for new, old in zip(children, earlier):
        assert np.random.default_rng(new).integers(2**62) == np.random.default_rng(old).integers(2**62)


@pytest.mark.parametrize(("seed", "warned"), [(0, True), (SECRET_SEED, False)])
def test_default_seed_is_warned_about(workdir, library, seed, warned):
    lines = []
    prepare_competition(library, name="warn", seed=seed, test_fraction=0.25, pairs_per_bin=5, progress=False, echo=lines.append)
    expected = ("note: seed 0 is the default: anyone can rebuild this competition's answers; "
                "use a secret --seed for a graded challenge")
    assert (expected in lines) is warned
    assert not any("MassBank" in line for line in lines)


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o002, 0o077])
def test_private_folder_is_owner_only_whatever_the_umask(workdir, library, umask):
    import os
    import stat

    old = os.umask(umask)
    try:
        comp = prepare_competition(library, name="perm", seed=2, test_fraction=0.25, pairs_per_bin=5, progress=False)
        # --force rebuilds the folder: still private.
        comp = prepare_competition(library, name="perm", seed=2, test_fraction=0.25, pairs_per_bin=5, progress=False, force=True)
    finally:
        os.umask(old)
    private = comp.path / "private"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    inside = list(private.rglob("*"))
    assert len(inside) == 4
    for path in inside:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # The handed-out files stay as readable as the umask allows.
    for name in ("competition.json", "test.mgf", "train.mgf", "test_pairs.csv", "sample_submission.csv"):
        assert stat.S_IMODE((comp.path / name).stat().st_mode) == 0o666 & ~umask, name
    assert stat.S_IMODE(comp.path.stat().st_mode) == 0o777 & ~umask


def _killed_worker(*args):
    """In place of the chunk cleaner: the worker dies as the kernel's out-of-memory killer would kill it."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_prepare_says_one_line_when_a_worker_is_killed(workdir, library, monkeypatch):
    import kit.data.spectra

    monkeypatch.setattr(kit.data.spectra, "CHUNK_RECORDS", 4)
    monkeypatch.setattr(kit.data.spectra, "_clean_chunk", _killed_worker)
    run = kit_cli("prepare", "--library", library, "--name", "killed", "--jobs", 2, "--quiet", cwd=workdir)
    assert_user_error(run, "worker process", "--jobs")
    assert not (workdir / "data" / "killed").exists()


@pytest.mark.parametrize("jobs", [3, 100_000])
def test_prepare_starts_no_more_workers_than_cpus(workdir, library, monkeypatch, jobs):
    import kit.data.spectra

    started = []

    def record(self, workers):
        started.append(workers)
        self.workers, self.executor = 0, None  # cleaned here: a test must not fork 100,000 processes

    monkeypatch.setattr(kit.data.spectra, "CHUNK_RECORDS", 4)
    monkeypatch.setattr(kit.data.spectra, "check_jobs", lambda n: 2 if n is None else n)  # two CPUs
    monkeypatch.setattr(kit.data.spectra._Pool, "__init__", record)
    prepare_competition(library, name="many", out=workdir / "data", jobs=jobs, pairs_per_bin=5, progress=False)
    assert started and max(started) == 2


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_prepare_says_a_library_that_is_not_a_regular_file_is_one(workdir, kind):
    import os

    path = workdir / "lib.mgf"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = "/dev/null"
    run = kit_cli("prepare", "--library", path, "--name", "odd", "--quiet", cwd=workdir)
    assert_user_error(run, "not a regular file")
    assert not (workdir / "data" / "odd").exists()


def _truth(comp):
    """Identity class (fingerprint group) and molecule of each test spectrum, from the private id map."""
    from kit.data.chemistry import fingerprints
    from kit.data.pairs import identity_groups

    smiles = SMILES + TWINS
    groups = identity_groups(fingerprints(smiles))
    sources = comp.load_test_ids().set_index("spectrum_id").source_spectrum_id
    molecule = {test_id: int(source[1:4]) for test_id, source in sources.items()}
    return {test_id: int(groups[m]) for test_id, m in molecule.items()}, molecule


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_private_label_follows_from_public_ones(workdir, tmp_path, seed):
    library = save_spectra(structure_spectra(SMILES + TWINS, per_molecule=3), tmp_path / "twins.mgf")
    comp = prepare_competition(library, name="twins", seed=seed, test_fraction=0.5, pairs_per_bin=8, progress=False)
    identity, molecule = _truth(comp)
    solution, pairs = comp.load_solution(), comp.test_pairs
    public = (solution.Usage == "Public").to_numpy()
    ids = pairs[["spectrum_id_a", "spectrum_id_b"]].to_numpy()
    sides = [set(ids[public].ravel()), set(ids[~public].ravel())]
    assert not sides[0] & sides[1], "a spectrum is on both sides"
    for of in (molecule, identity):
        assert not {of[s] for s in sides[0]} & {of[s] for s in sides[1]}, "a molecule or fingerprint is on both sides"
    assert private_rows_known_from_public(ids, solution.similarity.tolist(), public, identity) == []
    assert abs(public.mean() - 0.3) <= 0.03
    split = comp.metadata["split"]
    assert split["public_test_molecules"] + split["private_test_molecules"] == split["test_molecules"]
    assert len({molecule[s] for s in sides[0]}) <= split["public_test_molecules"]
    usage = comp.private_manifest["usage"]
    assert np.add(usage["public_per_bin"], usage["private_per_bin"]).tolist() == comp.metadata["pairs"]["per_bin"]
    assert sum(usage["public_per_bin"]) == public.sum()


# --- competitions of ion-mode pair types and of a novelty split ----------------------------------


def both_modes_library(path, smiles=SMILES, positive=2, negative=2, negative_molecules=None):
    """A library of ``positive`` positive spectra per molecule and ``negative`` negative ones for the
    molecules in ``negative_molecules`` (default all); ids ``T<molecule>-<k>``, negative for k >= positive."""
    spectra = structure_spectra(smiles, per_molecule=positive + negative)
    kept = []
    for s in spectra:
        m, k = (int(x) for x in s.get("spectrum_id")[1:].split("-"))
        if k >= positive:
            if negative_molecules is not None and m not in negative_molecules:
                continue
            s.set("ionmode", "negative")
            s.set("adduct", "[M-H]-")
            s.set("charge", -1)
            s.set("precursor_mz", s.get("precursor_mz") - 2 * 1.007276)
        kept.append(s)
    return save_spectra(kept, path)


def _modes_and_molecules(comp):
    """Ion mode and molecule of each test id, from the teacher's map back to the library ids."""
    sources = comp.load_test_ids().set_index("spectrum_id").source_spectrum_id
    ids = {test_id: tuple(int(x) for x in source[1:].split("-")) for test_id, source in sources.items()}
    per_mode = 2
    return ({t: "negative" if k >= per_mode else "positive" for t, (_, k) in ids.items()},
            {t: m for t, (m, _) in ids.items()})


@pytest.mark.parametrize("words, types", [
    ("same,cross", ["positive-positive", "negative-negative", "cross"]), ("cross", ["cross"]),
    ("same", ["positive-positive", "negative-negative"]),
])
def test_pair_types_competition_contract(workdir, tmp_path, words, types):
    library = both_modes_library(tmp_path / "both.mgf", SMILES + TWINS)
    comp = prepare_competition(library, name="modes", seed=5, test_fraction=0.5, pairs_per_bin=6,
                               pair_types=words, progress=False)
    details = pd.read_csv(comp.path / "private" / "pair_details.csv")
    assert list(details.columns) == ["id", "same_molecule", "pair_type"]
    assert sorted(details.pair_type.unique()) == sorted(types)
    mode, molecule = _modes_and_molecules(comp)
    pairs = comp.test_pairs.merge(details, on="id").merge(comp.load_solution(), on="id")
    for row in pairs.itertuples():
        a, b = mode[row.spectrum_id_a], mode[row.spectrum_id_b]
        assert row.pair_type == ("cross" if a != b else f"{a}-{a}")
        assert row.same_molecule == (molecule[row.spectrum_id_a] == molecule[row.spectrum_id_b])
    public = (pairs.Usage == "Public").to_numpy()
    sides = [{molecule[s] for s in pairs.loc[usage, ["spectrum_id_a", "spectrum_id_b"]].to_numpy().ravel()}
             for usage in (public, ~public)]
    assert not sides[0] & sides[1], "a molecule is on both sides, in one mode or the other"
    if "cross" in types and len(types) > 1:
        for usage in (public, ~public):
            assert (pairs.pair_type[usage] == "cross").mean() >= 0.25
    meta = comp.metadata
    assert meta["options"]["pair_types"] == words.split(",")
    assert meta["pair_types"]["types"] == types
    assert {t: sum(v) for t, v in meta["pair_types"]["per_bin"].items()} == details.pair_type.value_counts().to_dict()
    assert all(max(v) <= 6 for v in meta["pair_types"]["per_bin"].values())
    assert np.sum(list(meta["pair_types"]["per_bin"].values()), axis=0).tolist() == meta["pairs"]["per_bin"]
    assert "split" not in meta["options"]


def test_cross_pairs_of_a_molecule_measured_in_both_modes_fill_the_top_bin(workdir, tmp_path):
    library = both_modes_library(tmp_path / "both.mgf", SMILES)
    comp = prepare_competition(library, name="modes", seed=1, test_fraction=0.5, pairs_per_bin=10,
                               pair_types="cross", progress=False)
    details = pd.read_csv(comp.path / "private" / "pair_details.csv")
    top = comp.load_solution().similarity.to_numpy() == 1.0
    assert (details.same_molecule.to_numpy()[top] == 1).any()
    assert comp.metadata["pair_types"]["per_bin"]["cross"][-1] > 0


def test_few_cross_mode_pairs_leave_out_same_mode_rows_with_a_note(workdir, tmp_path, monkeypatch):
    import functools

    from kit.competition import prepare as module
    from kit.data.pair_types import keep_cross_share

    # A small library gives about a third cross-mode rows by itself: ask for more, so that rows must go.
    monkeypatch.setattr(module, "keep_cross_share", functools.partial(keep_cross_share, share=0.45))
    library = both_modes_library(tmp_path / "both.mgf", SMILES + TWINS, positive=4, negative=1,
                                 negative_molecules=range(0, 31, 3))
    notes = []
    comp = prepare_competition(library, name="modes", seed=2, test_fraction=0.6, pairs_per_bin=30,
                               pair_types="same,cross", progress=False, echo=notes.append)
    details = pd.read_csv(comp.path / "private" / "pair_details.csv").merge(comp.load_solution(), on="id")
    for usage in ("Public", "Private"):
        assert (details.pair_type[details.Usage == usage] == "cross").mean() >= 0.45
    assert any("same-mode pairs left out so that cross-mode pairs are at least a quarter" in n for n in notes)


def test_a_group_without_cross_mode_pairs_is_one_line(workdir, tmp_path):
    library = both_modes_library(tmp_path / "both.mgf", SMILES + TWINS, negative_molecules={0})
    with pytest.raises(UserError, match="group's test molecules give no cross-mode pair"):
        prepare_competition(library, name="modes", seed=0, test_fraction=0.5, pairs_per_bin=5, pair_types="cross",
                            progress=False)


def test_new_kinds_are_byte_identical_for_a_seed(workdir, tmp_path):
    library = both_modes_library(tmp_path / "both.mgf", SMILES + TWINS)
    digests = []
    for out in ("one", "two"):
        comp = prepare_competition(library, name="both", out=tmp_path / out, seed=4, test_fraction=0.4,
                                   pairs_per_bin=5, pair_types="same,cross", split="novelty", novel_share=0.2,
                                   progress=False)
        digests.append({p.relative_to(comp.path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted(comp.path.rglob("*")) if p.is_file()})
    assert digests[0] == digests[1]


def test_novelty_competition_records_its_split_and_tags_each_pair(workdir, tmp_path):
    from kit.data.chemistry import fingerprints
    from kit.data.novelty import max_similarity, novelty_bands

    library = save_spectra(structure_spectra(SMILES + TWINS, per_molecule=2), tmp_path / "lib.mgf")
    comp = prepare_competition(library, name="novel", seed=3, test_fraction=0.3, pairs_per_bin=5, split="novelty",
                               novelty_threshold=0.5, novel_share=0.4, progress=False)
    options = comp.metadata["options"]
    assert (options["split"], options["cluster_similarity"], options["novelty_threshold"], options["novel_share"]) \
        == ("novelty", 0.7, 0.5, 0.4)
    details = pd.read_csv(comp.path / "private" / "pair_details.csv")
    assert list(details.columns) == ["id", "same_molecule", "novelty_band"]
    smiles_of = {}
    for test_id, source in comp.load_test_ids().set_index("spectrum_id").source_spectrum_id.items():
        smiles_of[test_id] = (SMILES + TWINS)[int(source[1:4])]
    test_smiles = sorted(set(smiles_of.values()))
    train = sorted(set(SMILES + TWINS) - set(test_smiles))
    familiar = dict(zip(test_smiles, max_similarity(fingerprints(test_smiles), fingerprints(train))))
    assert np.mean([familiar[s] < 0.5 for s in test_smiles]) >= 0.4
    pairs = comp.test_pairs.merge(details, on="id")
    least = [min(familiar[smiles_of[a]], familiar[smiles_of[b]]) for a, b in zip(pairs.spectrum_id_a, pairs.spectrum_id_b)]
    labels = np.array(["0.0-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"])[novelty_bands(least)]
    assert pairs.novelty_band.tolist() == labels.tolist()
    assert comp.metadata["novelty"]["rows"] == {k: int((labels == k).sum()) for k in ["0.0-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]}


def test_default_competition_records_no_new_kind(workdir, library):
    comp = prepare_competition(library, name="plain", pairs_per_bin=5, progress=False)
    assert pd.read_csv(comp.path / "private" / "pair_details.csv").columns.tolist() == ["id", "same_molecule"]
    assert not {"split", "pair_types", "novelty_threshold"} & set(comp.metadata["options"])
    assert not {"pair_types", "novelty"} & set(comp.metadata)


@pytest.mark.parametrize("args, fragments", [
    (["--pair-types", "cross"], ["--pair-types cross needs spectra of both ion modes", "no negative-mode"]),
    (["--pair-types", "same,cross", "--ionmode", "positive"], ["no negative-mode"]),
    (["--pair-types", "mixed"], ["each of --pair-types must be one of 'same', 'cross', found 'mixed'"]),
    (["--pair-types", "same,same"], ["--pair-types must name each pair type once, found 'same' twice"]),
    (["--pair-types", ""], ["found ''"]),
    (["--pair-types", "same,,cross"], ["found ''"]),
    (["--pair-types", "SAME"], ["found 'SAME'"]),
    (["--pair-types", "cross;same"], ["found 'cross;same'"]),
    (["--split", "clusters"], ["--split must be one of 'random', 'novelty', found 'clusters'"]),
    (["--split", "Novelty"], ["found 'Novelty'"]),
    (["--novelty-threshold", "0.5"], ["--novelty-threshold applies to --split novelty only"]),
    (["--novel-share", "0.5", "--split", "random"], ["--novel-share applies to --split novelty only"]),
    (["--split", "novelty", "--novelty-threshold", "0"], ["--novelty-threshold must be a number in (0, 1), found 0.0"]),
    (["--split", "novelty", "--novelty-threshold", "1"], ["--novelty-threshold must be a number in (0, 1)"]),
    (["--split", "novelty", "--novelty-threshold", "1.5"], ["found 1.5"]),
    (["--split", "novelty", "--novelty-threshold", "-0.1"], ["found -0.1"]),
    (["--split", "novelty", "--novelty-threshold", "nan"], ["--novelty-threshold must be", "found nan"]),
    (["--split", "novelty", "--novelty-threshold", "inf"], ["--novelty-threshold must be"]),
    (["--split", "novelty", "--novelty-threshold", "high"], ["found 'high'"]),
    (["--split", "novelty", "--novel-share", "0"], ["--novel-share must be a number in (0, 1], found 0.0"]),
    (["--split", "novelty", "--novel-share", "1.01"], ["--novel-share must be a number in (0, 1]"]),
    (["--split", "novelty", "--cluster-similarity", "1"], ["--cluster-similarity must be a number in (0, 1)"]),
    (["--split", "novelty", "--cluster-similarity", "0x1"], ["found '0x1'"]),
    (["--split", "novelty", "--novel-share", "1", "--novelty-threshold", "0.01"], ["no novelty split with --novel-share 1"]),
    (["--split", "novelty", "--test-fraction", "0.01"], ["too few molecules for a novelty split"]),
])
def test_bad_new_kinds_are_one_line_exit_2_nothing_written(workdir, library, args, fragments):
    proc = kit_cli("prepare", "--library", library, *args, "--quiet", cwd=workdir)
    assert_user_error(proc, *fragments)
    data = workdir / "data"
    assert not data.exists() or not any(p.name != "cache" for p in data.iterdir())


def test_pair_types_and_novelty_through_the_cli(workdir, tmp_path):
    library = both_modes_library(tmp_path / "both.mgf", SMILES + TWINS)
    proc = kit_cli("prepare", "--library", library, "--name", "both", "--pair-types", "same,cross", "--split",
                   "novelty", "--novel-share", "0.3", "--test-fraction", "0.4", "--pairs-per-bin", "5", "--quiet",
                   cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "pairs per type: positive-positive" in proc.stdout and "by maximum Tanimoto to training" in proc.stdout
    details = pd.read_csv(workdir / "data" / "both" / "private" / "pair_details.csv")
    assert list(details.columns) == ["id", "same_molecule", "pair_type", "novelty_band"]
