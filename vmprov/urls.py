from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from vmprov.errors import api_not_found

# Browsers ask for /favicon.ico whatever the page says; the login page has to show it too.
favicon = login_not_required(RedirectView.as_view(url=static("vmprov/favicon.svg"), permanent=True))

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="provisioning:new"), name="home"),
    path("requests/", include("provisioning.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/vsphere/", include("inventory.urls")),
    re_path(r"^api/", api_not_found),  # a JSON 404 for any other address under /api/, not the HTML page
    path("favicon.ico", favicon),
]
