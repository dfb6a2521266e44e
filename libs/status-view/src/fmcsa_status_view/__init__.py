"""fmcsa-status-view: the status tables, the read-only queries on them, and the seeds syncStatus shape."""
