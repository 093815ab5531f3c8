"""Users, roles and what each role may do; passwords hashed with argon2.

The table `ROLE_PERMISSIONS` is the one place that says who may do what: the web application
asks `can(role, permission)` and never compares role names itself. A user's `clearance` flag is
kept in the catalog: with the admin role it decides who reads sealed passages (archive.seals).
"""
from __future__ import annotations

import re
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .catalog import User
from .errors import InvalidInput, NotFound, PermissionDenied

ROLES = ("admin", "archivist", "inspector", "handler")
ROLE_LABELS = {"admin": "Quản trị", "archivist": "Cán bộ lưu trữ", "inspector": "Thanh tra",
               "handler": "Cán bộ xử lý đơn"}

PERMISSIONS = {
    "search": "find sessions by words spoken and by metadata",
    "view": "open a session: metadata and transcript",
    "play": "play or stream a recording's access copy",
    "download": "download a transcript file",
    "upload": "upload recordings for ingest",
    "jobs": "watch ingest jobs",
    "audit": "read the audit log",
    "users": "add and disable users",
    "note": "add timestamped notes to a recording and edit one's own",
    "seal": "seal and unseal spans of a recording",
    "retention": "set retention and legal hold, propose and approve deletions",
    "access_report": "see who viewed, played, exported or cited a session",
    "correct": "correct a transcript's text and speaker labels (saved as a new version)",
    "cite": "make citations of passages and check citation codes",
    "preservation": "see the backups made, the fixity runs and the objects that failed their check",
}

_READERS = frozenset({"search", "view", "play", "download", "cite"})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "archivist": _READERS | {"upload", "jobs", "correct", "note", "seal", "retention", "access_report",
                             "preservation"},
    "inspector": _READERS | {"note"},
    "handler": _READERS | {"note", "correct"},
}

MIN_PASSWORD = 8
NAME_RE = re.compile(r"^[\w.@-]{1,64}$")

_hasher = PasswordHasher()
# Compared against when the user does not exist, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def can(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def require(user, permission: str, doing: str) -> None:
    """Raise PermissionDenied unless `user` (a catalog User or anything with `.role`) may do it."""
    if getattr(user, "disabled", 0) or not can(getattr(user, "role", ""), permission):
        raise PermissionDenied(f"User '{getattr(user, 'name', user)}' may not {doing}; "
                               "ask an archivist or an admin.")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"Unknown role '{role}'; use one of: {', '.join(ROLES)}.")
    return role


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not NAME_RE.match(name):
        raise InvalidInput("A user name is 1 to 64 letters, digits, '.', '_', '@' or '-', without spaces.")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD} characters; choose a longer one.")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def generate_password() -> str:
    """A random password to hand out once (the demo's admin)."""
    return secrets.token_urlsafe(12)


def add_user(archive, name: str, role: str, password: str, clearance: bool = False,
             actor: str = "system") -> User:
    name, role = check_name(name), check_role(role)
    user = archive.catalog.add_user(name, role, hash_password(password), clearance)
    archive.audit(actor, "user.add", target=name, role=role, clearance=bool(clearance))
    return user


def disable_user(archive, name: str, actor: str = "system") -> User:
    user = archive.catalog.update_user(name, disabled=1)
    archive.audit(actor, "user.disable", target=name)
    return user


def authenticate(archive, name: str, password: str) -> User | None:
    """The user if the name and password match and the user is not disabled; else None."""
    try:
        user = archive.catalog.get_user(unicodedata.normalize("NFC", (name or "").strip()))
    except NotFound:
        user = None
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        archive.catalog.update_user(user.name, password_hash=_hasher.hash(password))
    return user
