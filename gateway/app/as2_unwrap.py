"""Where an AS2 message is unwrapped and its MDN signed: processes of their own, beside the
event loop's.

Why processes and not threads: cryptography (50) keeps the GIL through its RSA and AES calls
and our CMS reading is pyasn1, pure Python, so threads never gave the crypto a second core.
``bench/as2.py`` measured the bare decrypt + verify + sign loop at 394 messages/s in one
thread and 332/s in eight, and the gateway's process at 100% of one core (its event loop
waiting on the GIL at every socket send) while the machine had most of a core idle.  A
process of its own has a GIL of its own.

- Each process gets the gateway's keys once, when it starts (``_start``): private keys go
  over the pool's pipe to a child of this process, never to a file.
- A message goes as its headers and body; what comes back is ``read_as2``'s ``As2Payload``
  (certificates travel as DER: see ``copyreg`` below) or the ``As2Rejected`` that refuses it,
  with its cause's text (a traceback does not cross processes, the reason must).
- Large bodies go to a lane of their own (one process): however many large messages
  arrive, every partner's small ones keep being taken (DESIGN rule 6).
- A process that dies (the kernel's OOM killer, a crash in a C library) breaks its pool:
  the message is answered 503 (ours; the partner sends it again), an alarm is logged, and the
  next message gets a new pool.
- ``processes: 0`` keeps the work in threads of the gateway's own process (what a test that
  holds a lane from inside needs; no second core).

The processes ignore SIGINT and SIGTERM: Ctrl-C reaches the whole process group, as systemd's
stop reaches the whole control group, and the gateway, not its helpers, decides when to stop
(it drains first, then closes the pools; the messages in hand are answered).  They leave
when the gateway's process is gone, however it went: a SIGKILLed gateway cannot shut its
pools down, and a pool's worker holds both ends of its own job queue, so it would wait for
jobs forever."""

from __future__ import annotations

import asyncio
import copyreg
import functools
import logging
import multiprocessing
import os
import select
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from multidict import CIMultiDict

from gateway import alarms
from gateway.errors import As2Rejected
from gateway.logs import event
from gateway.security.as2 import As2Payload, Keys, read_as2
from gateway.security.as2_write import HttpMessage, build_mdn
from gateway.security.signing import Signer, SigningKey

log = logging.getLogger("gateway.as2")

T = TypeVar("T")

#: Bodies larger than this are unwrapped in the large lane.
LARGE_BODY_BYTES = 256 * 1024
#: Threads of the small lane when ``processes`` is 0.
THREADS = 2


# Certificates cross the pools' pipes as DER (cryptography's own objects cannot be pickled).
def _certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _reduce_certificate(certificate: x509.Certificate) -> tuple[Any, tuple[bytes]]:
    return _certificate, (certificate.public_bytes(serialization.Encoding.DER),)


copyreg.pickle(x509.Certificate, _reduce_certificate)


# --- in each unwrapping process ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _KeyMaterial:
    """A signing key as it crosses to a process: certificate DER, private key PKCS#8 DER."""

    certificate: bytes
    private_key: bytes


@dataclass(frozen=True, slots=True)
class _ProcessKeys:
    signing: tuple[SigningKey, ...]
    #: The RSA ones, which decrypt (CMS key transport, RFC 5652 section 6.2.1).
    decrypting: Keys


_keys: _ProcessKeys | None = None
#: A partner's certificates parsed once per process (by DER), so each message does not.
_certificates: dict[bytes, x509.Certificate] = {}


def _start(material: tuple[_KeyMaterial, ...], gateway: int) -> None:
    """A process's initializer: its keys, no SIGINT nor SIGTERM, and an end with the
    gateway's process (``gateway``, its pid; see the module's note)."""
    global _keys
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_leave_with, args=(gateway,), name="gateway-watch",
                     daemon=True).start()
    signing = tuple(_signing_key(m) for m in material)
    _keys = _ProcessKeys(signing, _decrypting(signing))


def _leave_with(gateway: int) -> None:
    """Exit as soon as the process ``gateway`` has ended (a pidfd is readable then)."""
    try:
        watched = os.pidfd_open(gateway)
    except OSError:  # gone already
        os._exit(1)
    select.select([watched], [], [])
    os._exit(0)


def _signing_key(material: _KeyMaterial) -> SigningKey:
    key = serialization.load_der_private_key(material.private_key, password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)  # as it was sent
    return SigningKey(_certificate(material.certificate), key)


def _decrypting(signing: Sequence[SigningKey]) -> Keys:
    return [(k.certificate, k.private_key) for k in signing
            if isinstance(k.private_key, rsa.RSAPrivateKey)]


@dataclass(frozen=True, slots=True)
class _Refused:
    """A refusal as it crosses back: the As2Rejected and its cause's text."""

    error: As2Rejected
    cause: str | None


class UnwrapCause(Exception):
    """The cause of a refusal found in an unwrapping process (its repr; for the log)."""


def _in_force(given: _ProcessKeys | None) -> _ProcessKeys:
    """The keys a job uses: those given (a thread of the gateway's process), else its
    process's."""
    keys = given or _keys
    assert keys is not None, "the process was not started with its keys"
    return keys


def _read(given: _ProcessKeys | None, headers: Sequence[tuple[str, str]], body: bytes,
          certificates: tuple[bytes, ...], max_bytes: int) -> As2Payload | _Refused:
    keys = _in_force(given)
    pinned = [_certificates.setdefault(der, _certificate(der)) for der in certificates]
    try:
        return read_as2(CIMultiDict(headers), body, keys=keys.decrypting,
                        partner_certificates=pinned, max_bytes=max_bytes)
    except As2Rejected as exc:
        cause = exc.__cause__
        return _Refused(exc, None if cause is None else repr(cause))


def _mdn(given: _ProcessKeys | None, key: int | None, fields: Mapping[str, Any]
         ) -> HttpMessage:
    signing = _in_force(given).signing
    return build_mdn(signer=None if key is None else signing[key], **fields)


def _started(given: _ProcessKeys | None) -> None:
    _in_force(given)


# --- in the gateway's process ------------------------------------------------------------


class Unwrapping:
    """The lanes AS2 messages are unwrapped in, and MDNs built in."""

    def __init__(self, signer: Signer, processes: int) -> None:
        self._signer = signer
        self._processes = processes
        self._material = tuple(_material(k) for k in signer.keys)
        # Threads (processes: 0) are given the keys with each job; processes hold theirs.
        self._here = None if processes else _ProcessKeys(signer.keys,
                                                         _decrypting(signer.keys))
        self._small = self._lane(processes, "as2-read")
        self._large = self._lane(1 if processes else 0, "as2-read-large")

    def _lane(self, processes: int, name: str) -> Executor:
        if not processes:
            return ThreadPoolExecutor(max_workers=THREADS if name == "as2-read" else 1,
                                      thread_name_prefix=name)
        # forkserver: a fork of the asyncio process (its threads, its sockets) is unsafe, and
        # spawn would import the gateway again for every process started.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return ProcessPoolExecutor(max_workers=processes, mp_context=context,
                                   initializer=_start, initargs=(self._material, os.getpid()))

    async def read(self, headers: Mapping[str, str], body: bytes,
                   certificates: Sequence[x509.Certificate], max_bytes: int) -> As2Payload:
        """``read_as2`` of the message, in the lane its size picks; As2Rejected refuses it
        (with its cause's text as ``__cause__``)."""
        large = len(body) > LARGE_BODY_BYTES
        outcome = await self._run(large, _read, self._here, tuple(headers.items()), body,
                                  tuple(c.public_bytes(serialization.Encoding.DER)
                                        for c in certificates), max_bytes)
        if isinstance(outcome, _Refused):
            cause = None if outcome.cause is None else UnwrapCause(outcome.cause)
            raise outcome.error from cause
        return outcome

    async def mdn(self, key: SigningKey | None, **fields: Any) -> HttpMessage:
        """``build_mdn`` with ``fields``, signed with ``key`` (one of the signer's) when
        given, in the small lane (a signature is CPU work too)."""
        index = None if key is None else self._signer.keys.index(key)
        return await self._run(False, _mdn, self._here, index, fields)

    async def _run(self, large: bool, work: Callable[..., T], *args: Any) -> T:
        lane = self._large if large else self._small
        try:
            return await asyncio.get_running_loop().run_in_executor(
                lane, functools.partial(work, *args))
        except BrokenProcessPool as exc:
            self._replace(lane)
            raise UnwrappingUnavailable("an AS2 unwrapping process died; the message was "
                                        "not taken (send it again)") from exc

    def _replace(self, broken: Executor) -> None:
        """A new pool in place of a broken one (once, however many messages saw it break)."""
        if broken is self._small:
            self._small = self._lane(self._processes, "as2-read")
        elif broken is self._large:
            self._large = self._lane(1, "as2-read-large")
        else:
            return
        broken.shutdown(wait=False, cancel_futures=True)
        event(log, "as2_unwrap_process_died", level=logging.ERROR,
              code=alarms.AS2_UNWRAP_PROCESS_DIED,
              note="its messages were answered 503 and will be sent again; a new process "
                   "was started")

    async def warm(self) -> None:
        """Start the processes now, so the first message does not wait for them, and a
        process that cannot start says so at start-up."""
        await asyncio.gather(*(self._run(False, _started, self._here)
                               for _ in range(self._processes)),
                             self._run(True, _started, self._here))

    def close(self) -> None:
        for lane in (self._small, self._large):
            lane.shutdown(wait=False, cancel_futures=True)


class UnwrappingUnavailable(Exception):
    """Ours: an unwrapping process died under a message (an HTTP 503; it is sent again)."""


def _material(key: SigningKey) -> _KeyMaterial:
    return _KeyMaterial(
        key.certificate.public_bytes(serialization.Encoding.DER),
        key.private_key.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))

