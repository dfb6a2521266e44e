"""fmcsa_runtime."""
