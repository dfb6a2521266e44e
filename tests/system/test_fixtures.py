"""The repository stands alone: a plain clone with nothing beside it runs the tests that read fixtures,
and the browser tests say clearly when no browser is to be had.

- The newcomer path: the working tree (as `git add -A` would commit it) is cloned into an empty
  temporary folder, with no design folder beside it, and `./fmcsa test` runs a test of each package
  that reads `tests/fixtures/fmcsa/` there, in one process, without PostgreSQL (as on a newcomer's
  machine). It reuses this machine's uv and its package cache, so it needs no network. A second
  `./fmcsa` there leaves the environment the first one made as it is.
- The fixture copy: where the team's design folder happens to sit beside this checkout (as
  `../shared`, in CI), the example bodies kept in the repository must still equal its originals; a file
  the repository adds beyond them must be named in the fixtures README as written here. Skipped cleanly
  anywhere else.
- The browser: with no Chromium to be had, the browser tests are skipped with one line that says how to
  get one; with `FMCSA_REQUIRE_BROWSER=1` (`.ci/run` sets it) that is a failure instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "fmcsa"
DESIGN_EXAMPLES = ROOT.parent / "shared" / "fmcsa" / "examples"

READERS_OF_FIXTURES = (
    "services/sandbox/tests/integration/test_drift.py",
    "services/sources/violations/tests/unit/test_parse.py",
    "services/sources/inspections/tests/integration/test_store.py",
    "services/sources/authority/tests/unit/test_parse.py",
)
"""At least one test file of each package that reads the fixtures (tests/fixtures/fmcsa/README.md)."""

pytestmark = pytest.mark.system


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def working_tree_commit(tmp: Path) -> str:
    """A commit of the working tree as `git add -A` would record it (tracked changes and new files that
    .gitignore does not exclude), made with a private index: the checkout's own index and refs stay as
    they are."""
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp / "index")}
    git("add", "-A", cwd=ROOT, env=env)
    tree = git("write-tree", cwd=ROOT, env=env)
    ident = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return git("commit-tree", tree, "-p", "HEAD", "-m", "newcomer test", cwd=ROOT, env={**env, **ident})


def uv_dir() -> Path:
    """The folder of the uv that runs this checkout (on PATH, or the one ./fmcsa put in .fmcsa-tools)."""
    for candidate in (shutil.which("uv"), ROOT / ".fmcsa-tools/uv/bin/uv", ROOT / ".fmcsa-tools/venv/bin/uv"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).parent
    pytest.fail("no uv found: run the tests through ./fmcsa test")


@pytest.mark.timeout(600)
def test_a_plain_clone_with_nothing_beside_it_runs_the_fixture_tests(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    clone = lonely / "fmcsa-sync"
    commit = working_tree_commit(tmp_path)
    git("clone", "--quiet", "--no-checkout", str(ROOT), str(clone), cwd=tmp_path)
    git("fetch", "--quiet", "origin", commit, cwd=clone)
    git("checkout", "--quiet", commit, cwd=clone)
    assert sorted(p.name for p in lonely.iterdir()) == ["fmcsa-sync"], "the clone must have nothing beside it"

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FMCSA_", "PYTEST_", "VIRTUAL_ENV", "CHROMIUM_")) and k != "COV_CORE_SOURCE"
    }
    env["PATH"] = f"{uv_dir()}{os.pathsep}{env.get('PATH', '')}"
    run = subprocess.run(
        ["./fmcsa", "test", *READERS_OF_FIXTURES, "-n", "0", "-p", "no:cacheprovider", "-q"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    summary = output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed, summary
    assert int(passed.group(1)) >= 20, summary
    assert not re.search(r"\d+ (error|failed)", summary), summary
    assert "../shared" not in output, "a test still looks for the design folder"

    # a second run finds the environment made and leaves it alone (a pyenv shim given to uv as the
    # interpreter made every ./fmcsa recreate .venv, under any other ./fmcsa process still running)
    made = (clone / ".venv" / "pyvenv.cfg").stat()
    again = subprocess.run(
        ["./fmcsa", "--help"], cwd=clone, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, (again.stdout + again.stderr)[-2000:]
    kept = (clone / ".venv" / "pyvenv.cfg").stat()
    assert (kept.st_ino, kept.st_mtime_ns) == (made.st_ino, made.st_mtime_ns), "./fmcsa recreated .venv"


def test_the_fixture_copy_equals_the_design_folder_where_it_exists() -> None:
    if not DESIGN_EXAMPLES.is_dir():
        pytest.skip("no design folder beside the checkout: nothing to compare the fixture copy with")
    originals = {p.name: p.read_bytes() for p in DESIGN_EXAMPLES.iterdir() if p.is_file()}
    copies = {p.name: p.read_bytes() for p in FIXTURES.iterdir() if p.name != "README.md"}
    missing = sorted(set(originals) - set(copies))
    assert not missing, f"copy the design folder's examples into tests/fixtures/fmcsa: {missing}"
    # a file written here (not copied) is allowed when the fixtures README names it as such
    written_here = (FIXTURES / "README.md").read_text().partition("not in the design folder's examples")[2]
    unexplained = sorted(name for name in set(copies) - set(originals) if f"- `{name}`" not in written_here)
    assert not unexplained, f"name these in tests/fixtures/fmcsa/README.md as written here: {unexplained}"
    differing = sorted(name for name in originals if originals[name] != copies[name])
    assert not differing, f"these fixtures differ from the design folder's examples: {differing}"


def run_one_browser_test(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "FMCSA_REQUIRE"))}
    env.update(extra_env)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "services/gateway/tests/e2e/test_admin_page.py",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-q",
            "-rs",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_browser_the_browser_tests_skip_with_one_line_saying_how_to_get_one() -> None:
    # an explicit CHROMIUM_PATH that does not exist: no fallback, and no install attempt
    run = run_one_browser_test({"CHROMIUM_PATH": "/nonexistent/chromium"})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    skip_lines = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert len(skip_lines) == 1, output[-3000:]
    assert "apt-get install chromium" in skip_lines[0]
    assert "playwright install chromium" in skip_lines[0]
    assert re.search(r"\b1 skipped\b", output)
    assert "passed" not in output.splitlines()[-1]


def test_with_fmcsa_require_browser_a_missing_browser_fails() -> None:
    run = run_one_browser_test({"CHROMIUM_PATH": "/nonexistent/chromium", "FMCSA_REQUIRE_BROWSER": "1"})
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "FMCSA_REQUIRE_BROWSER=1" in output
    assert "skipped" not in output.splitlines()[-1]
