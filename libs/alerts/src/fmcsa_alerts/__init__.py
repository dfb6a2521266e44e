"""Alert rules and signed webhooks: the pieces the gateway, the notifier and the sandbox share."""
