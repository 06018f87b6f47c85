"""Every page needs a logged-in user; the JSON API answers 401 instead of redirecting, and a page's htmx poll
sends the whole tab to the login page (rather than swapping the login form into a fragment)."""

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.http import HttpResponse, JsonResponse
from django.shortcuts import resolve_url


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    def handle_no_permission(self, request, view_func):
        if request.path.startswith("/api/"):
            return JsonResponse({"error": "authentication required"}, status=401)
        if request.headers.get("HX-Request") == "true":
            return HttpResponse(status=204, headers={"HX-Redirect": resolve_url(self.get_login_url(view_func))})
        return super().handle_no_permission(request, view_func)
