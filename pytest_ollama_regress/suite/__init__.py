"""The built-in regression suite, one module per marker.

Run it with ``pytest --pyargs pytest_ollama_regress.suite [targets and options]``; select
parts with ``-m vision``, ``-m debug_render``, ``-m numctx`` or ``-m ttft``. What each check
asserts per Ollama version is in ``docs/suite.md``.
"""
