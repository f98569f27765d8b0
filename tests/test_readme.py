"""README.md: a newcomer's guide whose first screen holds the two commands that CI and the demo really run."""
import re
import subprocess

from common import paths
from tests.conftest import readme_commands

README = paths.REPO_ROOT / "README.md"
CI_RUN = paths.REPO_ROOT / ".ci" / "run"
DEMO_COMMAND = "pip install -r requirements.txt && ./demo.sh"
TEST_COMMAND = "pip install -r requirements-dev.txt && python -m pytest -q"


def test_readme_is_short_and_starts_with_the_demo_and_test_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    first_screen = "\n".join(lines[:10])
    assert DEMO_COMMAND in first_screen and TEST_COMMAND in first_screen
    assert readme_commands() == [DEMO_COMMAND, TEST_COMMAND]
    assert (paths.REPO_ROOT / "demo.sh").stat().st_mode & 0o111  # ./demo.sh runs as written


def test_ci_runs_the_commands_it_reads_from_the_readme():
    printed = subprocess.run(["bash", str(CI_RUN), "--print-commands"], capture_output=True, text=True, check=True,
                             timeout=60)
    assert printed.stdout.splitlines() == readme_commands()
    # Read, not copied: a README edit changes what CI runs, and CI installs and tests nothing on its own.
    ci = CI_RUN.read_text(encoding="utf-8")
    assert [command for command in readme_commands() if command in ci] == []
    assert "pip install" not in ci and "pytest -q" not in ci


def test_readme_links_point_to_files_that_exist():
    text = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)#]+)\)", text))
    named = set(re.findall(r"`(docs/[\w.-]+|data/README\.md|models/README\.md)`", text))  # not the outputs
    targets = linked | named
    assert {"docs/codec.md", "docs/continuation.md", "docs/benchmarks.md", "docs/score.png"} <= targets
    missing = [target for target in targets if not (paths.REPO_ROOT / target).exists()]
    assert missing == []
