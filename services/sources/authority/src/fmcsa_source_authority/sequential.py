"""`python -m fmcsa_source_authority.sequential`: the authority client of the bench's sequential baseline.

It fetches the DOT of each line of stdin, one after another (`fmcsa_source_kit.sequential`); settings
from the environment.
"""

from __future__ import annotations

from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.upstream import AuthorityClient
from fmcsa_source_kit.sequential import main

if __name__ == "__main__":
    settings = Settings()
    main("authority", settings, lambda: AuthorityClient.from_settings(settings))
