"""Run the violations source service: `python -m fmcsa_source_violations` or `fmcsa-source-violations`."""

from __future__ import annotations

from fmcsa_source_kit.entry import run_source
from fmcsa_source_violations.settings import Settings


def main() -> None:
    run_source(Settings, description="The violations source service: answers SyncRequested from Socrata.")


if __name__ == "__main__":
    main()
