from django.db import models

from inventory.choices import RefreshOutcome, RefreshTrigger


class RefreshRun(models.Model):
    """One collection of a scope of the vSphere inventory into the cache, whatever its outcome."""

    trigger = models.CharField(max_length=20, choices=RefreshTrigger.choices)
    scope = models.CharField(max_length=200, help_text='"all", "datacenter:<id>" or "cluster:<id>"')
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=RefreshOutcome.choices, default=RefreshOutcome.RUNNING)
    object_counts = models.JSONField(default=dict, blank=True)
    soap_calls = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["scope", "-started_at"])]
        # Seeing the cache and queueing refreshes (each a vCenter collection) is a permission of its own:
        # being staff is not enough.
        permissions = [("refresh_inventory", "Can see the inventory cache and queue refreshes")]

    def __str__(self) -> str:
        return f"{self.scope} {self.get_trigger_display()} {self.get_outcome_display()}"

    @property
    def objects_total(self) -> int:
        return sum(self.object_counts.values())
