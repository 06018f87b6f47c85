"""Admin: requests with filters and search; history and rendered Terraform read-only."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from provisioning.delivery import actions
from provisioning.models import RequestEvent, VMRequest
from provisioning.templatetags.vm_requests import status_badge


class RequestEventInline(admin.TabularInline):
    model = RequestEvent
    fields = ("at", "actor", "from_status", "to_status", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VMRequest)
class VMRequestAdmin(admin.ModelAdmin):
    # Few, short columns: the changelist stays readable at 1280 px beside its filters.
    list_display = ("id", "vm", "kind", "status_badge", "where", "requester", "created_at")
    list_display_links = ("id", "vm")
    list_filter = ("kind", "status", "datacenter_name", "created_at")
    list_per_page = 50
    list_select_related = ("requester",)
    search_fields = ("vm_name", "notes", "requester__username", "ipv4_address", "datacenter_name", "cluster_name")
    date_hierarchy = "created_at"
    inlines = [RequestEventInline]
    readonly_fields = ("terraform_files", "config_hash", "status", "created_at", "updated_at")
    exclude = ("rendered_files",)
    actions = ["approve", "reject", "retry_delivery"]

    class Media:
        css = {"all": ["provisioning/admin.css"]}

    def _decide(self, request, queryset, decision: str):
        """Approve or reject with a reason: an intermediate page asks for it."""
        if "reason" not in request.POST:
            return TemplateResponse(
                request,
                "admin/provisioning/decide.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"{decision.capitalize()} {queryset.count()} request(s)",
                    "queryset": queryset,
                    "decision": decision,
                    "action": request.POST["action"],
                    "opts": self.model._meta,
                },
            )
        reason = request.POST["reason"].strip()
        for vm_request in queryset:
            # The plan shown on the confirmation page: a plan that changed since is not decided on.
            seen_plan = request.POST.get(f"plan_{vm_request.pk}", "")
            try:
                getattr(actions, decision)(vm_request, request.user, reason, seen_plan=seen_plan)
                self.message_user(request, f"{vm_request.vm_name}: {decision}d.", messages.SUCCESS)
            except actions.NotAllowed as error:
                self.message_user(request, f"{vm_request.vm_name}: {error}", messages.ERROR)
        return None

    @admin.action(description="Approve selected planned requests")
    def approve(self, request, queryset):
        return self._decide(request, queryset, "approve")

    @admin.action(description="Reject selected planned requests")
    def reject(self, request, queryset):
        return self._decide(request, queryset, "reject")

    @admin.action(description="Retry the delivery of selected failed requests")
    def retry_delivery(self, request, queryset):
        for vm_request in queryset:
            try:
                actions.retry(vm_request, request.user)
                self.message_user(request, f"{vm_request.vm_name}: delivery starts again.", messages.SUCCESS)
            except actions.NotAllowed as error:
                self.message_user(request, f"{vm_request.vm_name}: {error}", messages.ERROR)

    def has_add_permission(self, request) -> bool:
        return False  # requests come through the form, which checks them against the inventory

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the history is the record: statuses move only through transitions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing is ever deleted, failed and cancelled requests included

    @admin.display(description="VM name", ordering="vm_name")
    def vm(self, obj: VMRequest) -> str:
        return obj.vm_name

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: VMRequest) -> str:
        return status_badge(obj.status)

    @admin.display(description="Where", ordering="datacenter_name")
    def where(self, obj: VMRequest) -> str:
        return f"{obj.datacenter_name} / {obj.cluster_name}"

    @admin.display(description="Rendered Terraform")
    def terraform_files(self, obj: VMRequest) -> str:
        return format_html_join(
            "", "<h4>{}</h4><pre class='rendered-terraform'>{}</pre>", sorted(obj.rendered_files.items())
        ) or format_html("<em>{}</em>", "nothing rendered")
