"""quantweb settings, driven by the environment so the same code runs in dev, CI and production.

DATABASE_URL (default: SQLite under var/), REDIS_URL, MEDIA_ROOT, SECRET_KEY, DEBUG, QUANTWEB_QUEUE,
QUANTWEB_DATASET_ROOTS (server folders users may register as datasets, separated by ":").

Under pytest (which sets PYTEST_VERSION) the default database is this machine's PostgreSQL
(pytest-django creates ``test_test`` from it) and the RQ queue gets a name of its own per test session, so
tests run against the real services without cross-talk; DATABASE_URL / QUANTWEB_QUEUE still win.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("QUANTWEB_VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-set-SECRET_KEY-in-production")
DEBUG = os.environ.get("DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "ninja",  # serves the API docs' Swagger UI from its own static files, not a CDN
    "conversions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "quantweb.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "quantweb.wsgi.application"

TESTING = "PYTEST_VERSION" in os.environ
_DEFAULT_DATABASE_URL = (
    "postgres://postgres@127.0.0.1:5432/test" if TESTING else f"sqlite:///{VAR_DIR / 'quantweb.sqlite3'}"
)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", _DEFAULT_DATABASE_URL),
        conn_max_age=0 if TESTING else 60,
    )
}
if TESTING:
    # One test database per pytest session, so developers' concurrent runs on one PostgreSQL do not drop
    # each other's; worker processes get the real name through conversions.testing.worker_environment().
    DATABASES["default"]["TEST"] = {"NAME": f"test_quantweb_{os.getpid()}"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUE_NAME = os.environ.get("QUANTWEB_QUEUE", f"conversions-test-{os.getpid()}" if TESTING else "conversions")
RQ_QUEUES = {
    RQ_QUEUE_NAME: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}

# Runs: a worker stamps its run's heartbeat every few seconds; a run silent for longer than the timeout
# (or whose process is gone, on the same host) is marked failed by the reaper.
QUANTWEB_RUN_HEARTBEAT_SECONDS = float(os.environ.get("QUANTWEB_RUN_HEARTBEAT_SECONDS", "10"))
QUANTWEB_RUN_HEARTBEAT_TIMEOUT = float(os.environ.get("QUANTWEB_RUN_HEARTBEAT_TIMEOUT", "120"))
QUANTWEB_RUN_TIMEOUT = int(os.environ.get("QUANTWEB_RUN_TIMEOUT", "3600"))

# Uploads: checkpoint and dataset archive sizes, and what an archive may extract to: the smallest of the
# expanded-size limit, the expansion ratio, the user's quota left and the free disk less a reserve.
MB = 1024 * 1024
QUANTWEB_MAX_CHECKPOINT_UPLOAD = int(os.environ.get("QUANTWEB_MAX_CHECKPOINT_UPLOAD_MB", "1024")) * MB
QUANTWEB_MAX_ARCHITECTURE_UPLOAD = 1 * MB
QUANTWEB_MAX_DATASET_UPLOAD = int(os.environ.get("QUANTWEB_MAX_DATASET_UPLOAD_MB", "1024")) * MB
QUANTWEB_ARCHIVE_MAX_FILES = int(os.environ.get("QUANTWEB_ARCHIVE_MAX_FILES", "100000"))
QUANTWEB_ARCHIVE_MAX_BYTES = int(os.environ.get("QUANTWEB_ARCHIVE_MAX_MB", "2048")) * MB
QUANTWEB_ARCHIVE_MAX_RATIO = int(os.environ.get("QUANTWEB_ARCHIVE_MAX_RATIO", "20"))
QUANTWEB_USER_UPLOAD_QUOTA = int(os.environ.get("QUANTWEB_USER_UPLOAD_QUOTA_MB", "10240")) * MB
QUANTWEB_MIN_FREE_DISK = int(os.environ.get("QUANTWEB_MIN_FREE_DISK_MB", "2048")) * MB
FILE_UPLOAD_TEMP_DIR = None  # large uploads stream to the system temp dir, never into memory
# Server folders that may be registered as datasets without uploading them (staff decide, here).
QUANTWEB_DATASET_ROOTS = [
    Path(p) for p in os.environ.get("QUANTWEB_DATASET_ROOTS", str(BASE_DIR / "demo")).split(os.pathsep) if p
]
QUANTWEB_THUMBNAILS = 8
QUANTWEB_API_RATE = os.environ.get("QUANTWEB_API_RATE", "600/m")  # API requests per user, in the cache

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"quantweb": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
