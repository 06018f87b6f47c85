from django.urls import path

from provisioning import views, vm_views

app_name = "provisioning"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("new/", views.new_request, name="new"),
    path("inbox/", views.approval_inbox, name="inbox"),
    path("<int:pk>/", views.request_detail, name="detail"),
    path("<int:pk>/cancel/", views.cancel_request, name="cancel"),
    path("<int:pk>/decide/", views.decide_request, name="decide"),
    path("<int:pk>/retry/", views.retry_request, name="retry"),
    path("<int:pk>/resolve/", views.resolve_request, name="resolve"),
    path("vms/", vm_views.vm_list, name="vms"),
    path("vms/<int:pk>/", vm_views.vm_detail, name="vm"),
    path("vms/<int:pk>/change/", vm_views.change_vm, name="change_vm"),
    path("vms/<int:pk>/decommission/", vm_views.decommission_vm, name="decommission_vm"),
]
