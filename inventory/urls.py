from django.urls import path

from inventory import views

app_name = "inventory"

urlpatterns = [
    path("datacenters", views.datacenters, name="datacenters"),
    # <path:> so that a datacenter name holding "/" (sent as %2F) still matches.
    path(
        "datacenters/<path:datacenter_name>/clusters",
        views.clusters_by_datacenter_name,
        name="clusters-by-name",
    ),
    path("hierarchical/datacenters/<str:datacenter_id>/clusters", views.datacenter_clusters, name="clusters"),
    path("hierarchical/datacenters/<str:datacenter_id>/templates", views.datacenter_templates, name="templates"),
    path("hierarchical/datacenters/<str:datacenter_id>/folders", views.datacenter_folders, name="folders"),
    path("hierarchical/datacenters/<str:datacenter_id>/vms", views.datacenter_vms, name="vms"),
    path("hierarchical/clusters/<str:cluster_id>/resources", views.cluster_resources, name="resources"),
]
