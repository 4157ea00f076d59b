"""The shared network policy: reserved names and refused addresses."""

from __future__ import annotations

import doctest

import pytest

from detector import netpolicy
from detector.netpolicy import blocked_address_reason, is_ip_literal, is_reserved_name


def test_doctests() -> None:
    result = doctest.testmod(netpolicy)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.1.1",
     "169.254.169.254", "0.0.0.0", "224.0.0.251", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254",
     "::ffff:127.0.0.1", "::ffff:169.254.169.254", "[::1]", "fe80::1%eth0", "240.0.0.1"],
)
def test_refused_addresses(address: str) -> None:
    assert blocked_address_reason(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_address_reason(address) is None


def test_metadata_named_as_such() -> None:
    assert blocked_address_reason("::ffff:169.254.169.254") == "metadata service"
    assert blocked_address_reason("fd00:ec2::254") == "metadata service"


def test_names() -> None:
    assert is_reserved_name("a.b.example.") and is_reserved_name("x.invalid")
    assert not is_reserved_name("testing.com") and not is_reserved_name("")
    assert not is_reserved_name("local.example.org")
    assert blocked_address_reason("shop.test") is None and not is_ip_literal("shop.test")
