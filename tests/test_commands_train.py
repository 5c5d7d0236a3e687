"""kit train's help: every rung listed, and a rung's options without importing the rung (no TensorFlow)."""
import ast
import subprocess
import sys

import pytest

import kit.models
from kit.cli import main
from kit.errors import UserError
from kit.models.training import rung_options


def test_kit_help_lists_every_rung(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.strip().startswith("train"))
    assert all(rung in line for rung in kit.models.available()), line
    assert main(["train", "-h"]) == 0
    assert "mean, cosine, gbm, siamese or blend" in capsys.readouterr().out


def test_train_help_imports_no_tensorflow():
    # A child process: this one may already hold TensorFlow from other tests.
    code = ("import sys\nfrom kit.cli import main\nassert main(['train', 'siamese', '--help']) == 0\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'matchms', 'kit.models.siamese') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "siamese options (kit.models.siamese.estimator.SiameseModel" in done.stdout
    assert "HEAVY []" in done.stdout, done.stdout.splitlines()[-1]
    assert "oneDNN" not in done.stderr and "absl" not in done.stderr


@pytest.mark.parametrize("option", ["--bin-width", "--mz-range", "--intensity-power", "--augment-removal-max",
                                    "--augment-removal-intensity", "--augment-intensity", "--augment-noise-max",
                                    "--augment-noise-intensity"])
def test_binning_and_augmentation_options_each_have_their_own_help(option):
    options = {flag: meaning for flag, _, meaning in rung_options(kit.models.described("siamese"))}
    meaning = options[option].split(" (default")[0]
    others = [m.split(" (default")[0] for flag, m in options.items() if flag != option]
    assert meaning and meaning not in others


@pytest.mark.slow
@pytest.mark.parametrize("rung", kit.models.available())
def test_described_rung_gives_the_options_of_the_class_itself(rung):
    # The source read without running it says what importing the class says: flags, defaults, meanings.
    stand_in, real = kit.models.described(rung), kit.models.get(rung)
    assert (stand_in.__module__, stand_in.__name__) == (real.__module__, real.__name__)
    assert rung_options(stand_in) == rung_options(real)


@pytest.mark.parametrize("name", ["nope", "", None, "mean:MeanModel", "../siamese", "siamese\n"])
def test_described_refuses_an_unknown_rung(name):
    with pytest.raises(UserError, match="unknown model"):
        kit.models.described(name)


@pytest.mark.parametrize("source", [
    "def __init__(self, a=make()):\n    pass",           # a computed default
    "def __init__(self, a=UNDEFINED):\n    pass",         # a name the module does not define
    "def __init__(self, a=os.sep):\n    pass",            # a constant of a module outside the kit
    "def __init__(self, *args, a=1):\n    pass",          # arguments the help cannot list
    "def __init__(self, a, b=1):\n    pass",              # an argument without a default
    "def __init__(self, **kwargs):\n    pass",
])
def test_defaults_the_source_does_not_give_are_left_to_the_class(source):
    init = ast.parse(source).body[0]
    with pytest.raises(kit.models._NotLiteral):
        kit.models._parameters("kit.models.mean", init.args)


def test_a_constant_is_followed_through_kit_imports():
    init = ast.parse("def __init__(self, w=binning.BIN_WIDTH, t=(1, 2)):\n    pass").body[0]
    assert [p.default for p in kit.models._parameters("kit.models.siamese.estimator", init.args)] == [0.1, (1, 2)]
    init = ast.parse("def __init__(self, r=MZ_RANGE):\n    pass").body[0]  # kit.data.binning imports it
    assert [p.default for p in kit.models._parameters("kit.data.binning", init.args)] == [(10.0, 1000.0)]


def test_a_rung_the_source_cannot_describe_is_imported(monkeypatch):
    # The stand-in is a shortcut, never a different answer: anything it cannot read comes from the class.
    monkeypatch.setitem(kit.models.REGISTRY, "odd", "kit.errors:UserError")
    assert kit.models.described("odd") is UserError


def test_blend_help_offers_the_siamese_options_nested(capsys):
    assert main(["train", "blend", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--siamese__NAME VALUE" in out and "--siamese-epochs" not in out


@pytest.mark.parametrize("argv, match", [
    (["--siamese", "3"], "option --siamese holds a model, which takes no value on the command line"),
    (["--siamese", "none"], "option --siamese holds a model"),
    (["--siamese__epoch", "3"], "did you mean --siamese__epochs"),
    (["--siamese__", "3"], "has no option --siamese__"),
    (["--siamese__epochs__x", "3"], "has no option --siamese__epochs__x"),
    (["--siamese__epochs", "three"], "option --siamese__epochs: expected an integer, found 'three'"),
    (["--siamese__epochs", "0"], "siamese__epochs must be an integer >= 1|epochs must be an integer >= 1"),
    (["--siamese__seed", "5"], "siamese__seed is set by the blend"),
    (["--siamese-epochs", "3", "--siamese__epochs", "4"], "option --siamese__epochs is given twice"),
])
def test_blend_nested_options_are_checked_before_any_spectrum_is_read(argv, match, capsys, tmp_path):
    # No such competition: a refusal naming the option comes first.
    with pytest.warns() if "--siamese-epochs" in argv else _no_warning():
        assert main(["train", "blend", "--competition", str(tmp_path / "none"), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert __import__("re").search(match, err), err


def test_the_older_blend_option_spelling_warns_and_names_the_new_one(capsys, tmp_path):
    with pytest.warns(FutureWarning, match="option --siamese-pairs-per-epoch is deprecated: use "
                                           "--siamese__pairs-per-epoch"):
        assert main(["train", "blend", "--competition", str(tmp_path / "none"), "--siamese-pairs-per-epoch", "9"]) == 2
    assert "none" in capsys.readouterr().err  # it went on to the competition, which is missing


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.parametrize("argv", [
    ["gbm", "--cross-mode", "maybe"], ["gbm", "--cross-mode", "2"], ["gbm", "--cross-mode", ""],
    ["siamese", "--use-adducts", "yes please"], ["siamese", "--use-adducts", "1e400"],
    ["siamese", "--use-adducts", "[M+H]+"], ["gbm", "--cross-mode", "0"],
    ["siamese", "--same-molecule-share", "[1]"],  # the same class: any option whose default is None
])
def test_options_whose_default_is_none_refuse_a_wrong_kind_of_value(argv, capsys, tmp_path):
    assert main(["train", argv[0], "--competition", str(tmp_path / "none"), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert __import__("re").search(r"(cross.mode|use.adducts|same.molecule.share)\b.*(expected a JSON value|must be)",
                                   err), err
