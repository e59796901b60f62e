"""The web console's static files: every file is reachable from the page and served with the
security and cache headers; no HTML carries inline script, event handler or style (the CSP
forbids them, so they would silently not work); no module writes HTML from strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent_service.api.errors import install_error_handlers
from agent_service.api.routes import console
from agent_service.console import STATIC_DIR

FILES = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file())
HTML = [name for name in FILES if name.endswith(".html")]
MODULES = [name for name in FILES if name.endswith(".js")]
_PAGE_REF = re.compile(r'(?:src|href)="(assets/[^"]+)"')
_IMPORT = re.compile(r'^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}/[^"]+)"', re.M)


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(console.router)
    return TestClient(app)


def _references(name: str) -> set[str]:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    if name.endswith(".html"):
        return set(_PAGE_REF.findall(text))
    base = Path(name).parent
    return {
        Path(*(base / ref).parts).as_posix().replace("/./", "/") for ref in _IMPORT.findall(text)
    }


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def test_every_file_is_reachable_from_the_page() -> None:
    seen, todo = {"index.html"}, ["index.html"]
    while todo:
        for ref in _references(todo.pop()):
            target = _normalise(ref)
            assert target in FILES, f"{ref} is referenced but is not a console file"
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert sorted(seen) == FILES, f"never referenced: {sorted(set(FILES) - seen)}"


@pytest.mark.parametrize("name", HTML)
def test_html_has_no_inline_script_handler_or_style(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    for script in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, re.S | re.I):
        assert "src=" in script.group(1), f"inline <script> in {name}"
        assert not script.group(2).strip(), f"<script src> with a body in {name}"
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", text, re.I), f"on*= handler in {name}"
    assert not re.search(r"<[^>]*\sstyle\s*=", text, re.I), f"style= attribute in {name}"
    assert "<style" not in text.lower(), f"<style> element in {name}"
    assert "javascript:" not in text.lower()


@pytest.mark.parametrize("name", MODULES)
def test_modules_never_parse_strings_as_html(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert banned not in text, f"{banned} in {name}: build nodes with dom.h"
    assert not re.search(r"\.style\s*=|setAttribute\(\s*[\"']style", text), name


def test_the_page_and_every_asset_are_served_with_security_and_cache_headers(
    client: TestClient,
) -> None:
    files = console.console_files()
    redirect = client.get("/ui", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert f'src="assets/{files.digest}/app.js"' in page.text
    assert 'href="assets/console.css"' not in page.text
    again = client.get("/ui/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and not again.content
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for name in FILES:
        if name == "index.html":
            continue
        asset = name.removeprefix("assets/")
        served = client.get(f"/ui/assets/{files.digest}/{asset}")
        assert served.status_code == 200, name
        assert served.content == (STATIC_DIR / name).read_bytes()
        assert served.headers["content-type"].startswith(types[Path(name).suffix])
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served.headers["x-content-type-options"] == "nosniff"
        # A page of an older release asks under its own digest: today's file, not cached.
        stale = client.get(f"/ui/assets/0000000000000000/{asset}")
        assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/assets/x/../index.html",
        "/ui/assets/x/%2e%2e/%2e%2e/console/__init__.py",
        "/ui/assets/x/nothing.js",
        "/ui/assets/x/",
        "/ui/index.html",
    ],
)
def test_only_console_files_are_served(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found"


def test_the_digest_changes_with_any_file(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<script type="module" src="assets/a.js"></script>')
    (tmp_path / "assets" / "a.js").write_text("export const a = 1;\n")
    first = console.read_console(tmp_path)
    (tmp_path / "assets" / "a.js").write_text("export const a = 2;\n")
    second = console.read_console(tmp_path)
    assert first.digest != second.digest
    expected = f'<script type="module" src="assets/{second.digest}/a.js"></script>'
    assert second.index.body == expected.encode()
