"""Can the practice competition be looked up? Two attacks on the simulated library.

The attack code sees what a participant sees: the competition's public files
(``train.mgf``, ``test.mgf``, ``test_pairs.csv``), the kit (its simulator, the molecules
its dependencies ship, its edit rules), but not the seed. This script prepares a
practice competition with a seed drawn from the operating system and never hands it to
the attacks; only the final scoring reads ``private/``.

(a) Plain lookup: each test spectrum's neutral mass (precursor m/z less the adduct)
    against RDKit's NCI molecules that are not in ``train.mgf``; the closest one within
    the tolerance is taken as the answer.
(b) Edit-aware lookup: NCI molecules whose mass is the test spectrum's neutral mass
    less any sum of one or two edit mass shifts (``kit.data.simulated_molecules.EDITS``, including the
    moves that shift nothing) are candidates, those that need fewest edits first; each
    candidate, and its single and double edits whose mass matches exactly, are
    simulated with the test spectrum's adduct and collision energy and matched by
    modified cosine; the best match is the answer. This costs seconds per test
    molecule, so a random sample of test molecules (``--sample``), of candidates per
    molecule (``MAX_CANDIDATES``) and of double edits per candidate
    (``MAX_DOUBLE_EDITS``) is attacked; the pairs among the sampled molecules are scored.

Answers become a submission (the Tanimoto of the two answers where both spectra of a
pair have one, the gbm's prediction elsewhere) whose Private RMSE is compared with the
gbm rung's, trained here as ``kit train gbm`` does. Two spectra of one neutral mass are
most likely one molecule whatever the library (precursor m/z tells that much without a
lookup), so such pairs are set to 1 in the baseline and every attack, and the answers
are judged on the other pairs.

Usage::

    .venv/bin/python bench/bench_lookup_attack.py [--sample 40] [--edit-rules kit/data/simulated_molecules.py]

``--edit-rules`` names the module that holds the edit rules, so that the attack can be
run against a kit whose simulator has none (an older commit).
"""
import argparse
import importlib.util
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kit.data import fragmenter, simulate, simulated_molecules  # noqa: E402  (the repository's kit, not an installed one)
from kit.data.chemistry import fingerprints, tanimoto_rows  # noqa: E402

MASS_TOLERANCE = 0.002  # Da; the precursor m/z is written with five decimals
MAX_CANDIDATES = 6      # candidate shipped molecules simulated per test molecule
MAX_DOUBLE_EDITS = 150  # double edits simulated per candidate (a random sample)


def load_edit_rules(path):
    """The module that defines ``EDITS``, ``edit_sites`` and ``apply_edit``."""
    spec = importlib.util.spec_from_file_location("edit_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- what the attacker knows ------------------------------------------------------------

def shipped_candidates(train_spectra):
    """NCI molecules (as the kit reads them) that are not in train.mgf: blocks, mols, masses."""
    records = simulated_molecules.read_smiles_records(simulated_molecules.nci_smiles_path())
    usable = simulated_molecules.usable_molecules(records)
    in_train = {s.get("inchikey", "")[:14] for s in train_spectra}
    blocks, mols = [], []
    with rdBase.BlockLogs():
        for _, _, mol in usable:
            block = Chem.MolToInchiKey(mol)[:14]
            if block not in in_train and block not in blocks:
                blocks.append(block)
                mols.append(mol)
    masses = np.array([Descriptors.ExactMolWt(mol) for mol in mols])
    order = np.argsort(masses)
    return [blocks[k] for k in order], [mols[k] for k in order], masses[order]


def neutral_mass(spectrum):
    return float(spectrum.get("precursor_mz")) - fragmenter.ADDUCTS[spectrum.get("adduct")][2]


def formula_mass(text, dropped=0.0):
    """Mass of a signed formula change as :data:`kit.data.simulated_molecules.EDITS` writes it ("+F-H")."""
    table = Chem.GetPeriodicTable()
    total = 0.0
    for sign, group in re.findall(r"([+-])([A-Za-z0-9]+)", text):
        for symbol, count in re.findall(r"([A-Z][a-z]?)(\d*)", group):
            mass = dropped if symbol == "X" else table.GetMostCommonIsotopeMass(symbol)
            total += (1 if sign == "+" else -1) * mass * int(count or 1)
    return total


def edit_shifts(rules):
    """Mass shift of each edit kind (None where it depends on the site), every shift, every sum of two.

    A drop removes a terminal atom and its hydrogens: its shift is the negative of an
    addition's, or of a terminal S, N or O with its hydrogens.
    """
    fixed = {kind: None if "X" in change else formula_mass(change) for kind, (_, change) in rules.EDITS.items()}
    single = {round(shift, 6) for shift in fixed.values() if shift is not None}
    single |= {-shift for shift in single if shift > 0}
    single |= {-formula_mass("+SH2-H"), -formula_mass("+OH2-H"), -formula_mass("+NH3-H")}
    pairs = {a + b for a in single | {0.0} for b in single | {0.0}}
    return fixed, np.array(sorted(single)), np.array(sorted(pairs))


def site_shift(mol, kind, site, fixed):
    """Mass shift of one edit at one site, without making it."""
    if fixed[kind] is not None:
        return fixed[kind]
    atom = mol.GetAtomWithIdx(site[0])
    table = Chem.GetPeriodicTable()
    hydrogen = table.GetMostCommonIsotopeMass("H")
    return hydrogen - table.GetMostCommonIsotopeMass(atom.GetAtomicNum()) - atom.GetTotalNumHs() * hydrogen


def within(masses, targets, tolerance=MASS_TOLERANCE):
    """Indices of ``masses`` (sorted) within ``tolerance`` of any of ``targets``."""
    low = np.searchsorted(masses, np.asarray(targets) - tolerance, side="left")
    high = np.searchsorted(masses, np.asarray(targets) + tolerance, side="right")
    return sorted({k for lo, hi in zip(low, high) for k in range(lo, hi)})


def plain_lookup(test_spectra, masses):
    """Index of the closest shipped molecule by neutral mass, or -1, per test spectrum."""
    picks = []
    for spectrum in test_spectra:
        target = neutral_mass(spectrum)
        near = within(masses, [target])
        picks.append(min(near, key=lambda k: abs(masses[k] - target)) if near else -1)
    return picks


def simulated_match(mol, spectrum, info_cache, loss_patterns, cosine):
    """Modified cosine between ``spectrum`` and ``mol`` simulated the same way."""
    from matchms import Spectrum

    smiles = Chem.MolToSmiles(mol)
    if smiles not in info_cache:
        info_cache[smiles] = fragmenter.describe_molecule(mol, loss_patterns)
    energy = float(str(spectrum.get("collision_energy")).split()[0])
    (mz, intensity), precursor = fragmenter.simulate_peaks(
        info_cache[smiles], spectrum.get("adduct"), energy, np.random.default_rng(0)
    )
    candidate = Spectrum(mz=mz, intensities=intensity, metadata={"precursor_mz": precursor},
                         metadata_harmonization=False)
    return float(cosine.pair(candidate, spectrum)["score"])


def edited_candidates(parent, target, rules, fixed, rng):
    """The parent, its single edits and (a sample of) its double edits of mass ``target``."""
    singles = []
    for kind in rules.EDITS:
        for site in rules.edit_sites(parent, kind):
            edited = rules.apply_edit(parent, kind, site)
            if edited is not None:
                singles.append((edited, Descriptors.ExactMolWt(edited)))
    found = [parent] + [mol for mol, mass in singles if abs(mass - target) < MASS_TOLERANCE]
    # Second edits whose shift closes the gap; the mass is checked again once made.
    doubles = [
        (first, kind, site)
        for first, mass in singles
        for kind in rules.EDITS
        for site in rules.edit_sites(first, kind)
        if abs(mass + site_shift(first, kind, site, fixed) - target) < MASS_TOLERANCE
    ]
    for k in rng.permutation(len(doubles))[:MAX_DOUBLE_EDITS]:
        edited = rules.apply_edit(*doubles[k])
        if edited is not None and abs(Descriptors.ExactMolWt(edited) - target) < MASS_TOLERANCE:
            found.append(edited)
    return found


def edit_aware_lookup(test_spectra, mols, masses, rules, sample, rng):
    """Best simulated match per test spectrum of ``sample`` test molecules (others None)."""
    from matchms.similarity import ModifiedCosineGreedy

    fixed, singles, doubles = edit_shifts(rules)
    # Spectra of one molecule share its neutral mass; the attack groups them by it.
    groups = {}
    for index, spectrum in enumerate(test_spectra):
        groups.setdefault(round(neutral_mass(spectrum), 3), []).append(index)
    keys = sorted(groups)
    chosen = [keys[k] for k in rng.choice(len(keys), size=min(sample, len(keys)), replace=False)]
    loss_patterns, cosine, cache = fragmenter.compile_loss_patterns(), ModifiedCosineGreedy(tolerance=0.01), {}
    picks = [None] * len(test_spectra)
    n_simulated = 0
    for key in chosen:
        spectra = [test_spectra[k] for k in groups[key]]
        target = neutral_mass(spectra[0])
        # Fewest edits first: the same mass, then one edit's shift, then two.
        parents = []
        for shifts in ([0.0], singles, doubles):
            tier = [k for k in within(masses, target - np.asarray(shifts)) if k not in parents]
            parents += [tier[k] for k in rng.permutation(len(tier))]
        parents = parents[:MAX_CANDIDATES]
        best, best_score = None, -1.0
        for parent in parents:
            for mol in edited_candidates(mols[parent], target, rules, fixed, rng):
                score = np.mean([simulated_match(mol, s, cache, loss_patterns, cosine) for s in spectra])
                n_simulated += 1
                if score > best_score:
                    best, best_score = mol, score
        for k in groups[key]:
            picks[k] = best
    return picks, len(chosen), n_simulated


# --- scoring (reads private/) ------------------------------------------------------------

def true_molecules(comp):
    """(first InChIKey block, SMILES) of every test spectrum, from the library rebuilt with the private seed."""
    ids = pd.read_csv(comp.path / "private" / "test_ids.csv")
    seed = comp.private_manifest["library"]["sources"][0]["simulation_seed"]
    library = {
        s.get("spectrum_id"): (s.get("inchikey")[:14], s.get("smiles"))
        for s in simulate.simulate_library(seed=seed, progress=False)
    }
    source = dict(zip(ids["spectrum_id"], ids["source_spectrum_id"]))
    return [library[source[s.get("spectrum_id")]] for s in comp.test_spectra]


def random_answers(test_spectra, mols, masses, answered, rng, width=5.0):
    """Control: for each answered spectrum, a random shipped molecule within ``width`` Da."""
    picks = []
    for spectrum, has in zip(test_spectra, answered):
        near = within(masses, [neutral_mass(spectrum)], width) if has else []
        picks.append(mols[near[int(rng.integers(len(near)))]] if near else None)
    return picks


def answer_labels(comp, answers):
    """Tanimoto of the two answers of each test pair (NaN where either has none)."""
    index = {s.get("spectrum_id"): k for k, s in enumerate(comp.test_spectra)}
    smiles = [None if mol is None else Chem.MolToSmiles(mol) for mol in answers]
    known = sorted({s for s in smiles if s})
    fps = dict(zip(known, fingerprints(known))) if known else {}
    a = [smiles[index[x]] for x in comp.test_pairs["spectrum_id_a"]]
    b = [smiles[index[x]] for x in comp.test_pairs["spectrum_id_b"]]
    both = [k for k in range(len(a)) if a[k] and b[k]]
    labels = np.full(len(a), np.nan)
    if both:
        labels[both] = tanimoto_rows([fps[a[k]] for k in both], [fps[b[k]] for k in both])
    return labels


def private_rmse(comp, predictions, rows=None):
    from kit.scoring.scorer import score_submission
    from kit.scoring.writer import write_submission

    if rows is None:
        with tempfile.TemporaryDirectory() as out:
            return score_submission(write_submission(comp, predictions, out_dir=out), comp).private
    solution = pd.read_csv(comp.solution_path)
    mask = np.zeros(len(solution), dtype=bool)
    mask[rows] = True
    mask &= (solution["Usage"] == "Private").to_numpy()
    errors = np.asarray(predictions)[mask] - solution["similarity"].to_numpy()[mask]
    return float(np.sqrt(np.mean(errors**2))), int(mask.sum())


def train_gbm(comp):
    """The gbm rung fitted as ``kit train gbm`` fits it (same validation split, seed 0)."""
    import kit.models
    from kit.models.training import VALIDATION_FRACTION, model_params, split_for_validation

    cls = kit.models.get("gbm")
    model = cls(**{**model_params(cls, {}), "seed": 0})
    train, val = split_for_validation(comp.train_spectra, VALIDATION_FRACTION, 0)
    model.fit(train, validation_spectra=val)
    return model.predict(comp.test_spectra, comp.test_pairs)


def same_mass(comp):
    """Whether the two spectra of each test pair have the same neutral mass (public)."""
    mass = {s.get("spectrum_id"): round(neutral_mass(s), 3) for s in comp.test_spectra}
    return np.array([mass[a] == mass[b] for a, b in zip(comp.test_pairs["spectrum_id_a"], comp.test_pairs["spectrum_id_b"])])


def report(comp, name, answers, truth, baseline):
    """One table row: answered and identified shares, exact Private labels, RMSEs.

    Pairs whose two spectra share a neutral mass are left to ``baseline`` (the gbm with
    such pairs set to 1): precursor m/z alone tells that much, lookup or not.
    """
    solution = pd.read_csv(comp.solution_path)
    truth_labels = solution["similarity"].to_numpy()
    private = (solution["Usage"] == "Private").to_numpy()
    answered = [k for k, mol in enumerate(answers) if mol is not None]
    identified = sum(Chem.MolToInchiKey(answers[k])[:14] == truth[k][0] for k in answered) / len(answers)
    if answered:
        mine = fingerprints([Chem.MolToSmiles(answers[k]) for k in answered])
        closeness = float(np.mean(tanimoto_rows(mine, fingerprints([truth[k][1] for k in answered]))))
    labels = answer_labels(comp, answers)
    used = ~np.isnan(labels) & ~same_mass(comp)
    exact = np.sum(used & private & (np.abs(labels - truth_labels) < 1e-9)) / np.sum(private)
    submission = np.where(used, labels, baseline)
    row = {
        "attack": name,
        "test spectra answered": f"{len(answered) / len(answers):.1%}",
        "identified": f"{identified:.1%}",
        "answer vs true molecule (mean Tanimoto)": f"{closeness:.3f}" if answered else "",
        "Private labels exact": f"{exact:.1%}",
        "Private RMSE": f"{private_rmse(comp, submission):.5f}",
    }
    if np.any(used & private):
        attack_rmse, n = private_rmse(comp, submission, np.flatnonzero(used))
        gbm_rmse, _ = private_rmse(comp, baseline, np.flatnonzero(used))
        row["answered Private pairs: attack / gbm RMSE"] = f"{attack_rmse:.5f} / {gbm_rmse:.5f} (n={n})"
    return row


def markdown_table(rows):
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(key, "")) for key in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=40, help="test molecules the edit-aware attack tries")
    parser.add_argument("--edit-rules", default=str(REPO / "kit" / "data" / "simulated_molecules.py"))
    args = parser.parse_args(argv)
    rules = load_edit_rules(args.edit_rules)
    from kit.competition.prepare import prepare_competition

    with tempfile.TemporaryDirectory() as data:
        start = time.perf_counter()
        comp = prepare_competition(out=data, seed=secrets.randbits(62), progress=False, echo=lambda *_: None)
        prepare_seconds = time.perf_counter() - start
        # --- the attacks: public files and the kit only
        start = time.perf_counter()
        blocks, mols, masses = shipped_candidates(comp.train_spectra)
        plain = [None if k < 0 else mols[k] for k in plain_lookup(comp.test_spectra, masses)]
        plain_seconds = time.perf_counter() - start
        start = time.perf_counter()
        edited, n_molecules, n_simulated = edit_aware_lookup(
            comp.test_spectra, mols, masses, rules, args.sample, np.random.default_rng(1)
        )
        edit_seconds = time.perf_counter() - start
        # --- scoring
        start = time.perf_counter()
        gbm = train_gbm(comp)
        gbm_seconds = time.perf_counter() - start
        truth = true_molecules(comp)
        control = random_answers(comp.test_spectra, mols, masses, [m is not None for m in plain], np.random.default_rng(2))
        baseline = np.where(same_mass(comp), 1.0, gbm)
        rows = [
            {"attack": "gbm rung alone", "Private RMSE": f"{private_rmse(comp, gbm):.5f}"},
            {
                "attack": "gbm, pairs of one neutral mass set to 1 (no lookup)",
                "Private RMSE": f"{private_rmse(comp, baseline):.5f}",
            },
            report(comp, "(a) plain m/z lookup", plain, truth, baseline),
            report(
                comp, "(control) a random shipped molecule within 5 Da, for the spectra (a) answers", control, truth, baseline
            ),
            report(comp, f"(b) edit-aware lookup, {n_molecules} test molecules", edited, truth, baseline),
        ]
    print(
        f"kit prepare (seed not shown) {prepare_seconds:.1f} s; {len(mols):,} shipped molecules not in "
        f"train.mgf; lookup {plain_seconds:.1f} s; edit-aware lookup {edit_seconds:.1f} s "
        f"({n_simulated:,} candidates simulated); gbm {gbm_seconds:.1f} s"
    )
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
