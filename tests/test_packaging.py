"""The install contract: TensorFlow comes only from an extra, never from the base dependencies."""
from pathlib import Path

import pytest

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
