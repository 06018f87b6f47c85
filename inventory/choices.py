"""Enumerations of the inventory app."""

from django.db import models


class RefreshTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    ADMIN = "admin", "Admin"
    STALE_READ = "stale_read", "Stale read"
    COLD_MISS = "cold_miss", "Cold miss"
    WARM_CACHE = "warm_cache", "warm_cache command"
    DELIVERY = "delivery", "Delivery (looking for a new VM)"


class RefreshOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    NOT_FOUND = "not_found", "Not found (the scope no longer exists in vCenter)"
    SKIPPED = "skipped", "Skipped (another refresh of this scope was running)"
