"""The framework-free core: the field table, scopes and their frames, the headers, the
configuration, the call records and the background writer the sinks share.

Nothing here imports Django, Flask, an HTTP library or a GenAI SDK (tests/test_layout.py checks
it); `payi_web/__init__.py` re-exports the public names.
"""
