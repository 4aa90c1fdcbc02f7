"""/v1/docs in a real headless browser (Debian's chromium): Swagger UI renders from the files the
server ships, with every other host unresolvable, and the page references nothing off-box."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from tests.rest_bridge.conftest import served_over_http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip(
        "chromium is not installed (apt-get install chromium; CI installs it in .ci/run)",
        allow_module_level=True,
    )

URL_ATTRIBUTES = frozenset({"src", "href", "xlink:href", "action", "formaction", "poster", "data", "srcset"})
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")


class _Links(HTMLParser):
    """Every URL an element of the page would load or link to (attributes, inline CSS)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in URL_ATTRIBUTES:
                self.urls += [part.split()[0] for part in value.split(",")] if name == "srcset" else [value]
            elif name == "style":
                self.urls += CSS_URL.findall(value)

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += CSS_URL.findall(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def off_box(urls: list[str], host: str = "127.0.0.1") -> list[str]:
    """The absolute http(s) URLs among ``urls`` that name another host."""
    return [u for u in urls if urlsplit(u).scheme in ("http", "https") and urlsplit(u).hostname != host]


def render(url: str, tmp: Path) -> str:
    """The DOM after the page's scripts ran, every host but 127.0.0.1 unresolvable."""
    assert CHROMIUM is not None, "chromium is not installed: apt-get install chromium (see .ci/run)"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp / 'profile'}",
        "--dump-dom",
        "--virtual-time-budget=10000",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with served_over_http(tmp_path_factory.mktemp("docs")) as (_, bound):
        yield bound


def test_the_link_check_can_fail() -> None:
    page = _Links()
    page.feed(
        '<link href="https://cdn.example/x.css"><img srcset="/a.png 1x, http://a.example/b.png 2x">'
        '<div style="background: url(\'http://b.example/c.png\')"></div><script src="/v1/docs/static/x.js">'
    )
    assert off_box(page.urls) == [
        "https://cdn.example/x.css",
        "http://a.example/b.png",
        "http://b.example/c.png",
    ]


def test_docs_render_offline_with_the_operations_and_authorize(port: int, tmp_path: Path) -> None:
    dom = render(f"http://127.0.0.1:{port}/v1/docs", tmp_path)
    # Swagger UI ran: an operation block per route, the Authorize button of the security schemes
    for path in ("/v1/predict/single", "/v1/predict/batch", "/v1/models", "/v1/readyz", "/"):
        assert f'data-path="{path}"' in dom, f"no rendered operation for {path}"
    assert re.search(r'class="btn authorize[^"]*"', dom) and ">Authorize<" in dom
    assert 'class="opblock-summary-path" data-path="/v1/predict/single"' in dom
    page = _Links()
    page.feed(dom)
    assert any(u.endswith("/v1/docs/static/swagger-ui-bundle.js") for u in page.urls), page.urls
    assert off_box(page.urls) == []
    # the stylesheet the page loads names no other host either
    css = httpx.get(f"http://127.0.0.1:{port}/v1/docs/static/swagger-ui.css").text
    assert off_box(CSS_URL.findall(css)) == []
