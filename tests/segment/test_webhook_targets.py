"""Which webhook URLs may be sent to: every spelling of a non-public address is refused,
a public one resolves to the address the delivery connects to."""

from __future__ import annotations

import pytest

from services.segment.webhooks.targets import UnsafeTarget, resolve

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.2/", "loopback"),
        ("http://0x7f.1/", "loopback"),  # 127.0.0.1, as the resolver reads it
        ("http://[::ffff:10.0.0.1]/", "private"),  # IPv4-mapped
        ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
        ("http://[fe80::1]/", "link-local"),
        ("http://[fc00::1]/", "private"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[::]/", "unspecified"),
        ("http://172.16.5.4/", "private"),
        ("http://100.64.0.1/", "not globally reachable"),  # carrier-grade NAT
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "reserved"),
    ],
)
def test_every_spelling_of_a_non_public_address_is_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeTarget, match=rf"\({why}\)$"):
        resolve(url, allow_private=False)


def test_a_public_address_is_where_the_delivery_connects() -> None:
    target = resolve("https://93.184.215.14:8443/hooks?x=1", allow_private=False)
    assert target.addresses == ("93.184.215.14",)
    assert target.url("93.184.215.14") == "https://93.184.215.14:8443/hooks?x=1"
    assert target.host_header == "93.184.215.14:8443"


def test_allowing_private_targets_keeps_the_name_for_the_host_header() -> None:
    target = resolve("http://localhost:8080/hooks", allow_private=True)
    assert "127.0.0.1" in target.addresses or "::1" in target.addresses
    assert target.host_header == "localhost:8080"
    assert all(target.url(a).endswith(":8080/hooks") for a in target.addresses)


@pytest.mark.parametrize(
    "url", ["ftp://93.184.215.14/", "http:///nohost", "http://93.184.215.14:99999/"]
)
def test_a_url_without_an_http_host_and_port_is_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        resolve(url, allow_private=True)
