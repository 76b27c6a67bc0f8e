"""Creates a superuser with a random password printed once, unless a superuser already exists."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin user with a random password (printed once) if there is no superuser yet."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        existing = User.objects.filter(is_superuser=True).order_by("id").first()
        if existing:
            self.stdout.write(
                f"Log in as {existing.get_username()} (password set earlier). Forgot it? "
                f"Run: .venv/bin/python manage.py changepassword {existing.get_username()}"
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(f"Created admin user '{username}' with password: {password}")
        self.stdout.write("(shown once; change it with: .venv/bin/python manage.py changepassword " + username + ")")
