"""Deployment-level promises: SQLite copes with concurrent writers, delivery's queue outlasts an apply."""

import threading

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.models import RefreshRun


@pytest.mark.django_db(transaction=True)
def test_sqlite_runs_in_wal_mode_and_takes_concurrent_writers():
    if connection.vendor != "sqlite":
        # The PostgreSQL run of the suite: concurrent writers are PostgreSQL's everyday business.
        return _concurrent_writers()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    _concurrent_writers()


def _concurrent_writers():
    errors = []

    def writer(n):
        try:
            for i in range(25):
                RefreshRun.objects.create(
                    trigger=RefreshTrigger.SCHEDULE,
                    scope=f"cluster:w{n}-{i}",
                    started_at=timezone.now(),
                    outcome=RefreshOutcome.SUCCEEDED,
                )
        except Exception as error:  # "database is locked" would land here
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert RefreshRun.objects.count() == 150


def test_the_delivery_queue_never_hands_a_running_apply_out_twice():
    delivery = settings.Q_CLUSTER["ALT_CLUSTERS"]["delivery"]
    longest_call = settings.ATLANTIS_APPLY_TIMEOUT + settings.ATLANTIS_LOCK_WAIT + settings.ATLANTIS_CONNECT_TIMEOUT
    assert delivery["timeout"] > longest_call
    assert delivery["retry"] > delivery["timeout"], "a task is redelivered only after it cannot be running any more"
    assert delivery["max_attempts"] == 1


def test_error_pages_never_show_connection_urls_or_secrets(settings):
    from django.views.debug import get_default_exception_reporter_filter

    settings.DATABASE_URL = "postgres://vmprov:S3cretPw@db/vmprov"
    settings.REDIS_URL = "redis://:R3disPw@cache:6379/0"
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://:C4chePw@c:1/0"},
    }
    settings.ATLANTIS_TOKEN = "atl-T0ken"
    settings.VSPHERE_PASSWORD = "vc-Passw0rd"
    shown = repr(get_default_exception_reporter_filter().get_safe_settings())
    for secret in ("S3cretPw", "R3disPw", "C4chePw", "atl-T0ken", "vc-Passw0rd"):
        assert secret not in shown
