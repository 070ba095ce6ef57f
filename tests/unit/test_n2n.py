"""N2N certificates of origin, the pure parts (docs/n2n.md): single_window partners in
partners.yaml, the certificates a declaration cites, what the gateway verified of them, and a
certificate's status from the MDN that answered it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import n2n
from gateway.config.load import load_config
from gateway.console.pages import templates
from gateway.model.canonical.customs_declaration import VerifiedOriginCertificate
from gateway.pipeline.origin import (
    cited_certificates,
    file_name,
    status_of_mdn,
    with_verified,
)
from tests.support.agencies import declaration
from tests.unit.test_config import demo_config, error_of, line_of

SINGLE_WINDOW = """  - id: {id}
    name: a single window
    kind: single_window
    country: {country}
    as2: {{id: {as2}, certificates: [sw.crt], url: "http://127.0.0.1:9/as2"}}
"""


def with_single_windows(tmp_path: Path, *entries: str) -> Path:
    config_dir = demo_config(tmp_path)
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text() + "".join(entries))
    return config_dir


def window(partner_id: str = "sw-nl", country: str = "NL", as2: str = "SWNL") -> str:
    return SINGLE_WINDOW.format(id=partner_id, country=country, as2=as2)


def test_a_single_window_loads_with_its_country(tmp_path: Path) -> None:
    config = load_config(with_single_windows(tmp_path, window()) / "gateway.yaml", environ={})
    partner = config.partner("sw-nl")
    assert partner is not None and partner.single_window and partner.country == "NL"
    assert config.settings.n2n.approving_agency == "trade"
    assert config.settings.n2n.approving_decisions == ("released",)


def test_two_single_windows_for_one_country_are_refused_at_the_second(tmp_path: Path) -> None:
    config_dir = with_single_windows(tmp_path, window(), window("sw-nl2", "NL", "SWNL2"))
    message = error_of(config_dir)
    assert "partners[2]" in message
    assert "country NL already has a single window, partner 'sw-nl'" in message
    lines = (config_dir / "partners.yaml").read_text().splitlines()
    assert lines[line_of(message, "partners.yaml") - 1] == "  - id: sw-nl2"


@pytest.mark.parametrize(("change", "error"), [
    (("    country: NL\n", ""), "needs its country"),
    (("country: NL", "country: nl"), "country"),
    (("country: NL", "country: NLD"), "country"),
    ((', url: "http://127.0.0.1:9/as2"', ""), "as2 settings with its url"),
    (("    kind: single_window\n", "    kind: single_window\n    xml_ids: ['X1']\n"),
     "no edifact_ids or xml_ids"),
    (("kind: single_window", "kind: customs"), "kind"),
    (("kind: single_window", "kind: van"), "country is a single window's"),
])
def test_what_a_single_window_entry_must_say(tmp_path: Path, change: tuple[str, str],
                                             error: str) -> None:
    entry = window().replace(*change)
    assert entry != window()
    message = error_of(with_single_windows(tmp_path, entry))
    assert "partners.yaml" in message and "partners[1]" in message and error in message


def test_cited_certificates_are_origin_documents_with_a_number() -> None:
    cited = declaration([("8459.61", "TW", ("861",)), ("8459.61", "TW", ("911", "864")),
                         ("8459.61", "TW", ())])
    assert cited_certificates(cited) == {"D-1-861": (1,), "D-2-864": (2,)}
    blank = cited.model_copy(update={"goods_items": tuple(
        g.model_copy(update={"documents": tuple(d.model_copy(update={"number": "  "})
                                                for d in g.documents)})
        for g in cited.goods_items)})
    assert cited_certificates(blank) == {}


def test_only_the_gateway_says_what_was_verified() -> None:
    claimed = declaration().model_copy(update={"origin_certificates": (
        VerifiedOriginCertificate(number="D-1-861", verified=True, country="NO",
                                  received_from="nobody"),)})
    assert with_verified(claimed, {}).origin_certificates == ()
    verified = with_verified(claimed, {"D-1-861": [("NO", "sw-no")]})
    assert [c.model_dump() for c in verified.origin_certificates] == [{
        "number": "D-1-861", "verified": True, "country": "NO", "received_from": "sw-no",
        "items": (1,)}]


@pytest.mark.parametrize(("disposition", "confirmed", "status"), [
    (None, True, "pending"),
    ("processed", True, "delivered"),
    ("processed/warning: duplicate-document", True, "delivered_with_warnings"),
    ("processed/error: decryption-failed", True, "not_readable"),
    ("processed/error: authentication-failed", False, "not_readable"),
    ("failed/Failure: unsupported MIC-algorithms", False, "not_readable"),
    ("processed", False, "not_readable"),  # its MIC is not ours: it read something else
])
def test_the_status_an_mdn_gives(disposition: str | None, confirmed: bool,
                                 status: str) -> None:
    assert status_of_mdn(disposition, confirmed) == status


@pytest.mark.parametrize(("number", "name"), [
    ("COO-2026-0042", "COO-2026-0042.certificate-of-origin.xml"),
    ("COO/77 #1 é", "COO_77__1__.certificate-of-origin.xml"),
    ("../../etc/passwd", "_.._etc_passwd.certificate-of-origin.xml"),
    ("...", "certificate.certificate-of-origin.xml"),
])
def test_a_number_becomes_a_file_name_that_is_safe(number: str, name: str) -> None:
    assert file_name(number) == name


def test_single_windows_need_an_approving_agency_and_as2(tmp_path: Path) -> None:
    config_dir = with_single_windows(tmp_path, window())
    gateway = config_dir / "gateway.yaml"
    text = gateway.read_text()
    assert "  approving_agency: trade\n" in text
    gateway.write_text(text.replace("approving_agency: trade", "approving_agency: chamber"))
    message = error_of(config_dir)
    assert "n2n.approving_agency: 'chamber' is no agency" in message and "sw-nl" in message
    as2 = "as2:\n  id: SWGATEWAY\n  host: 127.0.0.1\n  port: 8080\n  path: /as2\n"
    assert as2 in text
    gateway.write_text(text.replace(as2, ""))
    assert "as2: partners sw-nl are single windows, reached by AS2" in error_of(config_dir)


def test_the_partners_page_says_which_partner_is_a_single_window(tmp_path: Path) -> None:
    config = load_config(with_single_windows(tmp_path, window()) / "gateway.yaml", environ={})
    page = templates().get_template("partners.html").render(
        partners=config.partners, certificates={}, problem="", warn_days=30,
        fingerprints={p.id: [] for p in config.partners}, navigation=[], here="/partners",
        visitor=None, csrf_token="")
    assert page.count("single window of") == 1
    assert "single window of NL: certificates of origin by AS2" in page


def test_a_certificate_from_another_country_than_the_goods_origin_is_not_verified() -> None:
    """Attack: a number is no identity across countries. A declaration's goods of Taiwanese
    origin cite COO D-1-861; the certificate numbered so that came in is the Netherlands':
    it does not verify the Taiwanese claim. A goods item stating no origin is linked to any."""
    taiwanese = declaration([("8459.61", "TW", ("861",))])
    assert with_verified(taiwanese, {"D-1-861": [("NL", "sw-nl")]}).origin_certificates == ()
    both = with_verified(taiwanese, {"D-1-861": [("NL", "sw-nl"), ("TW", "sw-tw")]})
    assert [(c.country, c.items) for c in both.origin_certificates] == [("TW", (1,))]
    unstated = with_verified(declaration([("8459.61", None, ("861",))]),
                             {"D-1-861": [("NL", "sw-nl")]})
    assert [(c.country, c.items) for c in unstated.origin_certificates] == [("NL", (1,))]


def test_a_destination_country_in_lower_case_or_padded_finds_its_single_window(
        tmp_path: Path) -> None:
    """Attack (an unlucky chamber): UBL does not constrain the case of a country code. A
    certificate approved for "nl " must go to the Netherlands' single window, not fail for
    ever (a resend would read the same stored document and fail again)."""
    config = load_config(with_single_windows(tmp_path, window()) / "gateway.yaml", environ={})
    for spelled in ("NL", "nl", " Nl "):
        partner = n2n.single_window(config, spelled)
        assert partner is not None and partner.id == "sw-nl", spelled
    assert n2n.single_window(config, None) is None
    assert n2n.single_window(config, "DE") is None


def test_a_certificate_received_twice_is_verified_once() -> None:
    """Attack (an unlucky operator abroad): the exporting single window resends a certificate
    the importing one had taken (`gateway n2n resend`: a new AS2 message, taken again). The
    declaration citing it says it was verified once, not twice."""
    taiwanese = declaration([("8459.61", "TW", ("861",))])
    twice = with_verified(taiwanese, {"D-1-861": [("TW", "sw-tw"), ("TW", "sw-tw")]})
    assert [(c.number, c.country) for c in twice.origin_certificates] == [("D-1-861", "TW")]
