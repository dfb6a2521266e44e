"""The build fails when a dependency points the wrong way (style.md 2.1): import-linter's contracts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
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


def test_the_kit_contract_lets_only_source_services_import_the_source_kit(tmp_path: Path) -> None:
    """The contract as pyproject.toml states it, over toy packages: a source importing the kit passes,
    any other service or lib importing it is reported (issue 22: "an import contract says so").
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if c["name"] == "only source services import the source kit"]
    assert contract["type"] == "forbidden"
    assert contract["forbidden_modules"] == ["fmcsa_source_kit"]
    sources = [
        p for p in config["root_packages"] if p.startswith("fmcsa_source_") and p != "fmcsa_source_kit"
    ]
    assert len(sources) == 4
    others = [
        p for p in config["root_packages"] if p not in sources and p not in ("fmcsa_source_kit", "bench")
    ]
    assert set(contract["source_modules"]) == set(others), "every root package but the sources and the bench"
    bodies = {name: "" for name in config["root_packages"]}
    bodies |= {name: "import fmcsa_source_kit\n" for name in sources}
    bodies |= {"fmcsa_gateway": "import fmcsa_source_kit\n", "fmcsa_runtime": "import fmcsa_source_kit\n"}
    for name, body in bodies.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body)
    lines = "\n".join(f"    {m}" for m in contract["source_modules"])
    roots = "\n".join(f"    {m}" for m in bodies)
    (tmp_path / ".importlinter").write_text(
        f"[importlinter]\nroot_packages =\n{roots}\n\n"
        f"[importlinter:contract:kit]\nname = {contract['name']}\ntype = forbidden\n"
        f"source_modules =\n{lines}\nforbidden_modules =\n    fmcsa_source_kit\n"
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    reported = {line.split(" -> ")[0].strip(" -") for line in result.stdout.splitlines() if " -> " in line}
    assert reported == {"fmcsa_gateway", "fmcsa_runtime"}, result.stdout
