"""``piade serve``: an inspection service with an HTTP API and a web page (docs/serve.md).

Needs the ``serve`` extra (``pip install 'piade[serve]'``: FastAPI, uvicorn, prometheus-client,
fastapi-swagger); the rest of piade does not.
"""
