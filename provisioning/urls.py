from django.urls import path

from provisioning import views

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
]
