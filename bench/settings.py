"""Settings for the benchmark's gunicorn: vmprov's own settings, DEBUG off, quiet logs, the bench-only views.

The runner (bench/inventory_bench.py) passes SECRET_KEY, DATABASE_URL (SQLite in a
temporary directory), REDIS_URL (a throwaway redis-server) and the vCenter to read
through the environment, exactly as a deployment would.
"""

import os

from django.core.exceptions import ImproperlyConfigured

# The benchmark must never touch the developer's database or a shared Redis (127.0.0.1:6379).
for _required in ("DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(_required):
        raise ImproperlyConfigured(f"bench.settings needs {_required} (bench/inventory_bench.py sets it)")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # the catalog logs every cache hit at INFO

from vmprov.settings import *  # noqa: E402, F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
