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
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 0; background: #f5f6f8;
        color: #1d2330; }}
main {{ max-width: 28rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 12px;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
h1 {{ margin: 0 0 .25rem; }} h2 {{ font-size: 1.1rem; }} p.tag {{ margin: 0 0 1.5rem; color: #5b6475; }}
label {{ display: block; margin-bottom: .25rem; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1.1rem; border: 1px solid #c9ced8;
         border-radius: 8px; }}
button {{ margin-top: 1rem; width: 100%; padding: .7rem; font-size: 1rem; border: 0; border-radius: 8px;
          background: #2456d6; color: #fff; cursor: pointer; }}
nav {{ margin-top: 1.5rem; display: flex; gap: 1rem; font-size: .9rem; }}
</style>
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
