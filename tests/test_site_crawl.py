"""A real crawl (local proxy, subprocess) resolves a site's pages at once and survives unusable charsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.demo.vhosts import Route, Site, VirtualHostProxy
from tests.conftest import TEST_SIGNATURES
from tests.servers import rows, run_detector, tls_context


def _html(*parts: str) -> bytes:
    return ("<html><head>" + "".join(parts) + '</head><body><a href="/pricing">Pricing</a></body></html>').encode()


SITES = {
    # the plugin is on the homepage, the CMS it requires only on /pricing
    "split.test": Site("split.test", {
        "/": Route(body=_html('<script src="/press-content/plugins/pp/x.js"></script>')),
        "/pricing": Route(body=_html('<meta name="generator" content="PressCMS 6.1">')),
    }),
    # 200 OK pages whose header, or meta, names a codec that is no charset
    "hexcharset.test": Site("hexcharset.test", {
        "/": Route(headers=(("Content-Type", "text/html; charset=hex"),),
                   body=_html('<meta name="generator" content="PressCMS 6.2">')),
    }),
    "b64meta.test": Site("b64meta.test", {
        "/": Route(headers=(("Content-Type", "text/html"),),
                   body=_html('<meta charset="base64">', '<meta name="generator" content="PressCMS 6.2.1">')),
    }),
}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("site-crawl")
    server = VirtualHostProxy(SITES, ssl_context=tls_context(sorted(SITES))).start()
    try:
        (tmp / "in.txt").write_text("\n".join(SITES) + "\n", encoding="utf-8")
        db = tmp / "c.db"
        run = run_detector(["crawl", str(tmp / "in.txt"), "--db", str(db), "--proxy", server.url, "--no-dns",
                            "--signatures", str(TEST_SIGNATURES), "--workers", "1", "--ignore-robots"])
        assert run.code == 0, run.err
    finally:
        server.stop()
    return db


def test_crawl_resolves_the_site_at_once(crawled: Path) -> None:
    (scan,) = rows(crawled, "select * from scans where domain = 'split.test'")
    assert (scan["status"], scan["pages"]) == ("ok", 2)
    found = {r["technology"]: r for r in rows(crawled, "select * from detections where domain = 'split.test'")}
    assert {e["page"] for e in json.loads(found["PressPlugin"]["evidence"])} == {"https://split.test/"}
    assert found["PressCMS"]["version"] == "6.1"


# Scrapy's MetaRefreshMiddleware and the spider's link extraction read response.text, which
# raised LookupError on these charsets before the page reached the engine; SafeEncodingMiddleware
# re-labels such responses as the engine decodes them (test_decoding.py).
@pytest.mark.parametrize(("domain", "version"), [("hexcharset.test", "6.2"), ("b64meta.test", "6.2.1")])
def test_crawl_stores_pages_with_unusable_charsets(crawled: Path, domain: str, version: str) -> None:
    (scan,) = rows(crawled, f"select * from scans where domain = '{domain}'")
    assert scan["status"] == "ok", scan["error_message"]
    found = {r["technology"]: r for r in rows(crawled, f"select * from detections where domain = '{domain}'")}
    assert found["PressCMS"]["version"] == version
