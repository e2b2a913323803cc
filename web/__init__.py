"""The web app for farmers and cooperatives: pages served by the API's own FastAPI app at
``/`` (same origin as ``/api/v1``), Vietnamese first, phone first, every asset local.

``install(app)`` adds the sign-in routes and pages (``web.pages``) and the static files
(``/static``, gzip-compressed). The pages' scripts read the data from ``/api/v1`` with the
session cookie, so they show exactly what the API lets the key see.
"""

from __future__ import annotations

from web.pages import install, not_found_page, wants_page

__all__ = ["install", "not_found_page", "wants_page"]
