"""Repository-level conftest: the project's own tests drive the plugin with pytester."""
