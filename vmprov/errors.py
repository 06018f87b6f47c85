"""Answers for requests that never reach a view: a failed CSRF check and an unknown API address, as JSON under /api/
and as vmprov's own pages elsewhere (Django's stock CSRF page has inline styles the Content-Security-Policy refuses)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

CSRF_MESSAGE = "The form was out of date or did not come from this site: reload the page and try again."


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": f"CSRF check failed: {reason}"}, status=403)
    return render(request, "403.html", {"exception": CSRF_MESSAGE}, status=403)


def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return JsonResponse({"error": f"no API endpoint at {request.path}"}, status=404)
