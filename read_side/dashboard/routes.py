"""Serve the dashboard page and its assets, open to everyone (the data calls need a key).

The page is sent with a Content-Security-Policy that allows only this origin's scripts, styles
and API calls: no inline script, no third-party anything, and no referrer leaves the page.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from litestar import Response, get
from litestar.enums import MediaType
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

STATIC = files("read_side.dashboard") / "static"

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
"""`form-action 'none'`: even with its script broken, the sign-in form can never send the key
anywhere (least of all into a URL)."""


@cache
def _page() -> bytes:
    return STATIC.joinpath("index.html").read_bytes()


@get("/dashboard", include_in_schema=False, exclude_from_auth=True, sync_to_thread=False)
def dashboard_page() -> Response[bytes]:
    """The dashboard's HTML; it loads its script and styles from `/dashboard/assets/`."""
    return Response(_page(), media_type=MediaType.HTML, headers=PAGE_HEADERS)


dashboard_assets = create_static_files_router(
    path="/dashboard/assets",
    directories=[Path(str(STATIC))],
    name="dashboard_assets",
    opt={"exclude_from_auth": True},
    cache_control=None,
)

DASHBOARD_ROUTES: list[ControllerRouterHandler] = [dashboard_page, dashboard_assets]
