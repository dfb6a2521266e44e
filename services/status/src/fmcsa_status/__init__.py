"""fmcsa-status: the status projector (FMCSA_EVENTS into status, sync log, summaries) and its rebuild."""
