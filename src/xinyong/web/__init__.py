"""`xinyong serve`: design a scheme, run it, read the findings and compare reforms in a browser.

    from xinyong.web import Settings, create_app
    app = create_app(Settings(runs=Path("runs")))   # an ASGI application (FastAPI)

The server calls the project's own API (xinyong.run, run_replicates, audit, compare,
explain): the runs it writes are ordinary run directories under `runs`.
"""

from __future__ import annotations

from xinyong.web.app import create_app
from xinyong.web.settings import LOCALHOST, Settings

__all__ = ["LOCALHOST", "Settings", "create_app", "serve"]


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the application with uvicorn until interrupted; it answers to `host` besides
    the names in `settings.hosts`."""
    import dataclasses

    import uvicorn

    settings = dataclasses.replace(settings, hosts=(*settings.hosts, host))
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
