"""The two views the cached API is measured against: reading vCenter live, and the bare Redis floor."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django_redis import get_redis_connection

from inventory import cache, vsphere
from inventory.snapshot import Scope, VCenterError


def live_cluster_resources(request: HttpRequest, cluster_id: str) -> JsonResponse:
    """What the API would cost without the cache: a vCenter session and a cluster-scope collection per request."""
    try:
        with vsphere.session() as session:
            snapshot = vsphere.collect(session, Scope.cluster(cluster_id))
            soap_calls = session.counter.calls
    except VCenterError as error:
        return JsonResponse({"error": str(error)}, status=502)
    resources = snapshot.resources.get(cluster_id)
    if resources is None:
        return JsonResponse({"error": f"cluster {cluster_id} not found"}, status=404)
    return JsonResponse({**resources, "soap_calls": soap_calls}, json_dumps_params={"ensure_ascii": False})


def floor_cluster_resources(request: HttpRequest, cluster_id: str) -> JsonResponse:
    """The least a cached answer can cost under the same server: one HGETALL, decoded, as JSON."""
    raw = get_redis_connection("default").hgetall(cache.resources_key(cluster_id))
    return JsonResponse({field.decode(): json.loads(value) for field, value in raw.items()})
