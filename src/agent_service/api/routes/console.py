"""``GET /ui``: the web console's static files (``agent_service.console``), for browsers.

The files need no API key (they hold no data; the page calls ``/v1`` with the key the user signs
in with, as ``Authorization: Bearer``). Every answer carries a strict Content-Security-Policy
(scripts, styles and connections to this origin only; no inline script or style), ``nosniff``
and ``frame-ancestors 'none'``.

Caching without a build step: ``index.html`` is revalidated on every load (``no-cache`` with an
ETag) and points at ``assets/<digest>/``, where ``<digest>`` is a hash of every file of the
console. Assets under the current digest never change, so they are cached for a year
(``immutable``); a new release has a new digest. A request under another digest (a page loaded
before an upgrade) gets today's file, uncached. Relative imports between the ES modules keep
the digest, so no module needs to know it.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from agent_service.api.errors import ApiError
from agent_service.console import STATIC_DIR
from agent_service.domain.errors import ErrorType

router = APIRouter(include_in_schema=False)

CONSOLE_PATH = "/ui"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True)
class ConsoleFiles:
    """The console's files read once: ``assets`` by their path under ``assets/``, the index
    with its asset URLs pointing at ``assets/<digest>/``."""

    digest: str
    index: StaticFile
    assets: dict[str, StaticFile]


def _file(body: bytes, name: str) -> StaticFile:
    suffix = Path(name).suffix
    media_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return StaticFile(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def read_console(root: Path = STATIC_DIR) -> ConsoleFiles:
    """Every file of the console, and the digest of them all (names and contents)."""
    whole = hashlib.sha256()
    assets: dict[str, StaticFile] = {}
    for path in sorted(p for p in (root / "assets").rglob("*") if p.is_file()):
        name = path.relative_to(root / "assets").as_posix()
        body = path.read_bytes()
        whole.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
        assets[name] = _file(body, name)
    page = (root / "index.html").read_bytes()
    whole.update(b"index.html\0" + hashlib.sha256(page).digest())
    digest = whole.hexdigest()[:16]
    page = page.replace(b'="assets/', f'="assets/{digest}/'.encode())
    return ConsoleFiles(digest, _file(page, "index.html"), assets)


@cache
def console_files() -> ConsoleFiles:
    """The packaged console, read on first use (files of an installed package do not change)."""
    return read_console()


def _answer(request: Request, file: StaticFile, cache_control: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": file.etag}
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.media_type, headers=headers)


@router.get(CONSOLE_PATH)
async def console_root() -> RedirectResponse:
    """``/ui`` → ``/ui/`` (the page's relative asset URLs need the slash)."""
    return RedirectResponse(f"{CONSOLE_PATH}/", status_code=308, headers=SECURITY_HEADERS)


@router.get(f"{CONSOLE_PATH}/")
async def console_index(request: Request) -> Response:
    return _answer(request, console_files().index, REVALIDATE)


@router.get(CONSOLE_PATH + "/assets/{digest}/{name:path}")
async def console_asset(request: Request, digest: str, name: str) -> Response:
    files = console_files()
    # Only names of the packaged files are served: no path is ever joined from the request.
    file = files.assets.get(name)
    if file is None:
        raise ApiError(404, ErrorType.NOT_FOUND, f"no console file {name!r}")
    return _answer(request, file, IMMUTABLE if digest == files.digest else REVALIDATE)
