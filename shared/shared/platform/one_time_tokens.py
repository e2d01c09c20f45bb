"""Secrets sent in emailed links: single use, expiring, stored only as a hash.

A link in an email (confirm a sign-up, sign in, confirm a subscription, unsubscribe)
carries a random token as its `token` query parameter. The link leads to a page; the page
spends the token with a POST — never the GET, because mail scanners fetch links before
people do. The service that issues the token keeps only its SHA-256 (a leaked table
reveals no usable link), with its purpose, subject and expiry; spending it is one atomic
UPDATE, so a token works once even when two requests race.

Every service has the `one_time_tokens` table (a platform migration); its unit of work
binds `PostgresOneTimeTokens`, unit tests use `InMemoryOneTimeTokens`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.errors import InvalidRequest
from shared.platform.database import DbConnection

# 256 bits of randomness, URL-safe.
TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRejected(InvalidRequest):
    """Unknown, expired, already used or meant for something else: one answer for all, so
    the answer reveals nothing about which."""

    code = "invalid_token"

    def __init__(self) -> None:
        super().__init__("this link is invalid, expired or already used")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


class OneTimeTokens(Protocol):
    async def issue(
        self, *, purpose: str, subject: str, ttl: timedelta, now: datetime
    ) -> IssuedToken:
        """A new token for `subject` (e.g. a volunteer id), valid for `ttl`."""
        ...

    async def spend(self, token: str, *, purpose: str, now: datetime) -> str:
        """The subject of a valid token of `purpose`, which is then used up; else
        `TokenRejected`."""
        ...

    async def revoke(self, *, purpose: str, subject: str) -> None:
        """Use up every open token of `purpose` for `subject` (e.g. after a withdrawal)."""
        ...


class PostgresOneTimeTokens:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def issue(
        self, *, purpose: str, subject: str, ttl: timedelta, now: datetime
    ) -> IssuedToken:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = now + ttl
        await self._conn.execute(
            "INSERT INTO one_time_tokens (token_hash, purpose, subject, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            token_hash(token),
            purpose,
            subject,
            expires_at,
        )
        return IssuedToken(token=token, expires_at=expires_at)

    async def spend(self, token: str, *, purpose: str, now: datetime) -> str:
        subject: str | None = await self._conn.fetchval(
            "UPDATE one_time_tokens SET spent_at = $3"
            " WHERE token_hash = $1 AND purpose = $2 AND spent_at IS NULL AND expires_at > $3"
            " RETURNING subject",
            token_hash(token),
            purpose,
            now,
        )
        if subject is None:
            raise TokenRejected()
        return subject

    async def revoke(self, *, purpose: str, subject: str) -> None:
        await self._conn.execute(
            "UPDATE one_time_tokens SET spent_at = now()"
            " WHERE purpose = $1 AND subject = $2 AND spent_at IS NULL",
            purpose,
            subject,
        )


@dataclass
class _Stored:
    purpose: str
    subject: str
    expires_at: datetime
    spent: bool = False


class InMemoryOneTimeTokens:
    """The same rules on a dictionary, for fake units of work in unit tests."""

    def __init__(self) -> None:
        self.stored: dict[str, _Stored] = {}

    async def issue(
        self, *, purpose: str, subject: str, ttl: timedelta, now: datetime
    ) -> IssuedToken:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.stored[token_hash(token)] = _Stored(purpose, subject, now + ttl)
        return IssuedToken(token=token, expires_at=now + ttl)

    async def spend(self, token: str, *, purpose: str, now: datetime) -> str:
        stored = self.stored.get(token_hash(token))
        if stored is None or stored.spent or stored.purpose != purpose or stored.expires_at <= now:
            raise TokenRejected()
        stored.spent = True
        return stored.subject

    async def revoke(self, *, purpose: str, subject: str) -> None:
        for stored in self.stored.values():
            if stored.purpose == purpose and stored.subject == subject:
                stored.spent = True
