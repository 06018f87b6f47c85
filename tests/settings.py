"""Test settings: vmprov's own, with fakeredis as the default cache (real Redis via fixtures)."""

import os

import fakeredis

os.environ.setdefault("SECRET_KEY", "vmprov-tests-only")

from vmprov.settings import *  # noqa: F403
from vmprov.settings import CACHES

# A host name that resolves nowhere: nothing in a unit test can reach a real Redis by mistake.
FAKE_REDIS_URL = "redis://fakeredis.invalid:6379/0"
CACHES["default"]["LOCATION"] = FAKE_REDIS_URL
CACHES["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"] = {"connection_class": fakeredis.FakeRedisConnection}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
VSPHERE_SERVER = ""
VSPHERE_USER = ""
VSPHERE_PASSWORD = ""
INVENTORY_COLD_WAIT = 5

# Threads in the tests (live server, concurrent clients) must not keep connections that block dropping
# the test database on PostgreSQL.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Static files are served from the apps' folders in tests; no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# One SQLite test database per test process: two pytest runs on one checkout must not share (and delete) it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"vmprov-test-{os.getpid()}.sqlite3")
    }
