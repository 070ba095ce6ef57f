"""What a timeline says of each step's signature (store.timeline.signature_of: pure)."""

from __future__ import annotations

from gateway.store.timeline import signature_of


def test_an_as2_message_signed_by_the_partner_reads_verified() -> None:
    said = signature_of("as2_received", {"signed": True, "signer": "CN=van-a",
                                         "digest": "sha256"})
    assert said is not None and said.state == "verified" and "CN=van-a" in said.text
    unsigned = signature_of("as2_received", {"signed": False})
    assert unsigned is not None and unsigned.state == "unsigned"


def test_an_mdn_reads_verified_only_when_signed_and_confirming() -> None:
    verified = signature_of("as2_mdn", {"confirmed": True, "signed": True})
    unsigned = signature_of("as2_mdn", {"confirmed": True, "signed": False})
    failed = signature_of("as2_mdn", {"confirmed": False, "problem": "MIC differs"})
    assert verified is not None and verified.state == "verified"
    assert unsigned is not None and unsigned.state == "unsigned"
    assert failed is not None and (failed.state, failed.text) == ("failed", "MIC differs")


def test_our_answers_read_signed_with_their_digests_and_other_steps_say_nothing() -> None:
    ours = signature_of("acknowledged", {"answer_sha256": "ab", "signature_sha256": "cd"})
    assert ours is not None and ours.state == "signed" and "cd" in ours.text
    assert signature_of("acknowledged", {"file_name": "old.contrl.edi"}) is None
    assert signature_of("delivered", {"signed": True}) is None
