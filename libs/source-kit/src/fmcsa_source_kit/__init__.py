"""The source kit: what every source service does the same way (see its README)."""
