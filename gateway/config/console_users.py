"""The ops console's users file (named by gateway.yaml's ``console: users:``): each user's
name, role and argon2id password hash.  Loaded strictly like every configuration file
(yamlfile: errors name file:line:column and field); written by ``gateway console user add``
and ``gateway demo console-admin`` atomically (a temporary file renamed over the old one), so
the console never reads half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationInfo, field_validator

from gateway.config.settings import Strict
from gateway.config.yamlfile import load_model

#: A console user's name: what they type at the login page, shown in the audit log.
USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class Role(IntEnum):
    """Each role may do what the ones below it may: viewer < operator < admin."""

    viewer = 1
    operator = 2
    admin = 3


class ConsoleUser(Strict):
    name: str = Field(pattern=USER_NAME)
    role: Role
    password_hash: str = Field(pattern=r"^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+"
                               r"\$[A-Za-z0-9+/]+$", description="argon2id, PHC string "
                               "format (`gateway console user add` writes it)")

    @field_validator("role", mode="before")
    @classmethod
    def _role_by_name(cls, value: Any) -> Any:
        """Written by name (viewer, operator, admin), never as a number."""
        if isinstance(value, Role):
            return value
        if isinstance(value, str) and value in Role.__members__:
            return Role[value]
        raise ValueError(f"must be one of {', '.join(Role.__members__)}")


class UsersFile(Strict):
    users: tuple[ConsoleUser, ...]

    @field_validator("users")
    @classmethod
    def _names_once(cls, users: tuple[ConsoleUser, ...],
                    info: ValidationInfo) -> tuple[ConsoleUser, ...]:
        seen: set[str] = set()
        for user in users:
            if user.name.lower() in seen:
                raise ValueError(f"user {user.name!r} is named twice (names are compared "
                                 "without case)")
            seen.add(user.name.lower())
        return users


def load_users(path: Path) -> UsersFile:
    return load_model(path, UsersFile)


def write_users(path: Path, users: UsersFile) -> None:
    """Replace ``path`` with ``users`` atomically, readable by its owner only (the hashes are
    not the passwords, but a stolen hash can be attacked offline)."""
    document = {"users": [{"name": u.name, "role": u.role.name,
                           "password_hash": u.password_hash} for u in users.users]}
    text = ("# Ops console users (docs/console.md). Roles: viewer < operator < admin.\n"
            "# Written by `gateway console user add NAME --role ROLE`.\n"
            + yaml.safe_dump(document, sort_keys=False, default_style=None))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def with_user(users: UsersFile | None, user: ConsoleUser) -> UsersFile:
    """``users`` with ``user`` added, or in place of the one of that name (any case)."""
    kept = [] if users is None else [u for u in users.users if u.name.lower() != user.name.lower()]
    return UsersFile(users=(*kept, user))
