"""quantweb settings, driven by the environment so the same code runs in dev, CI and production.

DATABASE_URL (default: SQLite under var/), REDIS_URL, MEDIA_ROOT, SECRET_KEY, DEBUG, QUANTWEB_QUEUE,
QUANTWEB_DATASET_ROOTS (server folders users may register as datasets, separated by ":"), QUANTWEB_TRUSTED_PROXIES
(reverse proxies in front, for the client's address), the upload limits (QUANTWEB_MAX_*_MB), EMAIL_HOST (offers
password resets). The README's production section lists them with what to set on the proxy.

DEBUG is off unless DEBUG=1. Outside DEBUG, SECRET_KEY must be set, except for the embedded default
(``scripts/start_portal.sh`` sets QUANTWEB_EMBEDDED=1), which generates one into var/secret_key on first
start. QUANTWEB_HTTPS=1 (behind a TLS-terminating proxy that sets X-Forwarded-Proto) turns on the secure
cookies, HSTS and the HTTPS redirect that ``manage.py check --deploy`` asks for: the README's production
settings.

Under pytest (which sets PYTEST_VERSION) the default database is this machine's PostgreSQL
(pytest-django creates ``test_test`` from it) and the RQ queue gets a name of its own per test session, so
tests run against the real services without cross-talk; DATABASE_URL / QUANTWEB_QUEUE still win.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

from quantweb.filemodes import keep_private

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("QUANTWEB_VAR_DIR", BASE_DIR / "var"))
TESTING = "PYTEST_VERSION" in os.environ

DEBUG = os.environ.get("DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")


SECRET_KEY_MISSING = (
    "SECRET_KEY is not set. In production set it to a long random string (e.g. python -c 'import secrets; "
    "print(secrets.token_urlsafe(50))'); scripts/start_portal.sh generates one into var/ for the embedded default."
)


def _secret_key() -> str:
    """SECRET_KEY from the environment; for the embedded default, DEBUG and tests, one generated once into
    var/secret_key (readable by its owner only). Otherwise empty: commands that sign nothing (workers, the
    CLI) still run, and the web process refuses to start (``quantweb.wsgi``) with ``SECRET_KEY_MISSING``."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    if not (DEBUG or TESTING or os.environ.get("QUANTWEB_EMBEDDED") == "1"):
        return ""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of the portal wrote it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()

# Behind a TLS proxy (QUANTWEB_HTTPS=1): what `manage.py check --deploy` asks of a production site.
HTTPS = os.environ.get("QUANTWEB_HTTPS", "0") == "1"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("QUANTWEB_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "ninja",  # serves the API docs' Swagger UI from its own static files, not a CDN
    "axes",
    "conversions",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # login throttling: refuses before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("QUANTWEB_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("QUANTWEB_LOGIN_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Counted in the shared cache (Redis), so every web process sees every failure, by the real client address.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CLIENT_IP_CALLABLE = "conversions.client_address.client_ip"
# How many reverse proxies in front of the web process append to X-Forwarded-For (nginx alone: 1). Only that
# many entries from the right are believed; 0 (no proxy) uses the socket's address.
QUANTWEB_TRUSTED_PROXIES = int(os.environ.get("QUANTWEB_TRUSTED_PROXIES", "0"))

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
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

_DEFAULT_DATABASE_URL = (
    "postgres://postgres@127.0.0.1:5432/test" if TESTING else f"sqlite:///{VAR_DIR / 'quantweb.sqlite3'}"
)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", _DEFAULT_DATABASE_URL),
        conn_max_age=0 if TESTING else 60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, workers and the reaper share one SQLite file: WAL lets readers run beside the writer, the busy
    # timeout makes a writer wait for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
_SQLITE_FILES = (
    [Path(f"{DATABASES['default']['NAME']}{suffix}") for suffix in ("", "-wal", "-shm")]
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else []
)
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
# WhiteNoise serves static files from the web process (gunicorn), compressed and with hashed names once
# `manage.py collectstatic` has run; before it (runserver with DEBUG off) the plain names from the finders, with
# a warning saying what to run (quantweb.static_storage). Under DEBUG or tests the plain finder storage is used.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG or TESTING  # no collectstatic needed while developing
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request about a missing one
except OSError:  # a read-only install: collectstatic will say so
    pass
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "quantweb.static_storage.CollectedOrFoundStorage"
    },
}

MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
# Owner-only, so the checkpoint sandbox's user (and anyone else on the machine) reads no upload, no database
# and no secret key: a umask of 0o077 for every process of the portal, and the existing folders and SQLite file
# made private (quantweb.filemodes). Uploads are stored with the same modes.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
keep_private([VAR_DIR, MEDIA_ROOT, *_SQLITE_FILES])

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Mail: only with EMAIL_HOST set are password-reset pages offered (they would mail nobody otherwise).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "1") == "1"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "quantweb@localhost")
QUANTWEB_PASSWORD_RESET = bool(EMAIL_HOST)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# The cache every web process shares: login failures and the API rate limit are counted here. Under pytest
# each session's keys have a prefix of their own.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("QUANTWEB_CACHE_PREFIX", f"quantweb-test-{os.getpid()}" if TESTING else "quantweb"),
    }
}
RQ_QUEUE_NAME = os.environ.get("QUANTWEB_QUEUE", f"conversions-test-{os.getpid()}" if TESTING else "conversions")
RQ_QUEUES = {
    RQ_QUEUE_NAME: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}

# Runs: a worker stamps its run's heartbeat every few seconds; a run silent for longer than the timeout
# (or whose process is gone, on the same host) is marked failed by the reaper.
QUANTWEB_RUN_HEARTBEAT_SECONDS = float(os.environ.get("QUANTWEB_RUN_HEARTBEAT_SECONDS", "10"))
QUANTWEB_RUN_HEARTBEAT_TIMEOUT = float(os.environ.get("QUANTWEB_RUN_HEARTBEAT_TIMEOUT", "120"))
# Runs one user may have queued or running at once (0: no limit); more are refused with a worded message.
QUANTWEB_MAX_QUEUED_RUNS = int(os.environ.get("QUANTWEB_MAX_QUEUED_RUNS", "10"))
QUANTWEB_RUN_TIMEOUT = int(os.environ.get("QUANTWEB_RUN_TIMEOUT", "3600"))

# Uploads: checkpoint and dataset archive sizes, and what an archive may extract to: the smallest of the
# expanded-size limit, the expansion ratio, the user's quota left and the free disk less a reserve.
MB = 1024 * 1024
QUANTWEB_MAX_CHECKPOINT_UPLOAD = int(os.environ.get("QUANTWEB_MAX_CHECKPOINT_UPLOAD_MB", "1024")) * MB
QUANTWEB_MAX_ARCHITECTURE_UPLOAD = 1 * MB
QUANTWEB_MAX_LABELS_UPLOAD = 1 * MB
QUANTWEB_MAX_DATASET_UPLOAD = int(os.environ.get("QUANTWEB_MAX_DATASET_UPLOAD_MB", "1024")) * MB
QUANTWEB_ARCHIVE_MAX_FILES = int(os.environ.get("QUANTWEB_ARCHIVE_MAX_FILES", "100000"))
QUANTWEB_ARCHIVE_MAX_BYTES = int(os.environ.get("QUANTWEB_ARCHIVE_MAX_MB", "2048")) * MB
QUANTWEB_ARCHIVE_MAX_RATIO = int(os.environ.get("QUANTWEB_ARCHIVE_MAX_RATIO", "20"))
# Archives larger than this are extracted and registered by an RQ job (with progress), not in the request.
QUANTWEB_ARCHIVE_INLINE_MAX = int(os.environ.get("QUANTWEB_ARCHIVE_INLINE_MAX_MB", "32")) * MB
QUANTWEB_USER_UPLOAD_QUOTA = int(os.environ.get("QUANTWEB_USER_UPLOAD_QUOTA_MB", "10240")) * MB
QUANTWEB_MIN_FREE_DISK = int(os.environ.get("QUANTWEB_MIN_FREE_DISK_MB", "2048")) * MB
FILE_UPLOAD_TEMP_DIR = os.environ.get("QUANTWEB_UPLOAD_TEMP_DIR") or None  # large uploads stream here, not to memory
# The most one request may carry: the largest file limit and room for the small files and fields beside it.
# The reverse proxy should refuse a larger body first (nginx: client_max_body_size, the README says how much).
QUANTWEB_MAX_UPLOAD_BODY = int(os.environ.get("QUANTWEB_MAX_UPLOAD_BODY_MB", "0")) * MB or (
    max(QUANTWEB_MAX_CHECKPOINT_UPLOAD, QUANTWEB_MAX_DATASET_UPLOAD) + 4 * MB
)
# Refused while they stream (conversions.upload_guard): no user or token, a body or a file over its limit.
FILE_UPLOAD_HANDLERS = [
    "conversions.upload_guard.GuardedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
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
