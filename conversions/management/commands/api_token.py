"""Prints a new API token for a user (shown once), or revokes all of theirs with ``--revoke``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from conversions.models import ApiToken


class Command(BaseCommand):
    help = "Print a new API token for USERNAME (for Authorization: Bearer); --revoke revokes all of theirs."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for, e.g. the CI job's name.")
        parser.add_argument("--revoke", action="store_true", help="Revoke every active token of USERNAME.")

    def handle(self, *args, username: str, name: str, revoke: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}; create one with: manage.py createsuperuser (or the admin).")
        if revoke:
            tokens = list(user.api_tokens.active())
            revoked = sum(t.revoke() for t in tokens)
            self.stdout.write(f"Revoked {revoked} token{'s' if revoked != 1 else ''} of {username}.")
            return
        _, token = ApiToken.issue(user, name=name or "manage.py api_token")
        self.stdout.write(token)
