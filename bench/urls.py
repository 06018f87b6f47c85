"""vmprov's URLs plus the benchmark's comparison views (served only under bench.settings)."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from bench import views
from vmprov.urls import urlpatterns as vmprov_urlpatterns

urlpatterns = [
    *vmprov_urlpatterns,
    path("bench/live/clusters/<str:cluster_id>/resources", views.live_cluster_resources),
    path("bench/floor/clusters/<str:cluster_id>/resources", views.floor_cluster_resources),
    path(
        "bench/floor-anonymous/clusters/<str:cluster_id>/resources",
        login_not_required(views.floor_cluster_resources),
    ),
]
