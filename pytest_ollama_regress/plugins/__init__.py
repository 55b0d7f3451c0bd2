"""pytest hook modules, one per capability (loaded by ``pytest_ollama_regress.plugin``)."""
