"""Admin: refresh runs, and the inventory cache page with its refresh buttons (`inventory.refresh_inventory`).

The cache page shows one row per refresh scope (everything, a datacenter, a cluster) by name, with the lists it
holds, and one button each. A refresh is queued once: a second click while it waits or runs queues nothing. While
one waits or runs, the page follows it (htmx polling) until the new ages are in.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from inventory import cache, refresh_locks, tasks, watch_store
from inventory.choices import RefreshTrigger
from inventory.models import RefreshRun
from inventory.snapshot import Scope

WATCHER_RESYNC = (
    "The inventory watcher keeps the cache live, so no refresh job was queued: it was asked to reload everything "
    'from vCenter now; its time shows as "Last full reload" in the Watcher table'
)

REFRESH_PERMISSION = "inventory.refresh_inventory"


@dataclass
class CachedScope:
    """One refresh scope on the cache page: what it is called, the lists it holds, and whether a refresh is on."""

    scope: Scope
    name: str
    lists: list[dict] = field(default_factory=list)
    state: str = ""  # "", "queued" or "refreshing"

    @property
    def label(self) -> str:
        return self.scope.label

    @property
    def age(self) -> int | None:
        ages = [item["age"] for item in self.lists if item["age"] is not None]
        return max(ages) if ages else None

    @property
    def errors(self) -> list[str]:
        return sorted({item["error"]["message"] for item in self.lists if item["error"]})


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
        _require_refresh_permission(request)
        try:
            scopes, watchers, cache_error = cached_scopes(), watcher_rows(time.time()), None
        except cache.CacheUnavailable as error:
            scopes, watchers, cache_error = [], [], str(error)
        busy = any(scope.state for scope in scopes)
        version = hashlib.sha256(repr([(s.label, s.state, s.age) for s in scopes]).encode()).hexdigest()[:16]
        context = {
            **self.admin_site.each_context(request),
            "title": "Inventory cache",
            "opts": self.model._meta,
            "scopes": scopes,
            "watchers": watchers,
            "cache_error": cache_error,
            "runs": RefreshRun.objects.all()[:25],
            # While a refresh waits or runs, the page follows it; the answer is 204 while nothing changed.
            "poll_url": f"{request.path}?since={version}" if busy else "",
        }
        if request.headers.get("HX-Request") == "true":
            if request.GET.get("since") == version:
                return HttpResponse(status=204)
            return TemplateResponse(request, "admin/inventory/_cache_scopes.html", context)
        return TemplateResponse(request, "admin/inventory/cache.html", context)

    def refresh_view(self, request: HttpRequest) -> HttpResponse:
        _require_refresh_permission(request)
        try:
            scope = Scope.from_label(request.POST.get("scope", "all"))
        except ValueError:
            messages.error(request, "Unknown scope.")
            return HttpResponseRedirect(reverse("admin:inventory_refreshrun_cache"))
        try:
            name = _scope_name(scope, _names())
            if cache.watcher_live() is not None:  # a refresh job would only hand this on to the watcher
                watch_store.request_resync()
                messages.success(request, f"{WATCHER_RESYNC} (asked from {name})")
                return HttpResponseRedirect(reverse("admin:inventory_refreshrun_cache"))
            claimed = refresh_locks.claim_refresh_request(scope)
        except cache.CacheUnavailable as error:
            messages.error(request, f"Nothing was queued: {error}")
            return HttpResponseRedirect(reverse("admin:inventory_refreshrun_cache"))
        if claimed:
            tasks.queue_refresh(scope, RefreshTrigger.ADMIN, requested_by=request.user.get_username())
            messages.success(request, f"A refresh of {name} is queued; the cache keeps serving until it is done.")
        else:
            messages.info(request, f"A refresh of {name} is already queued or running; nothing more was queued.")
        return HttpResponseRedirect(reverse("admin:inventory_refreshrun_cache"))

    def changelist_view(self, request: HttpRequest, extra_context=None):
        if request.user.has_perm(REFRESH_PERMISSION):
            extra_context = {**(extra_context or {}), "cache_url": reverse("admin:inventory_refreshrun_cache")}
        return super().changelist_view(request, extra_context)


def _require_refresh_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(REFRESH_PERMISSION):
        raise PermissionDenied("Seeing the inventory cache and refreshing it needs the refresh_inventory permission.")


def cached_scopes() -> list[CachedScope]:
    """Every cached list grouped by the refresh that rewrites it, named after its datacenter or cluster."""
    now = time.time()
    names = _names()
    scopes: dict[str, CachedScope] = {}
    for summary in cache.overview():
        scope = _refresh_scope_of(summary.key)
        if scope.label not in scopes:
            scopes[scope.label] = CachedScope(scope, _scope_name(scope, names))
        scopes[scope.label].lists.append(
            {
                "kind": summary.key.rsplit(":", 1)[-1],
                "key": summary.key,
                "objects": summary.objects,
                "age": round(now - summary.fetched_at) if summary.fetched_at else None,
                "ttl": summary.ttl,
                "error": summary.error,
            }
        )
    for item in scopes.values():
        if refresh_locks.refresh_running(item.scope):
            item.state = "refreshing"
        elif refresh_locks.refresh_requested(item.scope):
            item.state = "queued"
    order = {Scope.ALL: 0, Scope.DATACENTER: 1, Scope.CLUSTER: 2}
    return sorted(scopes.values(), key=lambda s: (order[s.scope.kind], s.name.lower(), s.label))


def _names() -> dict[str, str]:
    """Datacenter and cluster ids -> names, from the cached lists."""
    names = {}
    datacenters = cache.read_hash(cache.datacenters_key())
    for datacenter_id, datacenter in (datacenters.items if datacenters else {}).items():
        names[datacenter_id] = datacenter["name"]
        clusters = cache.read_hash(cache.datacenter_key(datacenter_id, "clusters"))
        for cluster_id, cluster in (clusters.items if clusters else {}).items():
            names[cluster_id] = f"{cluster['name']} ({datacenter['name']})"
    return names


def _scope_name(scope: Scope, names: dict[str, str]) -> str:
    if scope.kind == Scope.ALL:
        return "Everything"
    kind = "Datacenter" if scope.kind == Scope.DATACENTER else "Cluster"
    return f"{kind} {names.get(scope.id, scope.id)}"


def watcher_rows(now: float) -> list[dict]:
    """Each watcher replica's status (watch_store.replica_statuses) with its times as ages, for the admin's partial."""

    def age(at: float | None) -> int | None:
        return round(now - at) if at else None

    return [
        {
            **status,
            "heard_age": age(status.get("heard_at")),
            "update_age": age(status.get("last_update_at")),
            "reconciled_age": age(status.get("reconciled_at")),
        }
        for status in watch_store.replica_statuses()
    ]


def _refresh_scope_of(key: str) -> Scope:
    """The refresh that rewrites a cached key: everything, its datacenter or its cluster."""
    parts = key.split(":")
    if parts[0] == "dc":
        return Scope.datacenter(parts[1])
    if parts[0] == "cluster":
        return Scope.cluster(":".join(parts[1:-1]))
    return Scope.everything()
