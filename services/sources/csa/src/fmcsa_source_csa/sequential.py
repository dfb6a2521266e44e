"""`python -m fmcsa_source_csa.sequential`: the csa client of the bench's sequential baseline.

It fetches the DOT of each line of stdin, one after another (`fmcsa_source_kit.sequential`); settings
from the environment.
"""

from __future__ import annotations

from fmcsa_source_csa.settings import Settings
from fmcsa_source_csa.upstream import QCMobileClient
from fmcsa_source_kit.sequential import main

if __name__ == "__main__":
    settings = Settings()
    main("csa", settings, lambda: QCMobileClient.from_settings(settings))
