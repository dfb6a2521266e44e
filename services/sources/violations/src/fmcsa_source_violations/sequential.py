"""`python -m fmcsa_source_violations.sequential`: the violations client of the bench's sequential baseline.

It fetches the DOT of each line of stdin, one after another (`fmcsa_source_kit.sequential`); settings
from the environment.
"""

from __future__ import annotations

from fmcsa_source_kit.sequential import main
from fmcsa_source_violations.settings import Settings
from fmcsa_source_violations.upstream import SocrataClient

if __name__ == "__main__":
    settings = Settings()
    main("violations", settings, lambda: SocrataClient.from_settings(settings))
