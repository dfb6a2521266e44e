"""The authority source service: operating authority, dockets, out-of-service orders and insurance."""
