"""POSTing AS2 messages and asynchronous MDNs to partners (aiohttp client).  A response body
is read up to a bound (an MDN is small; a partner's server answering with gigabytes must not
fill our memory)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from gateway.errors import PostFailed

#: The largest response read: a signed MDN is a few kilobytes.
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


async def post(session: aiohttp.ClientSession, url: str, headers: Sequence[tuple[str, str]],
               body: bytes, *, timeout_seconds: float) -> PostResult:
    """One POST; PostFailed when nothing came back (refused, reset, timed out, too big)."""
    try:
        async with session.post(url, data=body, headers=list(headers),
                                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
                                allow_redirects=False) as response:
            answer = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(answer) > MAX_RESPONSE_BYTES:
                raise PostFailed(f"{url} answered with more than {MAX_RESPONSE_BYTES} bytes")
            return PostResult(response.status,
                              tuple((k, v) for k, v in response.headers.items()), answer)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PostFailed(f"POST {url}: {type(exc).__name__}: {exc}") from exc
