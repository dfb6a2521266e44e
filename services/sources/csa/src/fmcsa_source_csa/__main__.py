"""Run the csa source service: `python -m fmcsa_source_csa` or `fmcsa-source-csa`."""

from __future__ import annotations

from fmcsa_source_csa.settings import Settings
from fmcsa_source_kit.entry import run_source


def main() -> None:
    run_source(Settings, description="The csa source service: answers SyncRequested from QCMobile.")


if __name__ == "__main__":
    main()
