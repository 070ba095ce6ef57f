"""``gateway console user add`` and ``gateway demo console-admin``: the console's users file
(docs/console.md) written from the command line.  A password is read from a prompt (twice)
or, when stdin is not a terminal, from its first line: never from the command line, where
``ps`` and the shell's history would show it."""

from __future__ import annotations

import getpass
import secrets
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from gateway.config.console_users import (
    ConsoleUser,
    Role,
    UsersFile,
    load_users,
    with_user,
    write_users,
)
from gateway.errors import ConfigError
from gateway.security.passwords import MAX_PASSWORD_CHARS, HashingCost, hash_password

#: NIST SP 800-63B section 3.1.1.2 asks for at least 15 characters of a password that is
#: the only factor; the console has no second one.
MIN_PASSWORD_CHARS = 15
#: The demo's administrators: the second approves the first's routing changes (maker-checker).
DEMO_ADMINS = ("admin", "admin2")


def read_password(stdin: TextIO, interactive: bool) -> str:
    if interactive:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ; nothing was changed")
    else:
        password = stdin.readline().removesuffix("\n").removesuffix("\r")
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ConfigError(f"a console password has {MIN_PASSWORD_CHARS} to "
                          f"{MAX_PASSWORD_CHARS} characters; nothing was changed")
    return password


def add_user(path: Path, name: str, role: Role, password: str, cost: HashingCost) -> bool:
    """Add ``name`` to the users file, or set its role and password anew (a rehash at the
    configured cost).  True when the user is new."""
    users = load_users(path) if path.exists() else None
    known = users is not None and any(u.name.lower() == name.lower() for u in users.users)
    user = _user(name, role, hash_password(password, cost))
    write_users(path, with_user(users, user))
    return not known


def ensure_demo_admins(path: Path, cost: HashingCost, out: TextIO) -> bool:
    """Make the demo's users file with two admins and print their generated passwords, once;
    when the file exists, leave it alone and print nothing secret."""
    if path.exists():
        names = ", ".join(u.name for u in load_users(path).users)
        print(f"kept the console users in {path} ({names}); their passwords were printed "
              "when it was made (`gateway console user add NAME --role admin` sets one anew)",
              file=out)
        return False
    passwords = {name: secrets.token_urlsafe(15) for name in DEMO_ADMINS}
    write_users(path, UsersFile(users=tuple(
        _user(name, Role.admin, hash_password(password, cost))
        for name, password in passwords.items())))
    print(f"created the console users in {path}; their passwords are shown this once, "
          "and stored only as argon2id hashes:", file=out)
    for name, password in passwords.items():
        print(f"  {name:<8} {password}", file=out)
    return True


def _user(name: str, role: Role, password_hash: str) -> ConsoleUser:
    try:
        return ConsoleUser.model_validate({"name": name, "role": role.name,
                                           "password_hash": password_hash})
    except ValidationError as exc:
        raise ConfigError(f"user name {name!r}: 1 to 64 letters, digits and . _ @ -, "
                          "starting with a letter or digit; nothing was changed") from exc
