"""`detector detect` through click's CliRunner: every input kind and output format."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from tests.conftest import TEST_SIGNATURES

SIG = ["--signatures", str(TEST_SIGNATURES)]
PAGE = '<html><head><meta name="generator" content="PressCMS 6.1"></head><body>Powered by Shopy</body></html>'


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["detect", *SIG, *args], input=input)
    return res.exit_code, res.output


def test_html_with_url_and_headers(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text('<meta name="generator" content="PressCMS 6.1">')
    (tmp_path / "h.txt").write_text("HTTP/1.1 200 OK\nX-Powered-By: PHPish/8.1\n")
    code, out = run("--html", str(tmp_path / "p.html"), "--url", "https://a.example/", "--headers",
                    str(tmp_path / "h.txt"), "--json")
    assert code == 0, out
    [record] = json.loads(out)
    techs = {t["name"]: t for t in record["technologies"]}
    assert techs["PressCMS"]["version"] == "6.1" and techs["PHPish"]["version"] == "8.1"
    assert record["url"] == "https://a.example/"
    assert techs["PHPish"]["evidence"][0]["source"] == "header"


def test_html_from_stdin_table_output() -> None:
    code, out = run("--html", "-", input='<meta name="generator" content="PressCMS 6.1">')
    assert code == 0
    assert "PressCMS" in out and "6.1" in out and "meta generator" in out


def _cases() -> list[dict[str, object]]:
    return [
        {"id": "one", "url": "https://a.example/", "status": 200, "headers": {"x-press": ["1"]}, "html": ""},
        {"id": "two", "url": None, "status": None, "headers": {}, "html": PAGE},
    ]


def test_cases_jsonl_gz_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for c in _cases():
            f.write(json.dumps(c) + "\n")
    code, out = run("--cases", str(path), "--nl")
    assert code == 0, out
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["one", "two"]
    assert [t["name"] for t in lines[0]["technologies"]] == ["PressCMS", "PHPish", "Zend-ish"]
    assert "Shopy" in {t["name"] for t in lines[1]["technologies"]}
    code, out2 = run("--cases", "-", "--nl", input="".join(json.dumps(c) + "\n" for c in _cases()))
    assert code == 0 and out2 == out


def test_cases_bad_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_cases()[0]) + "\n{not json\n")
    code, out = run("--cases", str(path), "--nl")
    assert code == 1
    assert "bad.jsonl line 2: not JSON" in out


def test_har(tmp_path: Path) -> None:
    har = {"log": {"entries": [
        {"pageref": "p1", "request": {"url": "https://shop.example/"},
         "response": {"status": 200, "headers": [{"name": "X-Press", "value": "1"}],
                      "content": {"mimeType": "text/html", "text": "<p>hi</p>"}}},
        {"pageref": "p1", "request": {"url": "https://tracko.example/t.js"},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/javascript"}}},
    ]}}
    (tmp_path / "a.har").write_text(json.dumps(har))
    code, out = run("--har", str(tmp_path / "a.har"), "--json")
    assert code == 0, out
    names = {t["name"] for t in json.loads(out)[0]["technologies"]}
    assert {"PressCMS", "Tracko"} <= names


def test_usage_errors() -> None:
    code, out = run()
    assert code == 2 and "give URLs" in out
    code, out = run("--html", "x.html", "--cases", "y.jsonl")
    assert code == 2
    code, out = run("--cases", "nope.jsonl")
    assert code == 66 and "nope.jsonl: no such file" in out


def test_live_fetch_failure_is_clear() -> None:
    # a closed port on loopback: no traffic leaves the machine
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    code, out = run(f"http://127.0.0.1:{port}/", "--timeout", "2", "--allow-private")
    assert code == 1
    assert "could not fetch" in out and "--html" in out


def test_live_fetch_from_local_server(tmp_path: Path) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("X-Powered-By", "PHPish/7.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        refused_code, refused = run(f"http://127.0.0.1:{server.server_address[1]}/", "--nl")
        code, out = run(f"http://127.0.0.1:{server.server_address[1]}/", "--nl", "--allow-private")
    finally:
        server.shutdown()
    assert refused_code == 1 and "not fetched: 127.0.0.1 is a loopback address" in refused, refused
    assert "--allow-private" in refused
    assert code == 0, out
    names = {t["name"]: t["version"] for t in json.loads(out)["technologies"]}
    assert names["PHPish"] == "7.4" and "Shopy" in names


@pytest.mark.parametrize(("url", "why"), [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a metadata service address"),
    ("http://10.1.2.3/", "10.1.2.3 is a private network address"),
    ("http://[::1]:8080/", "::1 is a loopback address"),
    ("http://localhost:9/", "localhost is this machine (loopback)"),
    ("http://shop.test/", "shop.test is a reserved name: it is never sent to the system resolver (reach it with --proxy)"),
    ("file:///etc/passwd", "file scheme: only http and https URLs are fetched"),
])
def test_live_urls_follow_the_crawls_network_policy(url: str, why: str) -> None:
    code, out = run(url, "--timeout", "2")  # refused before any socket is opened
    assert code == 1 and f"not fetched: {why}" in out, out


def test_a_name_resolving_to_a_private_address_is_not_connected_to() -> None:
    from detector.cli.detect import RefusedTarget, _guarded_connect

    with pytest.raises(RefusedTarget, match=r"localhost resolves to (127\.0\.0\.1|::1) \(loopback\)"):
        _guarded_connect(False)(("localhost", 9))


def test_a_redirect_to_a_metadata_address_is_not_followed() -> None:
    from detector.demo.vhosts import Route, Site
    from tests.servers import start_proxy

    html = (("Content-Type", "text/html; charset=utf-8"),)
    sites = {"hop.test": Site("hop.test", {"/": Route(302, (("Location", "http://169.254.169.254/latest/"),)),
                                          "/ok": Route(200, html, PAGE.encode())}, https=False)}
    proxy = start_proxy(sites)
    try:
        ok_code, ok = run("http://hop.test/ok", "--proxy", proxy.url, "--nl")
        code, out = run("http://hop.test/", "--proxy", proxy.url, "--timeout", "5")
    finally:
        proxy.stop()
    assert ok_code == 0 and "Shopy" in ok, ok  # through the proxy, a reserved name is fine
    assert code == 1 and "redirected to http://169.254.169.254/latest/: 169.254.169.254 is a metadata service" in out, out
