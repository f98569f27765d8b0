"""README.md: a newcomer's guide whose first screen holds the two commands that CI and the demo really run."""
import re

from common import paths

README = paths.REPO_ROOT / "README.md"
DEMO_COMMAND = "pip install -r requirements.txt && ./demo.sh"
TEST_COMMAND = "python -m pytest -q"


def test_readme_is_short_and_starts_with_the_demo_and_test_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    first_screen = "\n".join(lines[:10])
    assert DEMO_COMMAND in first_screen and TEST_COMMAND in first_screen


def test_ci_installs_the_requirements_and_runs_the_readmes_test_command():
    ci = (paths.REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")]
    # The same command, with the interpreter CI names python3; nothing added that would pick other tests.
    pytest_runs = [re.sub(r"\s*\|\|.*$", "", line) for line in commands if "-m pytest" in line]
    assert pytest_runs == [TEST_COMMAND.replace("python ", "python3 ", 1)]
    assert any("-m pip install" in line and "-r requirements.txt" in line for line in commands)
    assert (paths.REPO_ROOT / "demo.sh").stat().st_mode & 0o111  # ./demo.sh runs as written


def test_readme_links_point_to_files_that_exist():
    text = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)#]+)\)", text))
    named = set(re.findall(r"`(docs/[\w.-]+|data/README\.md|models/README\.md)`", text))  # not the outputs
    targets = linked | named
    assert {"docs/codec.md", "docs/continuation.md", "docs/benchmarks.md", "docs/score.png"} <= targets
    missing = [target for target in targets if not (paths.REPO_ROOT / target).exists()]
    assert missing == []
