"""Run the authority source service: `python -m fmcsa_source_authority` or `fmcsa-source-authority`."""

from __future__ import annotations

from fmcsa_source_authority.settings import Settings
from fmcsa_source_kit.entry import run_source


def main() -> None:
    run_source(
        Settings, description="The authority source service: answers SyncRequested from QCMobile and DataHub."
    )


if __name__ == "__main__":
    main()
