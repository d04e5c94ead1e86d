"""The transports GenAI SDKs send their calls through, one module each (httpx and httpx2 today)."""
