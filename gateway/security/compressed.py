"""Inflating a CMS CompressedData (RFC 3274; AS2 compression is RFC 5402), read with pyasn1's
BER decoder (Mendelson writes it with indefinite lengths and a chunked OCTET STRING), and
writing one (DER) for what the gateway sends.

The one algorithm is zlib (RFC 3274 section 2: id-alg-zlibCompress, the RFC 1950 format).  The
output is bounded while inflating, never after: a few kilobytes of zlib can inflate to
gigabytes (DESIGN rule 6), so no more than ``max_bytes`` + 1 is ever asked of zlib."""

from __future__ import annotations

import zlib
from typing import Any

from pyasn1.codec.ber import decoder
from pyasn1.codec.der import encoder
from pyasn1.type import namedtype, tag, univ
from pyasn1_modules import rfc3274, rfc5652

from gateway.errors import DecompressionFailed
from gateway.security.cms import check_elements

_COMPRESSED = str(rfc3274.id_ct_compressedData)
_ZLIB = str(rfc3274.id_alg_zlibCompress)
#: zlib's own worst case for incompressible data is 5 bytes per 16 KiB stored block plus
#: 11 (RFC 1950/1951): input beyond twice the allowed output is no honest compression.
_HEADROOM = 4096
#: Compressed bytes handed to zlib at a time, and the most it may inflate at a time: asked
#: for the whole limit at once, zlib grows its buffer by doubling and the peak is twice it.
_CHUNK = 64 * 1024
_OUT_STEP = 256 * 1024

# The ContentInfo's content read as CompressedData directly, not as an ANY: pyasn1 drops the
# end-of-contents octets of an indefinite-length ANY (see security.cms).
_COMPRESSED_INFO = univ.Sequence(componentType=namedtype.NamedTypes(
    namedtype.NamedType("contentType", rfc5652.ContentType()),
    namedtype.NamedType("content", rfc3274.CompressedData().subtype(
        explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0)))))


def decompress(data: bytes, max_bytes: int) -> bytes:
    """The content of a ContentInfo holding CompressedData, at most ``max_bytes`` long;
    DecompressionFailed naming what is wrong."""
    if len(data) > 2 * max_bytes + _HEADROOM:
        raise DecompressionFailed(f"the compressed data is {len(data)} bytes, more than any "
                                  f"compression of at most {max_bytes} bytes")
    compressed = _read(data)
    return _inflate(compressed, max_bytes)


def compress_data(content: bytes) -> bytes:
    """A DER ContentInfo holding a CompressedData of ``content`` (RFC 3274 section 1.1:
    version 0, zlib without parameters, the compressed bytes as id-data's eContent)."""
    compressed = rfc3274.CompressedData()
    compressed["version"] = 0
    compressed["compressionAlgorithm"]["algorithm"] = rfc3274.id_alg_zlibCompress
    encapsulated = compressed["encapContentInfo"]
    encapsulated["eContentType"] = rfc5652.id_data
    encapsulated["eContent"] = zlib.compress(content)
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc3274.id_ct_compressedData
    info["content"] = encoder.encode(compressed)
    return bytes(encoder.encode(info))


def _read(data: bytes) -> bytes:
    # Bounded before pyasn1 builds anything (security.cms.MAX_ELEMENTS_BASE): a streamed
    # content of a million 1-byte chunks took 7.4 s for 4 MiB.
    check_elements(data, "a CMS CompressedData (RFC 3274)", DecompressionFailed)
    try:
        info, rest = decoder.decode(data, asn1Spec=_COMPRESSED_INFO.clone())
    except Exception as exc:
        # pyasn1 on hostile bytes raises its own errors and built-in ones (security.cms);
        # a ContentInfo of another type fails here too, as its content does not fit.
        raise DecompressionFailed(f"cannot read a CMS CompressedData (RFC 3274): "
                                  f"{_reason(exc)}") from exc
    if rest:
        raise DecompressionFailed(f"{len(rest)} bytes after the CMS CompressedData")
    kind = str(info["contentType"])
    if kind != _COMPRESSED:
        raise DecompressionFailed(f"not a CMS CompressedData: the ContentInfo holds {kind} "
                                  f"(CompressedData is {_COMPRESSED})")
    compressed = info["content"]
    algorithm = str(compressed["compressionAlgorithm"]["algorithm"])
    if algorithm != _ZLIB:
        raise DecompressionFailed(f"unsupported compression algorithm {algorithm} (zlib, "
                                  f"{_ZLIB}, is the one RFC 3274 defines)")
    content = compressed["encapContentInfo"]["eContent"]
    if not content.isValue:
        raise DecompressionFailed("the CompressedData has no content")
    return bytes(content)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _inflate(compressed: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj()
    parts: list[bytes] = []
    produced = 0
    view = memoryview(compressed)
    start = 0
    try:
        while start < len(view) and not inflater.eof:
            pending: Any = view[start:start + _CHUNK]
            start += _CHUNK
            while pending and not inflater.eof:
                # Never more than one byte beyond the limit: getting it means the limit is
                # passed.  All input is consumed this way (unconsumed_tail): no flush needed.
                out = inflater.decompress(pending, min(_OUT_STEP, max_bytes + 1 - produced))
                produced += len(out)
                if produced > max_bytes:
                    raise DecompressionFailed(f"the content inflates beyond {max_bytes} "
                                              "bytes, the limit")
                parts.append(out)
                pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise DecompressionFailed(f"the zlib stream is corrupt: {exc}") from exc
    if not inflater.eof:
        raise DecompressionFailed("the zlib stream is truncated: it does not end")
    if inflater.unused_data or start < len(view):
        raise DecompressionFailed("bytes after the end of the zlib stream")
    return b"".join(parts)
