"""Passwords: hashed with argon2id (``argon2-cffi``'s defaults, RFC 9106's low-memory profile).

Checking a wrong password costs as much as a right one, and an unknown username is checked
against a dummy hash, so timing does not tell which accounts exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("no such account: this hash only spends the same time")


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why, in Chinese, for the person."""


def check_policy(password: str, username: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"密码至少 {MIN_LENGTH} 个字符")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"密码最多 {MAX_LENGTH} 个字符")
    if len(set(password)) < 4:
        raise WeakPassword("密码太简单：至少用 4 个不同的字符")
    if username and username.lower() in password.lower():
        raise WeakPassword("密码不能包含用户名")


def hash_password(password: str, username: str = "") -> str:
    """The argon2id hash of a password that meets the policy."""
    check_policy(password, username)
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no password set, no account) never matches."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return False
