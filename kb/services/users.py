"""Users, passwords and the principal a logged-in person acts as.

Why argon2id (argon2-cffi's defaults): the database may be copied to a laptop or a backup, and a
slow memory-hard hash keeps leaked hashes expensive to crack. Why a dummy verification for unknown
users: answering "no such user" faster than "wrong password" would let anyone enumerate usernames
by timing the login form.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, delete, select

from kb.models import Partnership, RevokedSession, Role, User, utcnow
from kb.services import audit
from kb.services.access import Principal
from kb.services.reviews import NotFound

MIN_PASSWORD_LENGTH = 12  # ASVS 2.1.1
MAX_PASSWORD_LENGTH = 1024  # argon2 copes, but a megabyte "password" is a denial of service
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash("not-a-real-password-just-for-timing")


class UserError(ValueError):
    """A user could not be created as asked (bad name, weak password, duplicate...)."""


class UnknownUser(NotFound):
    """No active user by that name (a NotFound, so callers' 404 / error paths apply)."""


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: "Alice" and "alice" are the same person."""
    return username.strip().lower()


def validate_username(username: str) -> str:
    """The normalised username, or UserError: 3–64 of a–z 0–9 . _ - (no spaces, no markup)."""
    name = normalise_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise UserError(
            "username must be 3-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def validate_password(password: str) -> None:
    """Length is the rule that matters (NIST SP 800-63B); composition rules are not enforced."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    validate_password(password)
    return _hasher.hash(password)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    partnership: str | None = None,
    actor: Principal | None = None,
) -> User:
    """Create a user; panel members must belong to a partnership (its reviews are theirs).

    The partnership is created when it does not exist yet, as ingest does, so users can be set
    up before their partnership's first review arrives.
    """
    name = validate_username(username)
    try:
        role = Role(role)
    except ValueError as exc:
        raise UserError(f"role must be one of {', '.join(r.value for r in Role)}") from exc
    if role == Role.PANEL and not partnership:
        raise UserError("a panel member needs --partnership (the reviews they may see)")
    if find_user(session, name) is not None:
        raise UserError(f"user {name!r} already exists")
    password_hash = hash_password(password)
    partnership_id = _partnership_id(session, partnership) if partnership else None
    user = User(
        username=name, role=role, partnership_id=partnership_id, password_hash=password_hash
    )
    session.add(user)
    session.flush()
    if actor is not None:
        _audit(session, actor, "user.create", user, role=user.role)
    return user


def _audit(session: Session, actor: Principal, action: str, user: User, **detail: object) -> None:
    """An account event (never a password or its hash): who did it, to which account."""
    audit.record(
        session,
        principal=actor,
        action=action,
        object_type="user",
        object_id=user.id,
        detail={"username": user.username, **detail},
    )


def record_login(session: Session, user: User) -> None:
    """Audit a successful login through the login form (not each Basic-authenticated call)."""
    principal = Principal(username=user.username, role=user.role)
    audit.record(
        session, principal=principal, action="login", object_type="user", object_id=user.id
    )


def _partnership_id(session: Session, name: str) -> int:
    found = session.exec(select(Partnership).where(Partnership.name == name.strip())).first()
    if found is None:
        found = Partnership(name=name.strip())
        session.add(found)
        session.flush()
    assert found.id is not None
    return found.id


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with these credentials, else None (same cost either way)."""
    user = find_user(session, username) if username.strip() else None
    if len(password) > MAX_PASSWORD_LENGTH:
        password = password[: MAX_PASSWORD_LENGTH + 1]  # still fails, without hashing megabytes
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made: upgrade it while we know the password.
        user.password_hash = _hasher.hash(password)
        session.add(user)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def find_user(session: Session, username: str) -> User | None:
    """The user called ``username`` (any case), active or not."""
    name = normalise_username(username)
    return session.exec(select(User).where(User.username == name)).first()


def principal_named(session: Session, username: str) -> Principal:
    """The principal of an active user, for ``kb ... --as-user NAME`` (see what they would see)."""
    user = find_user(session, username)
    if user is None or not user.active:
        raise UnknownUser(f"no active user {normalise_username(username)!r}")
    return principal_for(user)


def get_active_user(session: Session, user_id: int) -> User | None:
    """The user behind a session, re-read on every request so role changes and deactivation
    take effect at once rather than when the cookie expires."""
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


def principal_for(user: User) -> Principal:
    """What the access rule needs to know about a user."""
    return Principal(username=user.username, role=user.role, partnership_id=user.partnership_id)


def partnership_name(session: Session, partnership_id: int | None) -> str | None:
    if partnership_id is None:
        return None
    found = session.get(Partnership, partnership_id)
    return found.name if found else None


# --------------------------------------------------------------------------- changing accounts


def change_password(session: Session, *, username: str, current: str, new: str) -> User:
    """A user changing their own password: the current one is required (ASVS 2.1.6).

    Every session of the user ends, since sessions carry a fingerprint of the password hash;
    the web page starts a fresh one for the person who made the change.
    """
    user = find_user(session, username)
    if user is None or not user.active:
        raise UserError("the current password is wrong")
    if not _verify(user.password_hash, current[: MAX_PASSWORD_LENGTH + 1]):
        raise UserError("the current password is wrong")
    if new == current:
        raise UserError("the new password must differ from the current one")
    _saved(session, user, password_hash=hash_password(new))
    principal = principal_for(user)
    audit.record(
        session,
        principal=principal,
        action="password.change",
        object_type="user",
        object_id=user.id,
    )
    return user


def set_password(
    session: Session, *, username: str, password: str, actor: Principal | None = None
) -> User:
    """An administrator resetting someone's password (``kb users passwd``); ends their sessions."""
    user = _saved(session, _existing(session, username), password_hash=hash_password(password))
    if actor is not None:
        _audit(session, actor, "user.password_reset", user)
    return user


def set_active(
    session: Session, *, username: str, active: bool, actor: Principal | None = None
) -> User:
    """Disable (or re-enable) an account: a disabled user's sessions stop on the next request,
    and disabling moves the session epoch on, so enabling again revives none of them."""
    user = _existing(session, username)
    if active:
        _saved(session, user, active=True)
    else:
        _saved(session, user, active=False, session_epoch=user.session_epoch + 1)
    if actor is not None:
        _audit(session, actor, "user.enable" if active else "user.disable", user)
    return user


def _saved(session: Session, user: User, **changes: object) -> User:
    for name, value in changes.items():
        setattr(user, name, value)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    """Every account, active or not, by username."""
    return list(session.exec(select(User).order_by(col(User.username))).all())


def _existing(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no user {normalise_username(username)!r}")
    return user


# --------------------------------------------------------------------------- logged-out sessions


def revoke_session(session: Session, *, sid: str, until: datetime) -> None:
    """Refuse session ``sid`` from now until ``until`` (when its cookie expires anyway)."""
    session.exec(delete(RevokedSession).where(col(RevokedSession.expires_at) < utcnow()))
    session.merge(RevokedSession(sid_hash=_sid_hash(sid), expires_at=until))
    session.flush()


def session_revoked(session: Session, *, sid: str) -> bool:
    """Whether ``sid`` was logged out (on any worker, before any restart)."""
    return session.get(RevokedSession, _sid_hash(sid)) is not None


def _sid_hash(sid: str) -> str:
    """Stored hashed: a database reader cannot learn live-looking session ids from it."""
    return hashlib.sha256(sid.encode()).hexdigest()
