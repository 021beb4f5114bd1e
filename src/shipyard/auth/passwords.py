"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so that a wrong username costs as much
    time as a wrong password and response times do not reveal which names exist.
    Made on first use: hashing costs ~0.1 s that every CLI start would otherwise pay."""
    return _HASHER.hash("shipyard-no-such-user")


def hash_password(password: str) -> str:
    """An argon2id hash (salted; the encoded string carries its own parameters)."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; False when there is no hash."""
    if stored_hash is None:
        try:
            _HASHER.verify(_dummy_hash(), password)
        except VerificationError:
            pass
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
