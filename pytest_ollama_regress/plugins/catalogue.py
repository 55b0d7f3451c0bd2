"""pytest hooks for the catalogue capability (being filled in)."""
