"""security.compressed: Mendelson's recorded CompressedData (BER, chunked) and OpenSSL's
inflate; the limit holds while inflating (a gigabyte of zeros is refused fast, in little
memory); hostile bytes end in DecompressionFailed and nothing else."""

from __future__ import annotations

import email
import email.policy
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import encoder
from pyasn1.type import tag, univ
from pyasn1_modules import rfc3274, rfc5652

from gateway.errors import DecompressionFailed, InboundRejected
from gateway.security.compressed import decompress
from tests.support.as2_corpus import AS2_FIXTURES, payload, pkcs7_mime, request
from tests.support.cms import openssl
from tests.support.mutation import mutated

CONTENT = b"UNA:+.? 'UNB+UNOC:3+DEMOVAN+SWGATEWAY+261203:1326+42'UNZ+0+42'\r\n" * 40
MIB = 1024 * 1024
ZLIB = str(rfc3274.id_alg_zlibCompress)


def compressed_data(deflated: bytes, *, algorithm: str = ZLIB,
                    content_type: str = str(rfc3274.id_ct_compressedData)) -> bytes:
    """A DER ContentInfo(CompressedData) around ``deflated`` (RFC 3274 section 1.1)."""
    data = rfc3274.CompressedData()
    data["version"] = 0
    data["compressionAlgorithm"]["algorithm"] = univ.ObjectIdentifier(algorithm)
    data["encapContentInfo"]["eContentType"] = rfc5652.id_data
    data["encapContentInfo"]["eContent"] = deflated
    info = rfc5652.ContentInfo()
    info["contentType"] = univ.ObjectIdentifier(content_type)
    info["content"] = univ.Any(encoder.encode(data)).subtype(
        explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))
    return bytes(encoder.encode(info))


def test_mendelsons_compressed_message_inflates_to_the_payload() -> None:
    inner = decompress(pkcs7_mime(request("mecas2_compressed.as2")), MIB)
    entity = email.message_from_bytes(inner, policy=email.policy.compat32)
    assert entity.get_content_type() == "application/edi-consent"
    assert entity.get_payload(decode=True) == payload()


def test_what_openssl_compresses_inflates(tmp_path: Path) -> None:
    plain, out = tmp_path / "content.bin", tmp_path / "content.p7z"
    plain.write_bytes(CONTENT)
    done = openssl("cms", "-compress", "-binary", "-outform", "DER", "-in", plain, "-out", out)
    if done.returncode != 0 and "unsupported compression algorithm" in done.stderr:
        pytest.skip("this openssl is built without zlib: `openssl cms -compress` cannot run "
                    "(Mendelson's message is the independent peer then)")
    assert done.returncode == 0, done.stderr
    assert decompress(out.read_bytes(), MIB) == CONTENT


def test_our_der_inflates_up_to_the_limit_and_not_a_byte_beyond() -> None:
    message = compressed_data(zlib.compress(CONTENT))
    assert decompress(message, len(CONTENT)) == CONTENT
    with pytest.raises(DecompressionFailed, match=f"beyond {len(CONTENT) - 1} bytes"):
        decompress(message, len(CONTENT) - 1)


def test_a_gigabyte_of_zeros_is_refused_fast_in_little_memory() -> None:
    """A zip bomb: ~1 MB of zlib that inflates to 1 GiB.  Refused while inflating, having
    made no more than the limit and one chunk."""
    # Run-length strategy: the same ~1 MB as level 9, in half the time.
    deflater = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    zeros = bytes(MIB)
    bomb = b"".join(deflater.compress(zeros) for _ in range(1024)) + deflater.flush()
    message = compressed_data(bomb)
    assert len(message) < 2 * MIB
    tracemalloc.start()
    started = time.thread_time()
    try:
        with pytest.raises(DecompressionFailed, match="beyond 10485760 bytes"):
            decompress(message, 10 * MIB)
        elapsed = time.thread_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    # The message, its decoded eContent, the limit's worth of output and a step: not 1 GiB.
    assert peak < 10 * MIB + 4 * len(message) + MIB, peak


def test_too_much_input_for_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(DecompressionFailed, match="more than any compression"):
        decompress(compressed_data(b"\x00" * (3 * 1024 + 9000)), 1024)


@pytest.mark.parametrize(("message", "why"), [
    (compressed_data(zlib.compress(CONTENT), algorithm="1.2.840.113549.1.9.16.3.9"),
     "unsupported compression algorithm 1.2.840.113549.1.9.16.3.9"),
    (compressed_data(zlib.compress(CONTENT), content_type="1.2.840.113549.1.7.3"),
     "not a CMS CompressedData"),
    (compressed_data(zlib.compress(CONTENT)[:-9]), "truncated"),
    (compressed_data(zlib.compress(CONTENT) + b"more"), "after the end of the zlib stream"),
    (compressed_data(b"\x78\x9c" + bytes(range(40))), "corrupt"),
    (compressed_data(b""), "truncated"),
    (compressed_data(zlib.compress(CONTENT)) + b"\x00", "1 bytes after"),
    (b"\x30\x80" * 100_000, "cannot read a CMS CompressedData"),
], ids=["algorithm", "content-type", "truncated", "trailing", "corrupt", "empty", "after",
        "deep"])
def test_what_is_wrong_is_named(message: bytes, why: str) -> None:
    with pytest.raises(DecompressionFailed, match=why):
        decompress(message, MIB)


def test_decompression_failed_is_an_inbound_rejection() -> None:
    assert issubclass(DecompressionFailed, InboundRejected)


EXAMPLES = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@EXAMPLES
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_decompression_failed(data: bytes) -> None:
    with pytest.raises(DecompressionFailed):
        decompress(data, MIB)


SEEDS = [compressed_data(zlib.compress(CONTENT))]
if (AS2_FIXTURES / "mecas2_compressed.as2").is_file():
    SEEDS.append(pkcs7_mime(request("mecas2_compressed.as2")))


@EXAMPLES
@given(mutated(SEEDS), st.integers(0, 4096))
def test_changed_messages_raise_only_decompression_failed(data: bytes, limit: int) -> None:
    """A change may leave valid zlib (a stored block's byte, zlib's checksum is over the
    output only): then the output is within the limit; otherwise DecompressionFailed."""
    try:
        inflated = decompress(data, limit)
    except DecompressionFailed:
        return
    assert len(inflated) <= limit
