"""Run the inspections source service: `python -m fmcsa_source_inspections` or `fmcsa-source-inspections`."""

from __future__ import annotations

from fmcsa_source_inspections.settings import Settings
from fmcsa_source_kit.entry import run_source


def main() -> None:
    run_source(Settings, description="The inspections source service: answers SyncRequested from SaferWeb.")


if __name__ == "__main__":
    main()
