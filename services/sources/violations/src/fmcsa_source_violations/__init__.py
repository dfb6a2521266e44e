"""fmcsa_source_violations."""
