"""The web process's entry (gunicorn quantweb.wsgi). It refuses to start without a SECRET_KEY outside DEBUG."""

import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantweb.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (configured by get_wsgi_application)

try:
    settings.SECRET_KEY
except ImproperlyConfigured:
    raise ImproperlyConfigured(settings.SECRET_KEY_MISSING) from None
