"""fmcsa_source_csa."""
