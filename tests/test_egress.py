"""The suite's egress guard catches attempts to leave loopback, here and in subprocesses."""

from __future__ import annotations

import doctest
import socket
import threading
from typing import Any

import pytest

from detector import egress
from tests.servers import ROOT, run_detector

TEST_SIGNATURES = ROOT / "tests" / "signatures"


def test_doctests() -> None:
    result = doctest.testmod(egress)
    assert result.attempted > 0 and result.failed == 0


def test_connection_beyond_loopback_is_refused(egress_guard: Any) -> None:
    # 192.0.2.0/24 is TEST-NET-1: refused before a SYN could leave.
    with pytest.raises(egress.EgressRefusedError, match="refused a connection to .*192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(OSError, match="egress guard"):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(OSError, match="egress guard"):
        socket.gethostbyname("shop.test")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(OSError, match="datagram"):
        udp.sendto(b"\0" * 12, ("192.0.2.53", 53))
    assert len(egress_guard.refused()) == 4
    egress_guard.forget()


def test_loopback_stays_open(egress_guard: Any) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = threading.Thread(target=lambda: server.accept()[0].close())
    accepted.start()
    with socket.create_connection(("localhost", port), timeout=5):
        pass
    accepted.join(5)
    server.close()
    assert socket.getaddrinfo("127.0.0.1", 80) and egress_guard.refused() == []


def test_subprocess_attempt_is_caught(egress_guard: Any) -> None:
    """A ``detector`` subprocess inherits the guard: its attempt is refused and reported to us."""
    run = run_detector(["detect", "http://192.0.2.1/", "--timeout", "2", "--allow-private",  # past the policy
                        "--signatures", str(TEST_SIGNATURES)],
                       timeout=120)
    assert run.code == 1 and "egress guard: refused a connection to ('192.0.2.1', 80)" in run.err, run.err
    refused = egress_guard.refused()
    assert len(refused) == 1 and "refused a connection to ('192.0.2.1', 80)" in refused[0], (refused, run.err)
    assert refused[0].startswith("pid ")  # written by the subprocess, not by us
    egress_guard.forget()
