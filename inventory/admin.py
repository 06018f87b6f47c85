"""Admin: refresh runs, and the inventory cache page with its refresh buttons (staff only)."""

from __future__ import annotations

import time

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from inventory import cache, tasks
from inventory.choices import RefreshTrigger
from inventory.models import RefreshRun
from inventory.snapshot import Scope


@admin.register(RefreshRun)
class RefreshRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "scope", "trigger", "outcome", "duration_ms", "soap_calls", "objects_total")
    list_filter = ("outcome", "trigger")
    search_fields = ("scope", "error")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in RefreshRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path("cache/", self.admin_site.admin_view(self.cache_view), name="inventory_refreshrun_cache"),
            path(
                "cache/refresh/",
                self.admin_site.admin_view(require_POST(self.refresh_view)),
                name="inventory_refreshrun_refresh",
            ),
            *super().get_urls(),
        ]

    def cache_view(self, request: HttpRequest) -> HttpResponse:
        now = time.time()
        try:
            scopes = [
                {
                    "key": summary.key,
                    "objects": summary.objects,
                    "age": round(now - summary.fetched_at) if summary.fetched_at else None,
                    "ttl": summary.ttl,
                    "error": summary.error,
                    "scope": _refresh_scope_of(summary.key),
                }
                for summary in cache.overview()
            ]
            watchers, cache_error = watcher_rows(now), None
        except cache.CacheUnavailable as error:
            scopes, watchers, cache_error = [], [], str(error)
        context = {
            **self.admin_site.each_context(request),
            "title": "Inventory cache",
            "opts": self.model._meta,
            "scopes": scopes,
            "watchers": watchers,
            "cache_error": cache_error,
            "runs": RefreshRun.objects.all()[:25],
        }
        return TemplateResponse(request, "admin/inventory/cache.html", context)

    def refresh_view(self, request: HttpRequest) -> HttpResponse:
        try:
            scope = Scope.from_label(request.POST.get("scope", "all"))
        except ValueError:
            messages.error(request, "Unknown scope.")
        else:
            tasks.queue_refresh(scope, RefreshTrigger.ADMIN, requested_by=request.user.get_username())
            messages.success(
                request, f"A refresh of {scope.label} is queued; the cache keeps serving until it is done."
            )
        return HttpResponseRedirect(reverse("admin:inventory_refreshrun_cache"))

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "cache_url": reverse("admin:inventory_refreshrun_cache")}
        return super().changelist_view(request, extra_context)


def watcher_rows(now: float) -> list[dict]:
    """Each watcher replica's status (cache.replica_statuses) with its times as ages, for the admin's partial."""

    def age(at: float | None) -> int | None:
        return round(now - at) if at else None

    return [
        {
            **status,
            "heard_age": age(status.get("heard_at")),
            "update_age": age(status.get("last_update_at")),
            "reconciled_age": age(status.get("reconciled_at")),
        }
        for status in cache.replica_statuses()
    ]


def _refresh_scope_of(key: str) -> str:
    """The refresh that rewrites a cached key: "all", "datacenter:<id>" or "cluster:<id>"."""
    parts = key.split(":")
    if parts[0] == "dc":
        return Scope.datacenter(parts[1]).label
    if parts[0] == "cluster":
        return Scope.cluster(":".join(parts[1:-1])).label
    return Scope.everything().label
