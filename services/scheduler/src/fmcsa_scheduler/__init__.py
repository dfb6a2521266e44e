"""fmcsa-scheduler: decides when each (company, source) is due and publishes SyncRequested."""
