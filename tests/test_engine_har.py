"""HAR captures: which documents are pages, and which scripts each page is credited with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.engine.cases import pages_from_har
from detector.errors import PageError


def _doc(url: str, pageref: str | None = None, status: int = 200) -> dict[str, Any]:
    e: dict[str, Any] = {"request": {"url": url, "headers": []},
                         "response": {"status": status, "headers": [{"name": "Server", "value": "x"}],
                                      "content": {"mimeType": "text/html; charset=utf-8", "text": "<p>hi</p>"}}}
    if pageref:
        e["pageref"] = pageref
    return e


def _script(url: str, pageref: str | None = None, referer: str | None = None) -> dict[str, Any]:
    headers = [{"name": "Referer", "value": referer}] if referer else []
    e: dict[str, Any] = {"request": {"url": url, "headers": headers},
                         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/javascript"}}}
    if pageref:
        e["pageref"] = pageref
    return e


def _pages(tmp_path: Path, entries: list[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    path = tmp_path / "c.har"
    path.write_text(json.dumps({"log": {"entries": entries}}))
    return {pid: page.script_urls for pid, page in pages_from_har(path)}


def test_each_document_without_pageref_is_its_own_page(tmp_path: Path) -> None:
    pages = _pages(tmp_path, [
        _doc("https://a.example/"),
        _script("https://cdn.example/a.js", referer="https://a.example/"),
        _doc("https://b.example/news"),
        _script("https://cdn.example/b.js", referer="https://b.example/news"),
    ])
    assert pages == {"https://a.example/": ("https://cdn.example/a.js",),
                     "https://b.example/news": ("https://cdn.example/b.js",)}


def test_scripts_follow_their_pageref_not_the_first_page(tmp_path: Path) -> None:
    pages = _pages(tmp_path, [
        _doc("https://a.example/", "page_1"),
        _doc("https://b.example/", "page_2"),
        _script("https://cdn.example/a.js", "page_1"),
        _script("https://cdn.example/b.js", "page_2"),
    ])
    assert pages == {"page_1": ("https://cdn.example/a.js",), "page_2": ("https://cdn.example/b.js",)}


def test_referer_cut_to_an_origin_credits_the_only_page_of_that_origin(tmp_path: Path) -> None:
    pages = _pages(tmp_path, [
        _doc("https://a.example/story/1"),
        _doc("https://b.example/"),
        _script("https://cdn.example/a.js", referer="https://a.example/"),
        _script("https://cdn.example/other.js", referer="https://elsewhere.example/"),
        _script("https://cdn.example/none.js"),
    ])
    assert pages == {"https://a.example/story/1": ("https://cdn.example/a.js",), "https://b.example/": ()}


def test_ambiguous_origin_referer_credits_no_page(tmp_path: Path) -> None:
    pages = _pages(tmp_path, [
        _doc("https://a.example/1"),
        _doc("https://a.example/2"),
        _script("https://cdn.example/x.js", referer="https://a.example/"),
        _script("https://cdn.example/two.js", referer="https://a.example/2"),
    ])
    assert pages == {"https://a.example/1": (), "https://a.example/2": ("https://cdn.example/two.js",)}


def test_redirects_and_frames_of_a_pageref_make_one_page(tmp_path: Path) -> None:
    pages = _pages(tmp_path, [
        _doc("http://a.example/", "p", status=301),
        _doc("https://a.example/", "p"),
        _doc("https://ads.example/frame.html", "p"),
        _script("https://ads.example/f.js", "p"),
    ])
    assert pages == {"p": ("https://ads.example/f.js",)}


def test_not_a_har_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.har"
    path.write_text(json.dumps({"log": {}}))
    with pytest.raises(PageError, match="no log.entries"):
        list(pages_from_har(path))
    path.write_text("[1, 2]")
    with pytest.raises(PageError, match="no log.entries"):
        list(pages_from_har(path))
