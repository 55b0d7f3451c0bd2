"""pytest hooks for the targets capability (being filled in)."""
