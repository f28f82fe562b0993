"""Server-rendered pages that need no client code: the home page."""

from __future__ import annotations

from html import escape

from aiohttp import web

from web.i18n import catalogue, negotiate

routes = web.RouteTableDef()

_HOME = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{app_name}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/css/home.css">
</head>
<body>
<main>
<h1>{app_name}</h1>
<p class="tag">{tagline}</p>
<h2>{join_title}</h2>
<form method="get" action="/join">
<label for="number">{join_number}</label>
<input id="number" name="number" inputmode="numeric" pattern="[0-9]{{9,10}}" title="{join_invalid}" required>
<button type="submit">{join_submit}</button>
</form>
<nav><a href="/admin">{admin}</a><a href="/api/v1/openapi.json">{api}</a>
<a href="/?lang={other_lang}" hreflang="{other_lang}">{language}</a></nav>
</main>
</body>
</html>
"""


def _language(request: web.Request) -> str:
    return negotiate(request.headers.get("Accept-Language"), request.query.get("lang"))


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    lang = _language(request)
    t = catalogue(lang)
    html = _HOME.format(
        lang=lang,
        other_lang="en" if lang == "zh-CN" else "zh-CN",
        app_name=escape(t["app.name"]),
        tagline=escape(t["app.tagline"]),
        join_title=escape(t["home.join.title"]),
        join_number=escape(t["home.join.number"]),
        join_invalid=escape(t["home.join.invalid"]),
        join_submit=escape(t["home.join.submit"]),
        admin=escape(t["home.admin"]),
        api=escape(t["home.api"]),
        language=escape(t["home.language"]),
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@routes.get("/join")
async def join(request: web.Request) -> web.Response:
    number = request.query.get("number", "").strip().replace(" ", "")
    if not (number.isdigit() and 9 <= len(number) <= 10):
        t = catalogue(_language(request))
        return web.Response(
            status=400, text=t["home.join.invalid"], content_type="text/plain", charset="utf-8"
        )
    raise web.HTTPSeeOther(f"/m/{number}")
