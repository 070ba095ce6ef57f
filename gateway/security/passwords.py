"""Console passwords: argon2id (RFC 9106), a memory-hard function, so that a stolen users file
costs an attacker memory as well as time for every guess (OWASP Password Storage Cheat Sheet).

Plain functions that take a CPU core for as long as the parameters ask: the console calls them
off its event loop (asyncio.to_thread).  A hash carries its own parameters, so raising them
later leaves the old hashes verifiable; ``needs_rehash`` says which ones are below the
configured ones."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: RFC 9106 section 4, second recommended option (for memory-constrained settings): 64 MiB,
#: 3 passes, 4 lanes.  About 50-100 ms a hash on a server core.
RECOMMENDED_MEMORY_KIB = 64 * 1024
RECOMMENDED_TIME_COST = 3
RECOMMENDED_PARALLELISM = 4
#: A password longer than this is refused before hashing (argon2 takes any length; a
#: megabyte-long "password" would only cost the server).
MAX_PASSWORD_CHARS = 1024
_PREFIX = "$argon2id$"


@dataclass(frozen=True, slots=True)
class HashingCost:
    time_cost: int = RECOMMENDED_TIME_COST
    memory_kib: int = RECOMMENDED_MEMORY_KIB
    parallelism: int = RECOMMENDED_PARALLELISM

    def below_recommended(self) -> bool:
        return (self.time_cost < RECOMMENDED_TIME_COST
                or self.memory_kib < RECOMMENDED_MEMORY_KIB)


def _hasher(cost: HashingCost) -> PasswordHasher:
    return PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib,
                          parallelism=cost.parallelism, hash_len=32, salt_len=16,
                          type=Type.ID)


def hash_password(password: str, cost: HashingCost) -> str:
    """An argon2id hash in the PHC string format, with a fresh random 16-byte salt."""
    if not password or len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"a password has 1 to {MAX_PASSWORD_CHARS} characters")
    return _hasher(cost).hash(password)


def is_argon2id(encoded: str) -> bool:
    return encoded.startswith(_PREFIX)


def verify_password(encoded: str, password: str) -> bool:
    """Whether ``password`` is the one hashed in ``encoded``; a malformed hash or an
    over-long password is a plain no (the caller answers every failure alike)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return bool(PasswordHasher().verify(encoded, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str, cost: HashingCost) -> bool:
    try:
        return bool(_hasher(cost).check_needs_rehash(encoded))
    except InvalidHashError:
        return True


def dummy_hash(cost: HashingCost) -> str:
    """A hash of a random password at ``cost``: verified against for an unknown user, so that
    the answer and its time are those of a wrong password (OWASP Authentication Cheat Sheet,
    "Authentication Responses")."""
    return hash_password(secrets.token_urlsafe(24), cost)
