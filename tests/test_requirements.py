"""The README's two commands install every package the code imports: what the pipeline imports from the first
(requirements.txt), what the tests and the code they run import from the two together.

A package counts as installed only when a requirements file the commands reach names it: one that arrives only
because another package depends on it (numba through librosa, PIL through matplotlib) may vanish with that
package's next release, so importing it directly asks for a line of its own.
"""
import ast
import importlib.metadata
import re
import shlex
import sys

from common import paths
from tests.conftest import readme_commands

ROOT = paths.REPO_ROOT
PIPELINE_FOLDERS = ("common", "demo")  # with the top-level scripts: what ./demo.sh runs
TEST_FOLDERS = ("tests", "bench")  # the tests, and the benchmarks' code some of them check


def normalised(name):
    """A distribution's name as PEP 503 compares them: scikit_learn, Scikit.Learn -> scikit-learn."""
    return re.sub(r"[-_.]+", "-", name).lower()


def required_names(requirements_file):
    """Distributions a requirements file names, following its `-r` includes (relative to the file)."""
    names = set()
    for line in requirements_file.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        include = re.match(r"(?:-r|--requirement)[\s=]+(\S+)$", line)
        if include:
            names |= required_names(requirements_file.parent / include.group(1))
        elif line and not line.startswith("-"):
            names.add(normalised(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group()))
    return names


def installed_by(command, root=ROOT):
    """Distributions the `pip install` parts of a shell command name, directly or in `-r` files."""
    names = set()
    for part in re.split(r"&&|\|\||;", command):
        words = shlex.split(part)
        if words[:2] != ["pip", "install"] and words[:4] != ["python", "-m", "pip", "install"]:
            continue
        words = words[words.index("install") + 1:]
        for before, word in zip([None] + words, words):
            if before in ("-r", "--requirement"):
                names |= required_names(root / word)
            elif not word.startswith("-") and before not in ("-c", "--constraint"):
                names.add(normalised(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", word).group()))
    return names


def imported_packages(path):
    """Top-level names of the modules a Python file imports anywhere in it (function-level imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def project_modules(root=ROOT):
    return {path.stem for path in root.glob("*.py")} | set(PIPELINE_FOLDERS) | set(TEST_FOLDERS)


def python_files(folders, root=ROOT):
    return sorted(root.glob("*.py")) + sorted(path for folder in folders for path in (root / folder).rglob("*.py"))


def missing_packages(files, installed, root=ROOT):
    """'package (imported by file)' for each import of a package the requirements do not name.

    A module maps to the distributions that ship it here (sklearn -> scikit-learn); one not installed here
    keeps its own name, so it is reported all the same."""
    shipped_by = importlib.metadata.packages_distributions()
    ours = project_modules(root)
    missing = []
    for path in files:
        for module in sorted(imported_packages(path) - set(sys.stdlib_module_names) - ours):
            distributions = {normalised(name) for name in shipped_by.get(module, [module])}
            if not distributions & installed:
                missing.append(f"{'/'.join(sorted(distributions))} (imported by {path.relative_to(root)})")
    return missing


def test_the_pipeline_imports_only_what_the_first_command_installs():
    missing = missing_packages(python_files(PIPELINE_FOLDERS), installed_by(readme_commands()[0]))
    assert not missing, f"the README's first command does not install {', '.join(missing)}"


def test_the_tests_import_only_what_the_two_commands_install():
    installed = set().union(*(installed_by(command) for command in readme_commands()))
    missing = missing_packages(python_files(PIPELINE_FOLDERS + TEST_FOLDERS), installed)
    assert not missing, f"the README's commands do not install {', '.join(missing)}"


def test_the_check_names_a_package_imported_but_not_required(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy>=1.26  # comment\n-r more.txt\n", encoding="utf-8")
    (tmp_path / "more.txt").write_text("Scikit_Learn>=1.3\n", encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import os\nimport numpy as np\nfrom sklearn import linear_model\nimport tests.conftest\n"
        "def f():\n    import librosa\n    from joblib import Parallel\n", encoding="utf-8")
    installed = installed_by("pip install -r requirements.txt && python -m pytest -q", root=tmp_path)
    assert installed == {"numpy", "scikit-learn"}
    # librosa: not required at all; joblib: installed by scikit-learn, not named, so it counts as missing.
    assert missing_packages(python_files(TEST_FOLDERS, root=tmp_path), installed, root=tmp_path) == [
        "joblib (imported by tests/test_x.py)", "librosa (imported by tests/test_x.py)"]
