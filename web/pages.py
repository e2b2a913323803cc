"""Sign-in (login link, pasted key), sign-out, the language switch and the page shells.

Pages are small HTML shells in the user's language with the message catalogue embedded;
``static/app.js`` fills them from ``/api/v1`` with the session cookie. A page asked for
without a live session sends the browser to ``/login``. Problems (a wrong, expired or used
link, a wrong key, a forged form) answer a page in the user's language saying what to do.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from api.auth import Principal
from api.deps import CatalogDep, MetadataDep
from api.sessions import (
    SESSION_COOKIE,
    clear_session_cookie,
    csrf_ok,
    live_session,
    now_ms,
    same_origin,
    set_session_cookie,
    start_session,
)
from fields.registry import ID_PATTERN
from storage.keys import ApiKeyRecord, key_matches, parse_key_id
from storage.logins import LOGIN_PATH, hash_token, is_token
from storage.metadata import MetadataDB
from web.firstview import compressed, first_view, head_assets
from web.i18n import LANG_COOKIE, LANGS, Lang, catalogue, pick_lang

log = logging.getLogger("agridrone.web")

STATIC_DIR: Final = Path(__file__).parent / "static"
#: The longest sign-in form body read (a key is 58 characters).
MAX_FORM_BYTES: Final = 4096
#: The field ids the pages accept (those of the API).
_FIELD_ID: Final = ID_PATTERN

#: The date inputs: dd/mm/yyyy typed on a numeric keypad in every language (a browser's own
#: date input follows the phone's locale, which may not be the page's).
_DAY_INPUT: Final = (
    'type="text" inputmode="numeric" autocomplete="off" placeholder="dd/mm/yyyy"'
    ' pattern="[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}" maxlength="10" required'
)

router = APIRouter(include_in_schema=False)


class HideLoginTokens(logging.Filter):
    """Hides the token of ``/login/<token>`` in uvicorn's access log lines (a link that is
    logged was used or refused, but an outage between the two could leave it alive)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the path argument of an access line; never drops a line."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            if path.startswith(LOGIN_PATH):
                record.args = (*args[:2], f"{LOGIN_PATH}***", *args[3:])
        return True


def _hide_login_tokens() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideLoginTokens) for f in access.filters):
        access.addFilter(HideLoginTokens())


def install(app: FastAPI, *, tile_url: str | None = None) -> None:
    """Add the web pages and their static files (gzip-compressed) to ``app``.

    ``tile_url``: an optional map tile URL template (``https://.../{z}/{x}/{y}.png``) for
    deployments with internet; without it fields are drawn on a plain background.
    """
    app.state.web_tile_url = tile_url or ""
    _hide_login_tokens()
    app.include_router(router)
    app.mount("/static", GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=512))


def lang_of(request: Request) -> Lang:
    """The user's language: the remembered choice, Vietnamese by default."""
    return pick_lang(request.cookies.get(LANG_COOKIE))


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def page(
    request: Request,
    title_key: str,
    body: str,
    *,
    status: int = 200,
    page_name: str = "message",
    csrf: str = "",
    data: dict[str, str] | None = None,
    signed_in: bool = False,
    map_assets: bool = False,
    head: str = "",
    back: str | None = None,
    title: str | None = None,
    head_assets: str | None = None,
) -> HTMLResponse:
    """A whole HTML page in the user's language around ``body`` (already escaped HTML).

    ``title``: the page's own title (else the message ``title_key``); ``head_assets``: the
    styles and scripts the page loads in its head, instead of the usual ones."""
    lang = lang_of(request)
    m = catalogue(lang)
    other = m["lang_other_code"]
    here = back or request.url.path + (f"?{request.url.query}" if request.url.query else "")
    attrs = "".join(f' data-{_e(k)}="{_e(v)}"' for k, v in (data or {}).items())
    role = (data or {}).get("role", "")
    coop_link = {
        "coop": f'<a class="coop-link" href="/coop">{_e(m["coop_nav"])}</a>',
        "operator": f'<a class="ops-link" href="/ops">{_e(m["ops_nav"])}</a>',
    }.get(role, "")
    sign_out = (
        f'<form method="post" action="/logout" class="signout">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        f'<button type="submit">{_e(m["sign_out"])}</button></form>'
        if signed_in
        else ""
    )
    css = '<link rel="stylesheet" href="/static/app.css">'
    scripts = '<script src="/static/app.js" defer></script>'
    if map_assets:
        css = '<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">' + css
        scripts = '<script src="/static/vendor/leaflet/leaflet.js" defer></script>' + scripts
    if head_assets is not None:
        css, scripts = head_assets, ""
    messages = json.dumps(m, ensure_ascii=False).replace("<", "\\u003c")
    doc = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{_e(csrf)}">
<link rel="icon" href="data:,">
<title>{_e(title or m[title_key])} · agridrone</title>
{css}{head}
</head>
<body data-page="{_e(page_name)}"{attrs}>
<header class="top">
<a class="brand" href="/">agridrone</a>
<nav>
{coop_link}
<a class="lang" href="/lang/{other}?next={_e(quote(here, safe="/"))}" hreflang="{other}"
 lang="{other}">{_e(m["lang_other"])}</a>
{sign_out}
</nav>
</header>
<main id="main">
{body}
</main>
<script id="messages" type="application/json">{messages}</script>
{scripts}
</body>
</html>
"""
    return HTMLResponse(
        doc,
        status_code=status,
        headers={"Cache-Control": "no-store", "Content-Language": lang},
    )


def wants_page(request: Request) -> bool:
    """Whether an error should be answered as a page: a browser (``Accept: text/html``)
    outside ``/api/``, ``/docs`` and the other machine routes, which keep their JSON."""
    path = request.url.path
    machine = ("/api/", "/docs", "/redoc", "/openapi.json", "/metrics", "/healthz", "/readyz")
    return "text/html" in request.headers.get("accept", "") and not path.startswith(machine)


def not_found_page(request: Request) -> HTMLResponse:
    """A missing page, in the user's language, with the way back."""
    m = catalogue(lang_of(request))
    body = f"""<h1>{_e(m["not_found_title"])}</h1>
<p class="alert" role="alert">{_e(m["not_found"])}</p>
<p><a class="button" href="/">{_e(m["home"])}</a></p>"""
    return page(request, "not_found_title", body, status=404, back="/")


def _sign_in_form(request: Request, *, problem: str = "", status: int = 200) -> HTMLResponse:
    m = catalogue(lang_of(request))
    alert = f'<p class="alert" role="alert">{_e(problem)}</p>' if problem else ""
    body = f"""<h1>{_e(m["sign_in_title"])}</h1>
{alert}<p>{_e(m["sign_in_intro"])}</p>
<form method="post" action="/login" class="signin">
<label for="key">{_e(m["key_label"])}</label>
<input id="key" name="key" type="password" autocomplete="current-password" required
 maxlength="200" spellcheck="false" autocapitalize="off">
<button type="submit">{_e(m["sign_in"])}</button>
</form>"""
    return page(request, "sign_in_title", body, status=status, page_name="login")


def _session_of(request: Request, metadata: MetadataDB) -> tuple[str, str] | None:
    """(csrf token, role) of the request's live session, or ``None``."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    found = live_session(metadata, cookie, now_ms())
    if found is None:
        return None
    return found[0].csrf, found[1].role


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})


def _app_page(
    request: Request,
    metadata: MetadataDB,
    title_key: str,
    page_name: str,
    body: Callable[[dict[str, str], str], str],
    *,
    only: tuple[str, ...] | None = None,
    data: dict[str, str] | None = None,
    map_assets: bool = False,
    status: int = 200,
    title: str | None = None,
    head_assets: str | None = None,
) -> Response:
    """A signed-in page: the sign-in page without a live session, the missing page's answer
    for a role not in ``only``, else ``page`` around ``body(messages, role)`` with the
    session's CSRF token and role."""
    session = _session_of(request, metadata)
    if session is None:
        return _to_login()
    csrf, role = session
    if only is not None and role not in only:
        return not_found_page(request)
    return page(
        request,
        title_key,
        body(catalogue(lang_of(request)), role),
        page_name=page_name,
        csrf=csrf,
        data={"role": role, **(data or {})},
        signed_in=True,
        map_assets=map_assets,
        status=status,
        title=title,
        head_assets=head_assets,
    )


@functools.cache
def _service_worker() -> str:
    """``static/sw.js`` with the release of the static files in its cache name, so a new
    release replaces the cached scripts and styles."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.name != "sw.js":
            digest.update(path.read_bytes())
    text = (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    return text.replace("__RELEASE__", digest.hexdigest()[:16])


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker, at the root so it may answer for every page."""
    return Response(
        _service_worker(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/login")
def sign_in_page(request: Request) -> HTMLResponse:
    """The sign-in form (paste a key)."""
    return _sign_in_form(request)


@router.post("/login")
async def sign_in_with_key(request: Request, metadata: MetadataDep) -> Response:
    """Sign in with a pasted key: a session cookie and back to ``/``; the form again with
    the reason otherwise (same answer for a malformed, unknown or revoked key)."""
    m = catalogue(lang_of(request))
    if not same_origin(request):
        return page(request, "forbidden_title", f"<p>{_e(m['forbidden'])}</p>", status=403)
    raw = await request.body()
    fields = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    key = (fields.get("key") or [""])[0].strip()
    key_id = parse_key_id(key)
    record = metadata.api_key(key_id) if key_id else None
    if record is None or record.revoked or not key_matches(key, record):
        log.info("web_sign_in_refused key_id=%s", key_id or "-")
        return _sign_in_form(request, problem=m["key_wrong"], status=401)
    token, _ = start_session(metadata, record, now_ms())
    log.info("web_sign_in key_id=%s via=key", record.key_id)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.get("/login/{token}")
def sign_in_with_link(token: str, request: Request, metadata: MetadataDep) -> HTMLResponse:
    """Open a one-time login link: a session cookie, then on to ``/``.

    The answer is a page that moves on to ``/`` itself (``<meta http-equiv=refresh>``)
    rather than a 303: a link opened from another site (a webmail, a chat's web page) is a
    cross-site navigation, and a browser sends no ``SameSite=Strict`` cookie along a redirect
    chain that started cross-site, so ``/`` would not see the new session; a navigation
    started by this page is same-site."""
    m = catalogue(lang_of(request))
    now = now_ms()
    key_id = metadata.use_login_link(hash_token(token), now) if is_token(token) else None
    record = metadata.api_key(key_id) if key_id else None
    if record is None or record.revoked:
        log.info("web_login_link_refused")
        body = f"""<h1>{_e(m["link_bad_title"])}</h1>
<p class="alert" role="alert">{_e(m["link_bad"])}</p>
<p><a class="button" href="/login">{_e(m["sign_in"])}</a></p>"""
        return page(request, "link_bad_title", body, status=400, back="/login")
    session, _ = start_session(metadata, record, now)
    log.info("web_sign_in key_id=%s via=link", record.key_id)
    body = f"""<h1>{_e(m["sign_in"])}</h1>
<p>{_e(m["link_ok"])}</p>
<p><a class="button" href="/">{_e(m["continue"])}</a></p>"""
    response = page(
        request,
        "sign_in",
        body,
        head='<meta http-equiv="refresh" content="0;url=/">',
        back="/",
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    set_session_cookie(request, response, session)
    return response


@router.post("/logout")
async def sign_out(request: Request, metadata: MetadataDep) -> Response:
    """End the session on the server (its cookie no longer works anywhere), then the
    sign-in page. Needs the session's CSRF token (the form's ``csrf`` field)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    found = live_session(metadata, cookie, now_ms()) if cookie else None
    if found is not None and cookie:
        raw = await request.body()
        fields = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        given = (fields.get("csrf") or [""])[0] or request.headers.get("x-csrf-token")
        if not csrf_ok(request, found[0], given):
            m = catalogue(lang_of(request))
            return page(request, "forbidden_title", f"<p>{_e(m['forbidden'])}</p>", status=403)
        metadata.end_session(hash_token(cookie), now_ms())
        log.info("web_sign_out key_id=%s", found[1].key_id)
    response = _to_login()
    clear_session_cookie(request, response)
    return response


@router.get("/lang/{lang}")
def switch_language(
    lang: str, next_: Annotated[str, Query(alias="next", max_length=2000)] = "/"
) -> Response:
    """Remember the chosen language (a cookie, a year) and go back to the page."""
    target = next_
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    response = RedirectResponse(target, status_code=303)
    if lang in LANGS:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86_400, path="/", samesite="lax", httponly=False
        )
    return response


@router.get("/")
def my_fields(request: Request, metadata: MetadataDep) -> Response:
    """ "Ruộng của tôi": the fields the key may see, each with its last spraying."""

    def body(m: dict[str, str], _role: str) -> str:
        return f"""<h1>{_e(m["my_fields"])}</h1>
<p id="status" class="status" aria-live="polite">{_e(m["loading"])}</p>
<ul id="fields" class="fields"></ul>"""

    return _app_page(request, metadata, "my_fields", "fields", body)


@router.get("/fields/{field_id}")
def field_page(
    field_id: str, request: Request, metadata: MetadataDep, catalog: CatalogDep
) -> Response:
    """One field: its coverage map with a legend and the flights that sprayed it, answered
    in the page itself (``web.firstview``): the script makes the map interactive."""
    if re.fullmatch(_FIELD_ID, field_id) is None:
        return not_found_page(request)
    tile_url = str(getattr(request.app.state, "web_tile_url", ""))
    lang = lang_of(request)
    key = _session_key(request, metadata)
    if key is None:
        return _to_login()
    fv = first_view(
        field_id,
        Principal(key.role, key.subject, key.key_id),
        metadata,
        catalog,
        request.query_params,
        catalogue(lang),
        lang,
        now_ms(),
    )

    def body(m: dict[str, str], _role: str) -> str:
        return f"""<p><a href="/">{_e(m["back_to_fields"])}</a></p>
<h1 id="title">{_e(fv.title)}</h1>
<p id="status" class="{fv.status_class}" aria-live="polite">{fv.status}</p>
<form id="range" class="range"{fv.range_hidden}>
<label>{_e(m["from"])} <input name="from" id="from" value="{fv.from_value}" {_DAY_INPUT}></label>
<label>{_e(m["to"])} <input name="to" id="to" value="{fv.to_value}" {_DAY_INPUT}></label>
<button type="submit">{_e(m["show"])}</button>
</form>
<div id="map" class="map" role="img" aria-label="{_e(m["legend"])}"{fv.hidden}>{fv.map_svg}</div>
<section id="replay" class="replay" aria-labelledby="replay-title" hidden>
<h2 id="replay-title">{_e(m["replay"])}</h2>
<p id="replay-note" class="note" hidden></p>
<div class="replay-controls">
<button type="button" id="replay-play">{_e(m["replay_play"])}</button>
<label for="replay-time">{_e(m["replay_time"])}</label>
<output id="replay-clock" for="replay-time">--:--:--</output>
<span id="replay-spray" class="replay-spray"></span>
<input id="replay-time" type="range" min="0" max="0" step="1000" value="0">
</div>
<ul class="legend replay-legend"><li><span class="line line-on" aria-hidden="true"></span>
<span class="label">{_e(m["spray_on"])}</span></li>
<li><span class="line line-off" aria-hidden="true"></span>
<span class="label">{_e(m["spray_off"])}</span></li></ul></section>
<section id="legend-box" aria-labelledby="legend-title"{fv.hidden}>
<h2 id="legend-title">{_e(m["legend"])}</h2>
<ul id="legend" class="legend">{fv.legend}</ul></section>
<section id="flags-box" aria-labelledby="flags-title"{fv.hidden}>
<h2 id="flags-title">{_e(m["flags"])}</h2>
<ul id="flags" class="flag-list">{fv.flags}</ul></section>
<section id="flights-box" aria-labelledby="flights-title"{fv.hidden}>
<h2 id="flights-title">{_e(m["flights"])}</h2>
<div id="flights">{fv.flights}</div></section>{fv.island}"""

    response = _app_page(
        request,
        metadata,
        "fields",
        "field",
        body,
        data={"field": field_id, "tiles": tile_url},
        status=fv.http_status,
        title=fv.title,
        head_assets=head_assets(_app_css()),
    )
    return compressed(request, response)


@functools.cache
def _app_css() -> str:
    return (STATIC_DIR / "app.css").read_text(encoding="utf-8")


def _session_key(request: Request, metadata: MetadataDB) -> ApiKeyRecord | None:
    """The key of the request's live session, or ``None``."""
    cookie = request.cookies.get(SESSION_COOKIE)
    found = live_session(metadata, cookie, now_ms()) if cookie else None
    return None if found is None else found[1]


@router.get("/coop")
def coop_page(request: Request, metadata: MetadataDep) -> Response:
    """A cooperative's month: sprayed area, litres, flights per drone and per day, members
    with their area and bill, drones now, the usage report as CSV."""
    tile_url = str(getattr(request.app.state, "web_tile_url", ""))

    def body(m: dict[str, str], _role: str) -> str:
        return f"""<h1>{_e(m["coop_title"])}</h1>
<form id="month-form" class="range">
<label>{_e(m["month"])} <input name="month" id="month" type="text" inputmode="numeric"
 placeholder="mm/yyyy" pattern="[0-9]{{1,2}}/[0-9]{{4}}" maxlength="7" required></label>
<button type="submit">{_e(m["show"])}</button>
</form>
<p id="status" class="status" aria-live="polite">{_e(m["loading"])}</p>
<dl id="totals" class="totals"></dl>
<p class="actions"><a id="csv" class="button" href="#" download>{_e(m["download_csv"])}</a>
<a id="invoices" class="button" href="#" download>{_e(m["download_invoices"])}</a>
<a class="button secondary" href="/coop/import">{_e(m["import_nav"])}</a>
<a class="button secondary" href="/keys">{_e(m["members_links_nav"])}</a></p>
<section id="fleet-box" aria-labelledby="fleet-title" hidden>
<h2 id="fleet-title"></h2>
<div id="fleet-map" class="map" role="img" aria-labelledby="fleet-title"></div>
<ul class="legend"><li><span class="swatch swatch-fleet-field" aria-hidden="true"></span>
<span class="label">{_e(m["layer_field"])}</span></li>
<li><span class="swatch swatch-covered" aria-hidden="true"></span>
<span class="label">{_e(m["spray_on"])}</span></li>
<li><span class="swatch swatch-no_spray" aria-hidden="true"></span>
<span class="label">{_e(m["spray_off"])}</span></li></ul></section>
<section aria-labelledby="per-drone-title"><h2 id="per-drone-title">{_e(m["per_drone"])}</h2>
<div id="per-drone" class="bars"></div></section>
<section aria-labelledby="per-day-title"><h2 id="per-day-title">{_e(m["per_day"])}</h2>
<div id="per-day" class="bars"></div></section>
<section aria-labelledby="members-title"><h2 id="members-title">{_e(m["members"])}</h2>
<div id="members"></div></section>
<section aria-labelledby="coop-flags-title"><h2 id="coop-flags-title">{_e(m["flags"])}</h2>
<h3>{_e(m["flags_members"])}</h3><div id="flags-members"></div>
<h3>{_e(m["flags_drones"])}</h3><div id="flags-drones"></div></section>
<section aria-labelledby="drones-title"><h2 id="drones-title">{_e(m["drones_now"])}</h2>
<ul id="drones" class="drones"></ul></section>"""

    return _app_page(
        request,
        metadata,
        "coop_title",
        "coop",
        body,
        only=("coop",),
        data={"tiles": tile_url},
        map_assets=True,
    )


@router.get("/coop/import")
def import_page(request: Request, metadata: MetadataDep) -> Response:
    """A cooperative imports its plots from a GeoJSON file: every problem is listed in the
    user's language, and nothing is stored from a file that has any unless the user chose
    to import only the valid features."""

    def body(m: dict[str, str], _role: str) -> str:
        return f"""<h1>{_e(m["import_title"])}</h1>
<p>{_e(m["import_intro"])}</p>
<form id="import-form" class="signin">
<label for="file">{_e(m["import_file"])}</label>
<input id="file" name="file" type="file" accept=".geojson,.json,application/geo+json" required>
<p class="check"><input id="valid-only" name="valid_only" type="checkbox">
<label for="valid-only">{_e(m["import_valid_only"])}</label></p>
<button type="submit">{_e(m["import_button"])}</button>
</form>
<p id="status" class="status" aria-live="polite" hidden></p>
<ul id="problems" class="problems"></ul>"""

    return _app_page(
        request,
        metadata,
        "import_title",
        "import",
        body,
        only=("coop",),
    )


@router.get("/ops")
def operator_page(request: Request, metadata: MetadataDep) -> Response:
    """An operator's day: the rejected messages by reason (that day, all time, the latest),
    and every drone with its last message."""

    def body(m: dict[str, str], _role: str) -> str:
        return f"""<h1>{_e(m["ops_title"])}</h1>
<p class="actions"><a class="button secondary" href="/keys">{_e(m["keys_nav"])}</a></p>
<form id="day-form" class="range">
<label>{_e(m["day"])} <input name="day" id="day" {_DAY_INPUT}></label>
<button type="submit">{_e(m["show"])}</button>
</form>
<p id="status" class="status" aria-live="polite" hidden></p>
<section aria-labelledby="rejected-title"><h2 id="rejected-title">{_e(m["rejected"])}</h2>
<h3>{_e(m["rejected_day"])}</h3><div id="rejected-day" class="bars"></div>
<h3>{_e(m["rejected_all"])}</h3><div id="rejected-all" class="bars"></div>
<h3>{_e(m["rejected_latest"])}</h3><div id="rejected-latest" class="scroll"></div></section>
<section aria-labelledby="drones-title"><h2 id="drones-title">{_e(m["drones_last"])}</h2>
<div id="drones-last" class="scroll"></div></section>"""

    return _app_page(request, metadata, "ops_title", "ops", body, only=("operator",))


@router.get("/keys")
def keys_page(request: Request, metadata: MetadataDep) -> Response:
    """Keys and login links: an operator's every key (create, revoke, a new login link with
    its QR code); a cooperative's the same for its members' farmer keys."""

    def body(m: dict[str, str], role: str) -> str:
        operator = role == "operator"
        title = m["keys_title"] if operator else m["members_links_title"]
        intro = m["keys_intro_operator"] if operator else m["keys_intro_coop"]
        subject = m["key_subject"] if operator else m["key_subject_member"]
        role_field = (
            f"""<label for="key-role">{_e(m["key_role"])}</label>
<select id="key-role" name="role">
<option value="farmer">{_e(m["role_farmer"])}</option>
<option value="coop">{_e(m["role_coop"])}</option>
<option value="operator">{_e(m["role_operator"])}</option>
</select>"""
            if operator
            else ""
        )
        coop_field = (
            f"""<label for="key-coop">{_e(m["key_coop"])}</label>
<input id="key-coop" name="coop" maxlength="64" pattern="[A-Za-z0-9_\\-]{{1,64}}"
 autocomplete="off" spellcheck="false" autocapitalize="off">"""
            if operator
            else ""
        )
        return f"""<h1>{_e(title)}</h1>
<p>{_e(intro)}</p>
<form id="key-form" class="signin key-form">
{role_field}
<label for="key-subject">{_e(subject)}</label>
<input id="key-subject" name="subject" list="owners" maxlength="128" required
 autocomplete="off" spellcheck="false" autocapitalize="off">
<datalist id="owners"></datalist>
<label for="key-name">{_e(m["key_name"])}</label>
<input id="key-name" name="name" maxlength="200" autocomplete="off">
{coop_field}
<button type="submit">{_e(m["key_create"])}</button>
</form>
<p id="status" class="status" aria-live="polite" hidden></p>
<section id="link-box" class="link-box" aria-labelledby="link-title" hidden>
<h2 id="link-title"></h2>
<div id="new-key" hidden>
<p>{_e(m["new_key_once"])}</p>
<label for="key-value">{_e(m["key_value"])}</label>
<input id="key-value" class="secret" readonly spellcheck="false">
</div>
<label for="login-url">{_e(m["login_link"])}</label>
<input id="login-url" class="secret" readonly spellcheck="false">
<p id="login-note" class="note"></p>
<p class="actions">
<button type="button" id="copy-link" class="secondary">{_e(m["copy"])}</button>
<a id="login-qr-png" class="button secondary" download="agridrone-login.png"
 href="#">{_e(m["login_qr_png"])}</a></p>
<img id="login-qr" class="qr" alt="{_e(m["login_qr_alt"])}" width="264" height="264">
</section>
<section aria-labelledby="keys-title"><h2 id="keys-title">{_e(m["keys_list"])}</h2>
<ul id="keys" class="keys"></ul></section>"""

    return _app_page(request, metadata, "keys_title", "keys", body, only=("operator", "coop"))
