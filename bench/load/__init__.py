"""The load and isolation harness: real servers on 127.0.0.1, many users at once, zero mixed attributions.

`python -m bench.load` runs it (see `bench/load/README.md`); `tests/load/test_isolation.py` runs a
reduced version in the test suite. The pieces:

- `provider.py`: a fast OpenAI-compatible fake provider (one asyncio process) that records, for
  every chat completion it receives, the request id and call kind written in the prompt (the
  ground truth: the view writes them from the HTTP request, not from the tracking context) and
  the Pay-i headers that came with it.
- `django_app/` and `flask_app.py`: purpose-built apps, started as real servers (uvicorn with
  async views, gunicorn's gthread worker for Django and for Flask). `PAYI_LOAD=off` starts the
  same app without payi-web (no app, no middleware or extension, no instrumentation, no-op
  `track`), for the on/off throughput ratio.
- `client.py`: a small keep-alive HTTP/1.1 client on asyncio, one connection per logged-in user.
- `harness.py`: starts the processes, logs the users in, drives the load, checks every
  recorded call and prints the report.
"""
