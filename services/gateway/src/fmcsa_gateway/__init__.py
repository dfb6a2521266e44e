"""fmcsa_gateway."""
