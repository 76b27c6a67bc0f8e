"""Without a mail server (no EMAIL_HOST) there are no password-reset pages and no link to them, over real
HTTP: a reset page would promise an email nobody sends."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/accounts/password_reset/", "/accounts/password_reset/done/",
                                  "/accounts/reset/MQ/set-password/", "/accounts/reset/done/"])  # fmt: skip
def test_password_reset_pages_are_not_found_without_a_mail_server(live_server, path, settings):
    assert not settings.EMAIL_HOST
    assert requests.get(live_server.url + path, timeout=30, allow_redirects=False).status_code == 404


def test_the_login_pages_link_no_password_reset(live_server):
    for path in ("/accounts/login/", "/admin/login/"):
        page = requests.get(live_server.url + path, timeout=30).text
        assert "password_reset" not in page and "Forgotten your password" not in page, path
