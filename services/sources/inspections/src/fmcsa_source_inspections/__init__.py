"""fmcsa_source_inspections."""
