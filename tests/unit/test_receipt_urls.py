"""receipt_url_allowed: where an asynchronous MDN may be POSTed (docs/as2.md).  A signed
message names the URL (Receipt-Delivery-Option); only the partner's own URLs may be reached."""

from __future__ import annotations

import pytest

from gateway.app.as2_inbound import receipt_url_allowed
from gateway.config.partners import Partner


def partner(url: str | None = "http://van.example/as2",
            receipt_urls: tuple[str, ...] = ()) -> Partner:
    return Partner.model_validate({
        "id": "van-a", "name": "VAN A", "edifact_ids": [{"id": "VANA"}],
        "as2": {"id": "VAN-A", "certificates": ["van-a.pem"], "url": url,
                "receipt_urls": list(receipt_urls)}})


@pytest.mark.parametrize("url", [
    "http://van.example/", "http://van.example/mdn", "http://van.example/as2/mdn?x=1",
])
def test_the_origin_of_url_is_allowed(url: str) -> None:
    assert receipt_url_allowed(partner(), url)


@pytest.mark.parametrize("url", [
    "http://van.example.evil.com/",          # a host that only begins like the partner's
    "http://van.example@evil.example/",      # userinfo: the host is evil.example
    "http://van.example:8080/",              # another port of the same host
    "https://van.example/",                  # another scheme (origin = scheme, host, port)
    "ftp://van.example/", "file:///etc/passwd", "gopher://van.example/",
    "http://evil.example/http://van.example/",
    "http://van.example", "",                # no path at all: not under the origin's "/"
])
def test_other_origins_are_refused(url: str) -> None:
    assert not receipt_url_allowed(partner(), url)


def test_a_partner_without_url_or_receipt_urls_gets_no_async_mdn() -> None:
    assert not receipt_url_allowed(partner(url=None), "http://van.example/")


def test_receipt_urls_replace_the_origin() -> None:
    configured = partner(receipt_urls=("https://mdn.van.example/as2/",))
    assert receipt_url_allowed(configured, "https://mdn.van.example/as2/in")
    assert not receipt_url_allowed(configured, "http://van.example/")
    assert not receipt_url_allowed(configured, "https://mdn.van.example/other")
    assert not receipt_url_allowed(configured, "https://mdn.van.example.evil.com/as2/")


def test_a_receipt_url_prefix_must_name_a_path() -> None:
    """The config pattern makes a prefix end its host with "/", so "https://van.example"
    (which "https://van.example.evil.com/" starts with) cannot be configured."""
    with pytest.raises(ValueError, match="receipt_urls"):
        partner(receipt_urls=("https://van.example",))


@pytest.mark.parametrize("url", [
    "https://mdn.van.example/as2/../admin/reset",
    "https://mdn.van.example/as2/%2e%2e/admin/reset",
    "https://mdn.van.example/as2/%2E%2E/admin/reset",
    "https://mdn.van.example/as2/.%2e/admin/reset",
    "https://mdn.van.example/as2/./../admin",
])
def test_dot_segments_cannot_climb_out_of_a_prefix(url: str) -> None:
    """The HTTP client (yarl) removes dot segments, percent-encoded ones too (RFC 3986 section
    5.2.4): "/as2/../admin/reset" is POSTed to "/admin/reset", outside the prefix the partner
    was given.  A URL with dot segments is refused."""
    import yarl

    assert not str(yarl.URL(url).path).startswith("/as2/")  # where it would really go
    assert not receipt_url_allowed(partner(receipt_urls=("https://mdn.van.example/as2/",)), url)
