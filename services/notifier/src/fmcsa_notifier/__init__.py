"""fmcsa-notifier: alert rules over carrier data changes, delivered as signed, retried webhooks."""
