"""The build fails when a dependency points the wrong way (style.md 2.1): import-linter's contracts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run(
        [exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_the_contracts_catch_a_service_importing_another(tmp_path: Path) -> None:
    """A copy of the contracts over two toy packages: one service importing another is reported."""
    for name, body in {
        "fmcsa_status": "",
        "fmcsa_gateway": "import fmcsa_status\n",
        "fmcsa_events": "",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body)
    (tmp_path / ".importlinter").write_text(
        textwrap.dedent(
            """
            [importlinter]
            root_packages =
                fmcsa_status
                fmcsa_gateway
                fmcsa_events

            [importlinter:contract:services]
            name = services never import each other
            type = independence
            modules =
                fmcsa_status
                fmcsa_gateway
            """
        )
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "fmcsa_gateway -> fmcsa_status" in result.stdout
