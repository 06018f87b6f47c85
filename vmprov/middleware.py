"""Every page needs a logged-in user; the JSON API answers 401 instead of redirecting, and a page's htmx poll
sends the whole tab to the login page (rather than swapping the login form into a fragment). What a logged-in
person sees is never kept by a browser's or a proxy's cache."""

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.http import HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django.utils.cache import patch_cache_control


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    def handle_no_permission(self, request, view_func):
        if request.path.startswith("/api/"):
            response = JsonResponse({"error": "authentication required"}, status=401)
            response["WWW-Authenticate"] = 'Cookie realm="vmprov", form-action="/login/"'
            return response
        if request.headers.get("HX-Request") == "true":
            return HttpResponse(status=204, headers={"HX-Redirect": resolve_url(self.get_login_url(view_func))})
        return super().handle_no_permission(request, view_func)


class PrivateResponsesMiddleware:
    """`Cache-Control: private, no-store` on every answer to a logged-in person that sets no caching of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response
