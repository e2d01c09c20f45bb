"""Interactive API documentation served from the service itself.

FastAPI's default /docs page loads Swagger UI from a public CDN; a public body's system
must not make its visitors' browsers call third-party hosts. The page here uses the Swagger
UI files of the `swagger-ui-bundle` package, served by the service, and starts it from a
script file of its own, so the page runs under a CSP without 'unsafe-inline'.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

ASSETS = Path(swagger_ui_path)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""


def install_docs(app: FastAPI) -> None:
    page = _PAGE.format(title=f"{app.title} — API")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/init.js", include_in_schema=False)
    async def init() -> Response:
        return Response(_INIT, media_type="text/javascript")

    @app.get("/docs/swagger-ui.css", include_in_schema=False)
    async def css() -> FileResponse:
        return FileResponse(ASSETS / "swagger-ui.css", media_type="text/css")

    @app.get("/docs/swagger-ui-bundle.js", include_in_schema=False)
    async def bundle() -> FileResponse:
        return FileResponse(ASSETS / "swagger-ui-bundle.js", media_type="text/javascript")
