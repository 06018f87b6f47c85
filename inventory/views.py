"""The inventory's JSON API: the request form's data source, served from the cache."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from inventory import catalog
from inventory.catalog import Listing


def json_api(view: Callable[..., dict]) -> Callable[..., JsonResponse]:
    """Turn a view's dict into JSON, and the catalog's errors into JSON 4xx/5xx answers."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        try:
            return JsonResponse(view(request, *args, **kwargs), json_dumps_params={"ensure_ascii": False})
        except catalog.NotFound as error:
            return JsonResponse({"error": str(error)}, status=404)
        except catalog.Ambiguous as error:
            return JsonResponse({"error": str(error), "ids": error.ids}, status=409)
        except catalog.Unavailable as error:
            response = JsonResponse({"error": str(error)}, status=503)
            response["Retry-After"] = str(error.retry_after)
            return response

    @functools.wraps(view)
    def get_only(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        if request.method in ("GET", "HEAD"):
            return wrapper(request, *args, **kwargs)
        response = JsonResponse({"error": f"{request.method} is not allowed here: this API only reads"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response

    # Read-only: no CSRF token to check, so a POST gets this JSON 405 (or the login middleware's JSON 401).
    return csrf_exempt(get_only)


def staff_only(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """A JSON 403 for logged-in people who are not staff (the login middleware answers 401 before)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        if not request.user.is_staff:
            return JsonResponse({"error": "this list is for staff only"}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def freshness(*listings: Listing) -> dict:
    """How fresh an answer is: the oldest fetch time of the lists it combines, and whether a watcher keeps them live
    ("live, last update at …") or they are a snapshot ("snapshot at `fetched_at`")."""
    errors = [listing.refresh_error for listing in listings if listing.refresh_error]
    fetched_at = catalog.iso(min(listing.fetched_at for listing in listings))
    live = all(listing.live for listing in listings)
    updates = [listing.last_update_at for listing in listings if listing.last_update_at]
    last_update_at = catalog.iso(max(updates)) if live and updates else None
    return {
        "fetched_at": fetched_at,
        "stale": any(listing.stale for listing in listings),
        "refresh_error": errors[0] if errors else None,
        "live": live,
        "last_update_at": last_update_at,
        "freshness": (f"live, last update at {last_update_at}" if last_update_at else "live")
        if live
        else f"snapshot at {fetched_at}",
    }


def _brief(item: dict) -> dict:
    return {"id": item["id"], "name": item["name"]}


@json_api
def datacenters(request: HttpRequest) -> dict:
    listing = catalog.datacenters()
    return {"datacenters": listing.items, **freshness(listing)}


@json_api
def clusters_by_datacenter_name(request: HttpRequest, datacenter_name: str) -> dict:
    datacenter = catalog.datacenter_named(datacenter_name)
    listing = catalog.clusters(datacenter["id"])
    return {"datacenter": _brief(datacenter), "clusters": listing.items, **freshness(listing)}


@json_api
def datacenter_clusters(request: HttpRequest, datacenter_id: str) -> dict:
    listing = catalog.clusters(datacenter_id)
    return {"datacenter": {"id": datacenter_id}, "clusters": listing.items, **freshness(listing)}


@json_api
def datacenter_templates(request: HttpRequest, datacenter_id: str) -> dict:
    listing = catalog.templates(datacenter_id)
    return {"datacenter": {"id": datacenter_id}, "templates": listing.items, **freshness(listing)}


@json_api
def datacenter_folders(request: HttpRequest, datacenter_id: str) -> dict:
    listing = catalog.folders(datacenter_id)
    return {"datacenter": {"id": datacenter_id}, "folders": listing.items, **freshness(listing)}


# Every VM's addresses and UUIDs: the request form does not need them, staff may.
@staff_only
@json_api
def datacenter_vms(request: HttpRequest, datacenter_id: str) -> dict:
    listing = catalog.vms(datacenter_id)
    return {"datacenter": {"id": datacenter_id}, "vms": listing.items, **freshness(listing)}


@json_api
def cluster_resources(request: HttpRequest, cluster_id: str) -> dict:
    resources = catalog.cluster_resources(cluster_id, wait_for_templates=False)
    own = Listing(
        items=[],
        fetched_at=resources.fetched_at,
        stale=resources.stale,
        refresh_error=resources.refresh_error,
        live=resources.live,
        last_update_at=resources.last_update_at,
    )
    loaded = [resources.templates] if resources.templates_status == catalog.TEMPLATES_OK else []
    return {
        "cluster": resources.cluster,
        "datacenter": {"id": resources.datacenter_id},
        "resource_pools": resources.resource_pools,
        "datastores": resources.datastores,
        "networks": resources.networks,
        "templates": resources.templates.items,
        "templates_status": resources.templates_status,
        **freshness(own, *loaded),
    }
