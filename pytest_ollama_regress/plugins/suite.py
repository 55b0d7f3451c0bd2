"""pytest hooks for the suite capability (being filled in)."""
