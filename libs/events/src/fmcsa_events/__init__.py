"""fmcsa-events: the shared vocabulary of fmcsa-sync (events, envelope, subjects, topology, bus)."""
