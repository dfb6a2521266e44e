"""fmcsa_cli."""
