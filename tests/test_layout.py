"""The shape of the package: stages in folders, modules of one job, imports at the top, docs that point somewhere.

The import contract between stages (a lower one never imports a higher one) is import-linter's,
in pyproject.toml, run by `make lint`; these tests keep the rest of the layout that README's
"How the code is laid out" describes.
"""
import ast
import re

import pytest

from conftest import REPO

KIT = REPO / "kit"
MODULES = sorted(KIT.rglob("*.py"))
MAX_LINES = 800
MAX_IMPORTS_IN_FUNCTIONS = 60
# Paths a docstring or comment may cite, relative to the repository root.
CITED = re.compile(r"(?<![\w/.])((?:kit|tests|bench|docs|notebooks)/[\w./-]*\w\.(?:py|md|ipynb|png|txt|csv))")


def _name(path):
    return str(path.relative_to(REPO))


def _imports_in_functions(tree):
    """Import statements inside function bodies, each counted once (nested functions too)."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return len(inside)


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_is_over_800_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} lines: split it by job"


def test_imports_are_at_the_top_outside_the_commands():
    counts = {_name(p): _imports_in_functions(ast.parse(p.read_text(encoding="utf-8")))
              for p in MODULES if "commands" not in p.relative_to(KIT).parts}
    total = sum(counts.values())
    worst = sorted(counts.items(), key=lambda item: -item[1])[:5]
    assert total <= MAX_IMPORTS_IN_FUNCTIONS, f"{total} imports inside functions outside kit/commands; most in {worst}"


@pytest.mark.parametrize("package", sorted(p.parent for p in KIT.rglob("__init__.py")), ids=_name)
def test_every_package_says_what_it_holds(package):
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring, f"{_name(package)}/__init__.py has no docstring"


def test_the_readme_names_every_stage():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    stages = sorted(p.name for p in KIT.iterdir() if (p / "__init__.py").is_file())
    missing = [name for name in stages if f"`kit/{name}/`" not in section]
    assert not missing, f"README's layout section does not name {missing}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_docstrings_cite_only_files_of_the_repository(path):
    text = path.read_text(encoding="utf-8")
    assert "DESIGN.md" not in text, f"{_name(path)} cites DESIGN.md, which is not in the repository"
    missing = sorted({cited for cited in CITED.findall(text) if "*" not in cited and not (REPO / cited).exists()})
    assert not missing, f"{_name(path)} cites {missing}"


def test_the_citation_pattern_finds_paths_and_ignores_module_names():
    text = "see kit/board/store.py and bench/README.md, not kit.board.store or https://x.org/kit/a.py"
    assert CITED.findall(text) == ["kit/board/store.py", "bench/README.md"]
