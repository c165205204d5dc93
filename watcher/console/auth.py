"""Console accounts: salted password hashes, server-side sessions, the sign-in throttle, CSRF tokens.

Passwords are hashed with scrypt (stdlib, memory-hard) and a random salt per user; checks compare
in constant time, and an unknown user name costs the same hash as a known one, so timing does not
tell which names exist. Everything here is free of the web framework so the CLI can use it too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Insert, delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from watcher.models import ConsoleSession, LoginFailures, User, utcnow
from watcher.store import audit
from watcher.visibility import OFFICER, REVIEWER, ROLES
from watcher.vocabulary import AuditAction, Language

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD_LENGTH = 10

# scrypt cost: n=2**14, r=8 takes ~16 MiB and some tens of milliseconds: slow for a guesser,
# quick for a person signing in. The parameters are stored with each hash, so they can be raised.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
_SALT_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(expected)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


# Compared against when the user name is unknown, so that case takes as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user cannot be created as asked (bad name, role, officer, or the name is taken)."""


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    officer_id: str | None = None,
    language: Language | None = None,
    actor: str,
) -> User:
    """Add a user, recorded in the audit log; raises :class:`UserError` for what the caller can fix."""
    if USERNAME.fullmatch(username) is None:
        raise UserError(f"user name {username!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise UserError(f"role {role!r}: expected officer or reviewer")
    if role == OFFICER and not officer_id:
        raise UserError("an officer needs --officer ID (an [officers.<id>] table of the config)")
    if role == REVIEWER and officer_id:
        raise UserError("--officer applies to role officer only; a reviewer sees every borrower")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not display_name.strip():
        raise UserError("the display name must not be empty")
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        role=role,
        officer_id=officer_id,
        language=language,
    )
    session.add(user)
    session.flush()
    audit(
        session,
        actor=actor,
        action=AuditAction.USER_ADDED,
        subject_type="console_user",
        subject_id=username,
        detail={"role": role, "officer_id": officer_id or "", "display_name": user.display_name},
    )
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def check_credentials(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (same cost either way)."""
    user = find_user(session, username)
    if user is None or not user.active:
        verify_password(password, _DUMMY_HASH)
        return None
    return user if verify_password(password, user.password_hash) else None


NAME, ADDRESS = "name", "address"
"""The two things sign-in failures are counted by: the user name as typed, and the client address."""
_KEY_CHARS = 128


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time this project stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    """After ``max_failures_per_name`` wrong passwords for one name, or ``max_failures_per_address``
    from one client address (whatever names it tried), refuse sign-ins for ``lockout``.

    The counts live in the database (:class:`watcher.models.LoginFailures`), so they hold across
    console processes and instances and survive restarts. A count is forgotten ``memory`` after its
    last failure; a right password clears its name's count but not its address's, so a guesser who
    owns one account cannot reset the address count with it. Names are keyed as typed (case-folded),
    so unknown names are throttled too and do not reveal themselves.
    """

    max_failures_per_name: int = 5
    max_failures_per_address: int = 10
    lockout: timedelta = timedelta(seconds=60)
    memory: timedelta = timedelta(minutes=15)

    @staticmethod
    def _keys(username: str, address: str | None) -> list[tuple[str, str]]:
        keys = [(NAME, username.strip().casefold()[:_KEY_CHARS])]
        if address:
            keys.append((ADDRESS, address[:_KEY_CHARS]))
        return keys

    def locked_for(self, session: Session, *, username: str, address: str | None, now: datetime) -> float:
        """Seconds until this name from this address may try again; 0 when it may try now."""
        wait = 0.0
        for kind, key in self._keys(username, address):
            entry = session.get(LoginFailures, (kind, key))
            if entry is not None and entry.locked_until is not None:
                wait = max(wait, (_aware(entry.locked_until) - now).total_seconds())
        return wait

    def failed(self, session: Session, *, username: str, address: str | None, now: datetime) -> list[str]:
        """Record a wrong password; returns the kinds (name, address) whose lockout it starts."""
        session.exec(
            delete(LoginFailures).where(
                col(LoginFailures.last_failure_at) < now - self.memory,
                col(LoginFailures.locked_until).is_(None) | (col(LoginFailures.locked_until) < now),
            )
        )
        started: list[str] = []
        limits = {NAME: self.max_failures_per_name, ADDRESS: self.max_failures_per_address}
        for kind, key in self._keys(username, address):
            entry = _entry_for_update(session, kind, key)
            expired = entry.locked_until is not None and _aware(entry.locked_until) <= now
            last = entry.last_failure_at
            forgotten = last is not None and _aware(last) < now - self.memory
            if expired or forgotten:
                entry.failures, entry.locked_until = 0, None
            entry.failures += 1
            entry.last_failure_at = now
            if entry.failures >= limits[kind]:
                entry.failures, entry.locked_until = 0, now + self.lockout
                started.append(kind)
            session.add(entry)
        return started

    def succeeded(self, session: Session, *, username: str) -> None:
        session.exec(
            delete(LoginFailures).where(
                col(LoginFailures.kind) == NAME,
                col(LoginFailures.key) == username.strip().casefold()[:_KEY_CHARS],
            )
        )


def _entry_for_update(session: Session, kind: str, key: str) -> LoginFailures:
    """The counter row, created if missing and locked until commit, so concurrent instances add up."""
    row = {"kind": kind, "key": key, "failures": 0}
    missing_only: Insert
    if session.get_bind().dialect.name == "postgresql":
        missing_only = postgresql.insert(LoginFailures).values(row).on_conflict_do_nothing()
    else:
        missing_only = sqlite.insert(LoginFailures).values(row).on_conflict_do_nothing()
    session.exec(missing_only)
    return session.exec(
        select(LoginFailures)
        .where(LoginFailures.kind == kind, LoginFailures.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


# -- server-side sessions -------------------------------------------------------------------------


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def _session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start_session(session: Session, user: User, *, via: str, now: datetime, hours: int) -> str:
    """A new session for ``user``; returns its opaque id, the only thing the browser's cookie carries."""
    assert user.id is not None, "only a stored user signs in"
    session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) < now))
    session_id = new_session_id()
    session.add(
        ConsoleSession(
            id_hash=_session_digest(session_id),
            user_id=user.id,
            via=via[:80],
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return session_id


def find_session(session: Session, session_id: str, *, now: datetime) -> tuple[ConsoleSession, User] | None:
    """The live session with this id and its active user; None once it ended or expired, or the user
    was disabled."""
    row = session.get(ConsoleSession, _session_digest(session_id))
    if row is None or _aware(row.expires_at) <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return row, user


def end_session(session: Session, session_id: str) -> None:
    session.exec(delete(ConsoleSession).where(col(ConsoleSession.id_hash) == _session_digest(session_id)))


def end_sessions_of(session: Session, user: User) -> int:
    """Sign ``user`` out everywhere; returns how many sessions ended."""
    ended = session.exec(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user.id))
    return ended.rowcount or 0


def session_counts(session: Session, *, now: datetime) -> dict[int, int]:
    """Live sessions per user id."""
    rows = session.exec(
        select(ConsoleSession.user_id, func.count())
        .where(col(ConsoleSession.expires_at) > now)
        .group_by(col(ConsoleSession.user_id))
    )
    return dict(rows.all())


def set_flash(session: Session, session_id: str, message: str) -> None:
    row = session.get(ConsoleSession, _session_digest(session_id))
    if row is not None:
        row.flash = message
        session.add(row)


def take_flash(session: Session, session_id: str) -> str | None:
    """The session's one-time message, cleared as it is read."""
    row = session.get(ConsoleSession, _session_digest(session_id))
    if row is None or row.flash is None:
        return None
    message, row.flash = row.flash, None
    session.add(row)
    return message


def csrf_token_for(secret: str, session_id: str) -> str:
    """The CSRF token of a session: derived from its id with the console's key, so it is stored nowhere
    and a page of one session never validates a POST of another."""
    mac = hmac.new(secret.encode("utf-8"), b"csrf\x00" + session_id.encode("utf-8"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")


# -- managing users (watcher users ...) -------------------------------------------------------------


def _existing(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no console user {username!r} (see watcher users list)")
    return user


def set_active(session: Session, username: str, *, active: bool, actor: str) -> tuple[User, int]:
    """Enable or disable a user; disabling ends every session of theirs at once. Returns (user, ended)."""
    user = _existing(session, username)
    user.active = active
    session.add(user)
    ended = 0 if active else end_sessions_of(session, user)
    audit(
        session,
        actor=actor,
        action=AuditAction.USER_ENABLED if active else AuditAction.USER_DISABLED,
        subject_type="console_user",
        subject_id=username,
        detail={"sessions_ended": ended} if not active else {},
    )
    return user, ended


def set_password(session: Session, username: str, password: str, *, actor: str) -> tuple[User, int]:
    """A new password; every session of the user ends, so a stolen cookie dies with the old password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    user = _existing(session, username)
    user.password_hash = hash_password(password)
    session.add(user)
    ended = end_sessions_of(session, user)
    audit(
        session,
        actor=actor,
        action=AuditAction.PASSWORD_CHANGED,
        subject_type="console_user",
        subject_id=username,
        detail={"sessions_ended": ended},
    )
    return user, ended


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.username))))


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def record_sign_in(session: Session, user: User, *, via: str) -> None:
    audit(
        session,
        actor=user.display_name,
        action=AuditAction.SIGNED_IN,
        subject_type="console_user",
        subject_id=user.username,
        detail={"via": via},
        at=utcnow(),
    )


def record_lockout(session: Session, kind: str, key: str, *, seconds: float) -> None:
    """Audit a lockout: of a user name (``kind`` name) or of a client address (``kind`` address)."""
    audit(
        session,
        actor=key[:128] or "(empty)",
        action=AuditAction.LOCKED_OUT,
        subject_type="console_user" if kind == NAME else "console_client",
        subject_id=key[:64] or "(empty)",
        detail={"seconds": int(seconds)},
        at=utcnow(),
    )
