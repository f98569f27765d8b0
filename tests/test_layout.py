"""The code's layout: every module of common/ small enough for a newcomer to hold (issue 25's limit) and saying
what it is for in its first lines."""
import ast
from pathlib import Path

import pytest

COMMON = Path(__file__).resolve().parents[1] / "common"
MAX_LINES = 400
MODULES = sorted(COMMON.rglob("*.py"))


def test_common_holds_the_modules_this_test_reads():
    names = {module.relative_to(COMMON).as_posix() for module in MODULES}
    assert {"audio.py", "step_choice.py", "replays.py", "codec/layers.py"} <= names, names


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.relative_to(COMMON).as_posix())
def test_each_module_of_common_is_at_most_400_lines_and_says_what_it_is_for(module):
    text = module.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{module.name}: {len(text.splitlines())} lines; split it by concern"
    if module.name != "__init__.py" or text.strip():
        assert ast.get_docstring(ast.parse(text)), f"{module.name} has no docstring"
