"""The layers run one way: drivers/ (the SDK, the connectors, the runtime), then faults/, then chaos/.

Every import is read from the source with `ast`, function-level ones included, and each violation
is reported with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HUDI_INPUT_WRITER = ("chaos/sides/hudi.py", "drivers.hudi.sink")
"""The one harness side that runs driver code: hudi-rs cannot write, so the Hudi *input* table is
written with the testbed's own writer. The output is still read with hudi-rs."""


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module in ("drivers", "faults", "chaos")]  # `from drivers import mutants`
    return found


def _violations(folder: str, forbidden, root: Path = REPO) -> list[str]:
    problems = []
    for path in sorted((root / folder).rglob("*.py")):
        where = path.relative_to(root).as_posix()
        for line, module in _imports(path):
            why = forbidden(where, module)
            if why:
                problems.append(f"{where}:{line}: imports {module}: {why}")
    return problems


def _top(module: str) -> str:
    return module.split(".")[0]


def test_drivers_import_nothing_above_them():
    assert _violations("drivers", lambda where, module: _top(module) in ("chaos", "faults")
                       and "drivers/ is the ground floor") == []


def test_the_sdk_stands_on_its_own():
    assert _violations("drivers/sdk", lambda where, module: _top(module) == "drivers"
                       and not module.startswith("drivers.sdk")
                       and "the SDK imports nothing of the connectors or the runtime") == []


def test_faults_import_nothing_of_the_harness():
    assert _violations("faults", lambda where, module: _top(module) == "chaos"
                       and "faults/ acts on what it is handed, through protocols") == []


def test_the_harness_reads_and_checks_without_driver_code():
    def forbidden(where: str, module: str) -> str | bool:
        if _top(module) != "drivers" or module.startswith(("drivers.sdk", "drivers.connectors")):
            return False
        if (where, module) == HUDI_INPUT_WRITER:
            return False
        return "a reader or checker may use only the SDK's data contracts and the connector table"
    assert _violations("chaos/sides", forbidden) + _violations("chaos/checkers", forbidden) == []


def test_the_check_itself_finds_a_violation_with_its_file_and_line(tmp_path):
    (tmp_path / "drivers").mkdir()
    (tmp_path / "drivers" / "leaky.py").write_text("import os\n\ndef f():\n    from chaos import experiment\n")
    found = _violations("drivers", lambda where, module: _top(module) == "chaos" and "up", root=tmp_path)
    assert found == ["drivers/leaky.py:4: imports chaos: up", "drivers/leaky.py:4: imports chaos.experiment: up"]
