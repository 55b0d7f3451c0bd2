"""pytest hooks for the inventory capability (being filled in)."""
