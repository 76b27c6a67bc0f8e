"""API tokens: what a CI job sends as ``Authorization: Bearer <token>`` instead of a session cookie.

Only the SHA-256 of a token is stored (a stolen database does not sign anyone in); the first characters
are kept in clear as its ``prefix`` so a person can tell their tokens apart. A token is shown once, when it
is made, and revoking it is a timestamp, never a delete (the list keeps what existed).
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "qw_"
PREFIX_CHARS = len(TOKEN_PREFIX) + 8


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked__isnull=True)


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. the CI job.")
    prefix = models.CharField(max_length=20, help_text="The token's first characters, to tell tokens apart.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token; the token is not stored.")
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked is None

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        """A new token for ``user``: the row and the token itself (shown once, never stored)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(user=user, name=name[:100], prefix=token[:PREFIX_CHARS], digest=token_digest(token))
        return row, token

    @classmethod
    def authenticate(cls, token: str):
        """The active user ``token`` belongs to, or None (unknown, revoked, or the user was deactivated)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        row = cls.objects.active().select_related("user").filter(digest=token_digest(token)).first()
        if row is None or not row.user.is_active:
            return None
        now = timezone.now()
        if row.last_used is None or (now - row.last_used).total_seconds() > 60:  # one write a minute at most
            cls.objects.filter(pk=row.pk).update(last_used=now)
        return row.user

    def revoke(self) -> bool:
        """Revokes the token; False if it was revoked already."""
        now = timezone.now()
        moved = type(self).objects.filter(pk=self.pk, revoked__isnull=True).update(revoked=now)
        if moved:
            self.revoked = now
        return bool(moved)
