"""``/api/v1/docs``: the OpenAPI document rendered by Swagger UI, every asset served from here.

The assets come from the ``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI 3.1; the
``swagger-ui-bundle`` package ships 4.x, which does not), and the start-up script is our own file,
so the page runs under a CSP of 'self' alone (:data:`DOCS_CSP`): no CDN, no inline script or style.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""The docs page's own policy: Swagger UI's script, stylesheet and the OpenAPI document, from 'self';
its stylesheet's icons are ``data:`` images."""

_OFFLINE = Path(str(files("fastapi_offline"))) / "static"
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_OFFLINE / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_OFFLINE / "swagger-ui.css", "text/css"),
    "favicon.png": (_OFFLINE / "favicon.png", "image/png"),
    "swagger-init.js": (Path(__file__).with_name("static") / "swagger-init.js", "text/javascript"),
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Borrower Watcher API</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
def docs_page(request: Request) -> HTMLResponse:
    """The page; the OpenAPI document and the assets are named under the API's mount point."""
    root = request.scope.get("root_path", "")
    openapi = request.app.openapi_url or ""
    return HTMLResponse(PAGE.format(assets=escape(root + ASSETS_PATH), openapi=escape(root + openapi)))


@router.get(ASSETS_PATH + "/{name}")
def docs_asset(name: str) -> FileResponse:
    asset = ASSETS.get(name)
    if asset is None:
        raise HTTPException(404, "no such asset")
    path, media_type = asset
    return FileResponse(path, media_type=media_type)
