"""vmprov settings: everything a deployment changes comes from the environment."""

from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from vmprov.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# Required, but not here: without it the web server and the workers refuse to start (system check vmprov.E006, run
# by `manage.py check`, runserver and qcluster), and Django refuses an empty key wherever one is used, while
# `manage.py <command> --help` and commands that sign nothing (ensure_config_structure) still work.
SECRET_KEY = env_str("SECRET_KEY") or ("django-insecure-local-development-only" if DEBUG else "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "inventory",
    "provisioning",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "vmprov.middleware.LoginRequiredMiddleware",
    "vmprov.middleware.PrivateResponsesMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "vmprov.urls"
CSRF_FAILURE_VIEW = "vmprov.errors.csrf_failure"
WSGI_APPLICATION = "vmprov.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "vmprov" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "provisioning.navigation.navigation",
            ],
        },
    },
]

# --- HTTPS: behind a TLS proxy (or TLS at gunicorn), VMPROV_HTTPS=true makes the cookies Secure, sends HSTS,
# redirects plain HTTP and trusts the proxy's header saying the request came over HTTPS. ---
VMPROV_HTTPS = env_bool("VMPROV_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = VMPROV_HTTPS
SECURE_SSL_REDIRECT = env_bool("VMPROV_SSL_REDIRECT", VMPROV_HTTPS)
SECURE_HSTS_SECONDS = env_int("VMPROV_HSTS_SECONDS", 31536000 if VMPROV_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("VMPROV_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("VMPROV_HSTS_PRELOAD", False)
# Only a proxy that sets (and never passes on) this header may stand in front: a client could otherwise claim HTTPS.
_PROXY_SSL_HEADER = env_str("VMPROV_PROXY_SSL_HEADER", "X-Forwarded-Proto" if VMPROV_HTTPS else "")
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")
# HSTS preloading commits the whole domain to HTTPS in browsers' built-in lists: its owner's decision, not a default.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Content-Security-Policy (django-csp): scripts, styles and everything else from vmprov's own origin only;
# no inline script or style, no eval. Templates keep their styles in static stylesheets. ---
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Database: SQLite file by default, PostgreSQL in production (DATABASE_URL) ---
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# Persistent connections: opening SQLite (and its PRAGMAs) per request was most of a cached API call's CPU.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the django-q2 cluster write at once: WAL lets readers
    # run beside the writer, IMMEDIATE takes the write lock up front (no
    # deadlock on upgrade), and the timeout waits for it instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: the inventory cache. JSON only (never pickle), short timeouts ---
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.5)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "vmprov",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
        },
    }
}
# Sessions live in the database so that logging in works while Redis is down.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Auth ---
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- vCenter (same names the Terraform vsphere provider reads) ---
VSPHERE_SERVER = env_str("VSPHERE_SERVER")
VSPHERE_USER = env_str("VSPHERE_USER")
VSPHERE_PASSWORD = env_str("VSPHERE_PASSWORD")
VSPHERE_ALLOW_UNVERIFIED_SSL = env_bool("VSPHERE_ALLOW_UNVERIFIED_SSL", False)
VSPHERE_TIMEOUT = env_float("VSPHERE_TIMEOUT", 20)
VSPHERE_PAGE_SIZE = env_int("VSPHERE_PAGE_SIZE", 500)

# --- Inventory cache ages (seconds) ---
INVENTORY_SOFT_AGE = env_int("INVENTORY_SOFT_AGE", 300)
# Above INVENTORY_WATCH_RECONCILE_HOURS: a list nothing changed for a day is rewritten by the watcher's reload first.
INVENTORY_TTL = env_int("INVENTORY_TTL", 172800)
INVENTORY_TEMPLATE_TTL = env_int("INVENTORY_TEMPLATE_TTL", 604800)
# How long a cold miss waits for another process's collection before 503.
INVENTORY_COLD_WAIT = env_float("INVENTORY_COLD_WAIT", 15)
# Lock timeout for one collection; a running collection keeps extending it.
INVENTORY_LOCK_TIMEOUT = env_int("INVENTORY_LOCK_TIMEOUT", 60)
# After a Redis failure, calls fail fast for this long before Redis is tried again.
INVENTORY_REDIS_BREAKER_SECONDS = env_float("INVENTORY_REDIS_BREAKER_SECONDS", 5)
# Periodic full refresh (minutes); 0 turns the schedule off.
INVENTORY_REFRESH_MINUTES = env_int("INVENTORY_REFRESH_MINUTES", 4)

# --- Inventory watcher (manage.py watch_inventory): the cache follows vCenter's updates ---
# maxWaitSeconds of each WaitForUpdatesEx: at idle, one vCenter call this often.
INVENTORY_WATCH_WAIT_SECONDS = env_int("INVENTORY_WATCH_WAIT_SECONDS", 15)
# A leader that stops renewing its lease is replaced this long after its last renewal.
INVENTORY_WATCH_LEASE_SECONDS = env_float("INVENTORY_WATCH_LEASE_SECONDS", 15)
# A full reload from vCenter this often (below INVENTORY_TTL).
INVENTORY_WATCH_RECONCILE_HOURS = env_float("INVENTORY_WATCH_RECONCILE_HOURS", 24)
# The longest pause between attempts to reach vCenter again.
INVENTORY_WATCH_BACKOFF_MAX = env_float("INVENTORY_WATCH_BACKOFF_MAX", 60)

# --- VM requests: the form's default DNS domain, and the bounds it enforces (low, high) ---
VMPROV_DEFAULT_DOMAIN = env_str("VMPROV_DEFAULT_DOMAIN", "localdomain")
VMPROV_LIMITS = {
    "num_cpus": (env_int("VMPROV_MIN_CPUS", 1), env_int("VMPROV_MAX_CPUS", 32)),
    "memory_mb": (env_int("VMPROV_MIN_MEMORY_MB", 512), env_int("VMPROV_MAX_MEMORY_MB", 262144)),
    "disk_size_gb": (env_int("VMPROV_MIN_DISK_GB", 1), env_int("VMPROV_MAX_DISK_GB", 4096)),
}

# --- Terraform rendering ---
VMPROV_TF_BACKEND = env_str("VMPROV_TF_BACKEND", "pg")  # pg | s3 | azurerm | gcs | consul | local | http
# JSON of the backend's non-secret settings (secrets such as PG_CONN_STR live in Atlantis's environment).
VMPROV_TF_BACKEND_CONFIG = env_str("VMPROV_TF_BACKEND_CONFIG", "{}")
VMPROV_TFVARS_FILE = env_str("VMPROV_TFVARS_FILE", "terraform.tfvars")  # or machine_inputs.tfvars
# New VMs get CPU and memory hot add, so that a later resize need not restart the guest.
VMPROV_HOT_ADD = env_bool("VMPROV_HOT_ADD", True)

# --- Delivery: the Git repository Atlantis works from ---
VMPROV_GITOPS_REPO = env_str("VMPROV_GITOPS_REPO")
VMPROV_GITOPS_BASE_BRANCH = env_str("VMPROV_GITOPS_BASE_BRANCH", "main")
VMPROV_GITOPS_DIR_PATTERN = env_str("VMPROV_GITOPS_DIR_PATTERN", "vms/{datacenter}/{vm_name}")
VMPROV_GITOPS_BRANCH_PREFIX = env_str("VMPROV_GITOPS_BRANCH_PREFIX", "vmprov/")
VMPROV_GIT_USERNAME = env_str("VMPROV_GIT_USERNAME")
VMPROV_GIT_PASSWORD = env_str("VMPROV_GIT_PASSWORD")  # or a token; reaches git only through GIT_ASKPASS
VMPROV_GIT_COMMITTER_NAME = env_str("VMPROV_GIT_COMMITTER_NAME", "vmprov")
VMPROV_GIT_COMMITTER_EMAIL = env_str("VMPROV_GIT_COMMITTER_EMAIL", "vmprov@localhost")
VMPROV_GIT_EMAIL_DOMAIN = env_str("VMPROV_GIT_EMAIL_DOMAIN", "users.vmprov.invalid")
VMPROV_GIT_WORKDIR = env_str("VMPROV_GIT_WORKDIR")  # where working copies are made; the system temp dir if unset
VMPROV_GIT_TIMEOUT = env_int("VMPROV_GIT_TIMEOUT", 120)
# The branch of a rejected or cancelled request is deleted (unless an apply ran from it, or someone else moved it).
VMPROV_GITOPS_DELETE_CLOSED_BRANCHES = env_bool("VMPROV_GITOPS_DELETE_CLOSED_BRANCHES", True)

# --- Atlantis (token only ever in the X-Atlantis-Token header) ---
ATLANTIS_URL = env_str("ATLANTIS_URL")
ATLANTIS_TOKEN = env_str("ATLANTIS_TOKEN")
ATLANTIS_REPO = env_str("ATLANTIS_REPO")
ATLANTIS_VCS_TYPE = env_str("ATLANTIS_VCS_TYPE", "Github")
ATLANTIS_PLAN_TIMEOUT = env_int("ATLANTIS_PLAN_TIMEOUT", 900)
ATLANTIS_APPLY_TIMEOUT = env_int("ATLANTIS_APPLY_TIMEOUT", 3600)
ATLANTIS_CONNECT_TIMEOUT = env_float("ATLANTIS_CONNECT_TIMEOUT", 10)
ATLANTIS_LOCK_WAIT = env_float("ATLANTIS_LOCK_WAIT", 120)  # waiting for another call on the same repository
ATLANTIS_LOCK_MARGIN = env_float("ATLANTIS_LOCK_MARGIN", 60)  # lock TTL = timeout + connect + 30 s + margin
ATLANTIS_REF_MODE = env_str("ATLANTIS_REF_MODE", "branch")  # "commit" (v0.46+): Atlantis plans the pushed commit

# --- Approval and the end of delivery ---
# Auto-approval below these limits (and only for a plan of exactly "1 to add, 0 to change, 0 to destroy");
# off unless all three are set.
_auto = [env_int(f"VMPROV_AUTO_APPROVE_MAX_{n}", 0) for n in ("CPUS", "MEMORY_MB", "DISK_GB")]
VMPROV_AUTO_APPROVE = {"num_cpus": _auto[0], "memory_mb": _auto[1], "disk_size_gb": _auto[2]} if all(_auto) else None
# A change of a delivered VM is auto-approved under the same limits, for a plan of exactly "0 to add, 1 to change,
# 0 to destroy", when it does not restart the guest; these turn that off, or let restarting changes through too.
# A decommission always waits for a person: no setting changes that.
VMPROV_AUTO_APPROVE_CHANGES = env_bool("VMPROV_AUTO_APPROVE_CHANGES", True)
VMPROV_AUTO_APPROVE_RESTARTS = env_bool("VMPROV_AUTO_APPROVE_RESTARTS", False)
VMPROV_READY_CHECKS = env_int("VMPROV_READY_CHECKS", 30)
VMPROV_READY_CHECK_SECONDS = env_int("VMPROV_READY_CHECK_SECONDS", 60)
VMPROV_BASE_URL = env_str("VMPROV_BASE_URL", "http://127.0.0.1:8000")

# --- Email (Django's settings; the console when no host is set) ---
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "vmprov@localhost")

# --- Background jobs (django-q2, ORM broker: at-least-once, survives a Redis outage) ---
Q_CLUSTER = {
    "name": "vmprov",
    "orm": "default",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 600),
    "retry": env_int("Q_RETRY", 720),
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 500,
    "poll": 0.5,
    # Delivery jobs run on a cluster of their own (Q_CLUSTER_NAME=delivery manage.py qcluster) whose retry
    # outlasts the longest apply: the broker never hands a running apply out a second time.
    "ALT_CLUSTERS": {
        "delivery": {
            "timeout": ATLANTIS_APPLY_TIMEOUT + 300,
            "retry": ATLANTIS_APPLY_TIMEOUT + 900,
            "max_attempts": 1,
            "workers": env_int("Q_DELIVERY_WORKERS", 2),
        }
    },
}

# --- Internationalization / static ---
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "vmprov" / "static"]  # the pages' stylesheet, favicon and htmx
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

DEFAULT_EXCEPTION_REPORTER_FILTER = "vmprov.reporting.SecretsFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": "WARNING"}},
}
