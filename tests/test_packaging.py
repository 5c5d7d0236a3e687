"""The install contract (TensorFlow comes only from an extra, never from the base dependencies), the typed
public API, and modules of a readable length."""
import functools
import inspect
import typing
from pathlib import Path

import matchms
import pandas as pd
import pytest

import kit

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(requirements):
    from packaging.requirements import Requirement

    return {Requirement(r).name.lower() for r in requirements}


def test_base_dependencies_never_pull_tensorflow(project):
    # Kaggle and Colab images ship their own TensorFlow: a second one would shadow the GPU build.
    assert not {"tensorflow", "tensorflow-cpu"} & _names(project["dependencies"])
    assert "keras" in _names(project["dependencies"])


@pytest.mark.parametrize("extra, wanted", [("cpu", {"tensorflow-cpu", "tensorflow"}), ("gpu", {"tensorflow"})])
def test_extras_bring_a_tensorflow(project, extra, wanted):
    assert _names(project["optional-dependencies"][extra]) == wanted


def test_gpu_extra_asks_for_cuda_libraries(project):
    from packaging.requirements import Requirement

    (gpu,) = (Requirement(r) for r in project["optional-dependencies"]["gpu"])
    assert "and-cuda" in gpu.extras


def test_requirements_pin_the_same_tensorflow_range_as_the_cpu_extra(project):
    # `make setup` (requirements.txt) and `pip install .[cpu]` must give the same TensorFlow.
    from packaging.requirements import Requirement

    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pinned = {str(Requirement(line).specifier) for line in lines if line.startswith("tensorflow")}
    extra = {str(Requirement(r).specifier) for r in project["optional-dependencies"]["cpu"]}
    assert pinned == extra


def test_licence_is_an_spdx_expression(project):
    # PEP 639: a TOML table makes setuptools (77 and later) print a deprecation notice on every install.
    assert project["license"] == "Apache-2.0"


def test_setuptools_new_enough_for_the_spdx_licence_is_asked_for_everywhere():
    from packaging.requirements import Requirement
    from packaging.version import Version

    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    # pip's isolated build (pyproject) and the Makefile's build without isolation (requirements.txt).
    for text in build + [line for line in lines if line.startswith("setuptools")]:
        spec = Requirement(text).specifier
        assert not spec.contains(Version("76.9")) and spec.contains(Version("77.0")), text


def test_the_installed_setuptools_reads_the_project_without_a_warning():
    import warnings

    from packaging.version import Version
    from setuptools import __version__ as setuptools_version
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    assert Version(setuptools_version) >= Version("77")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message) for w in caught] == []
    assert dist.metadata.license_expression == "Apache-2.0"


# --- the public API is typed (kit.__init__ names it) ---------------------------------------

@pytest.mark.parametrize(
    "name", ["load_competition", "load_spectra", "save_spectra", "write_submission", "score_submission",
             "prepare_competition"],
)
def test_public_functions_annotate_every_parameter_and_the_return(name):
    function = getattr(kit, name)
    hints = typing.get_type_hints(function)  # also fails when an annotation names nothing importable
    assert set(inspect.signature(function).parameters) | {"return"} <= set(hints), sorted(hints)


def _competition_members():
    for name, member in vars(kit.Competition).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            yield name, member.fget
        elif isinstance(member, functools.cached_property):
            yield name, member.func
        elif inspect.isfunction(member):
            yield name, member


@pytest.mark.parametrize("name, function", list(_competition_members()))
def test_competition_members_annotate_what_they_give(name, function):
    assert "return" in typing.get_type_hints(function, localns={"pd": pd, "Spectrum": matchms.Spectrum}), name


# --- one home per job: no module of the lower stages grows past 800 lines --------------------

@pytest.mark.parametrize("folder", ["kit", "kit/data", "kit/competition", "kit/scoring", "kit/hosting"])
def test_modules_of_the_lower_stages_stay_under_800_lines(folder):
    long = {path.name: n for path in sorted((ROOT / folder).glob("*.py"))
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 800}
    assert not long, long
