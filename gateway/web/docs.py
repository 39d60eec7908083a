"""``/docs`` (Swagger UI) and ``/redoc`` served from assets shipped in Python packages.

FastAPI's defaults load both from a CDN, which is a blank page without internet access and a
third-party request with it. The scripts come from the `fastapi-offline` package's static
folder, which ships Swagger UI and ReDoc as released; the small start-up scripts are files of
ours (templates/web/assets/), so the pages keep a strict Content-Security-Policy without
inline script.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from gateway.web import pages

DOCS_ASSETS_PATH = "/assets/docs"

# Swagger UI sets inline styles and shows images as data: URLs; ReDoc runs a web worker made
# from a blob: URL. Still nothing from another host.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


def docs_asset_folder() -> Path:
    """The folder of the packaged Swagger UI and ReDoc files."""
    import fastapi_offline  # the package only carries the files we serve

    return Path(fastapi_offline.__file__).resolve().parent / "static"


# The one address ReDoc's bundle fetches by itself (its "API docs by Redocly" logo): pointed
# at our own icon, so the page requests nothing from another host.
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def redoc_script() -> bytes:
    """The packaged ReDoc bundle, its one remote image replaced by a file of ours."""
    script = (docs_asset_folder() / "redoc.standalone.js").read_bytes()
    return script.replace(_REDOC_LOGO, (pages.ASSETS_PATH + "/icon.svg").encode())


def _page(request: Request, name: str) -> HTMLResponse:
    openapi_url = request.app.openapi_url or "/openapi.json"
    html = (
        pages.environment()
        .get_template(name)
        .render(
            title=f"{request.app.title} API",
            openapi_url=openapi_url,
            docs_assets=DOCS_ASSETS_PATH,
            assets=pages.ASSETS_PATH,
        )
    )
    headers = {**pages.SECURITY_HEADERS, "Content-Security-Policy": DOCS_CSP}
    headers["Cache-Control"] = "no-cache"
    return HTMLResponse(html, headers=headers)


def install(app: FastAPI) -> None:
    """Serve the docs pages and their assets on `app` (built with docs_url/redoc_url None)."""

    async def redoc_bundle(_request: Request) -> Response:
        return Response(
            redoc_script(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    # Before the static folder, which would serve the unpatched file.
    app.add_route(DOCS_ASSETS_PATH + "/redoc.standalone.js", redoc_bundle, include_in_schema=False)
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=docs_asset_folder()), name="docs-assets")

    async def swagger(request: Request) -> HTMLResponse:
        return _page(request, "docs_swagger.html.j2")

    async def redoc(request: Request) -> HTMLResponse:
        return _page(request, "docs_redoc.html.j2")

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
