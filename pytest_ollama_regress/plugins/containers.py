"""pytest hooks for the containers capability (being filled in)."""
