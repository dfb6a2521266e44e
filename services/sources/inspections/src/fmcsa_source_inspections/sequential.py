"""`python -m fmcsa_source_inspections.sequential`: the inspections client of the bench's sequential baseline.

It fetches the DOT of each line of stdin, one after another (`fmcsa_source_kit.sequential`); settings
from the environment.
"""

from __future__ import annotations

from fmcsa_source_inspections.settings import Settings
from fmcsa_source_inspections.upstream import SaferWebClient
from fmcsa_source_kit.sequential import main

if __name__ == "__main__":
    settings = Settings()
    main("inspections", settings, lambda: SaferWebClient.from_settings(settings))
