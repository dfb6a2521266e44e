"""`./fmcsa screenshots` copies what the carrier page's browser test saves: the names must keep matching."""

from __future__ import annotations

from pathlib import Path

from fmcsa_cli.main import SCREENSHOTS

ROOT = Path(__file__).resolve().parents[4]


def test_the_screenshots_it_copies_are_the_ones_the_browser_test_saves_and_the_readme_shows() -> None:
    test = (ROOT / "services/gateway/tests/e2e/test_carrier_page.py").read_text()
    assert 'f"gateway-carrier-page-{size}.png"' in test
    assert 'SIZES = {"desktop": ' in test
    assert '"phone": ' in test
    assert set(SCREENSHOTS) == {"gateway-carrier-page-desktop.png", "gateway-carrier-page-phone.png"}
    readme = (ROOT / "README.md").read_text()
    for kept in SCREENSHOTS.values():
        assert f"docs/screenshots/{kept}" in readme
        assert (ROOT / "docs/screenshots" / kept).is_file()
