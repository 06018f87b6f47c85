"""The forms people fill: a new VM (every choice checked against the inventory cache, never trusted as posted), a
change of a delivered VM's size or notes (disks only grow), and its decommission (the VM's name typed again); and
the summary of a refused form's errors that their pages show first."""

from __future__ import annotations

import ipaddress
import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from inventory import catalog
from provisioning.choices import IpMode
from provisioning.models import VMRequest
from provisioning.terraform.resize import shrink_problem

HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Guest customization vmprov renders: Linux (linux_options). Windows needs windows_options
# (a computer name of 15 characters at most and an administrator password), which vmprov does not offer.
UNSUPPORTED_GUESTS = ("windows", "win")
# vCenter's API is XML 1.0, which cannot carry these: C0 controls but tab, newline and carriage return; U+FFFE, U+FFFF.
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# The browser stops typing at a textarea's maxlength without a word: the help text says where that is.
NOTES_HELP = "Shown in vCenter as the VM's notes; at most 2,000 characters."


def storable_in_vcenter(value: str) -> None:
    """Refuse text vCenter cannot store (it would pass every check, then fail the apply)."""
    found = NOT_IN_XML.search(value or "")
    if found:
        raise ValidationError(
            f"Remove the invisible character U+{ord(found.group()):04X} (position {found.start() + 1}): "
            "vCenter cannot store it in the VM's notes."
        )


def notes_field() -> forms.CharField:
    """The VM's notes (vCenter's annotation), as the new-request and change forms take them."""
    return forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        required=False,
        validators=[storable_in_vcenter],
        help_text=NOTES_HELP,
    )


# What an empty field says: each names what is missing, so a summary of eleven errors reads as eleven things to do.
REQUIRED = {
    "datacenter": "Choose a datacenter.",
    "cluster": "Choose a cluster.",
    "resource_pool": "Choose a resource pool.",
    "datastore": "Choose a datastore.",
    "network": "Choose a network.",
    "folder": "Choose a VM folder.",
    "template": "Choose a template.",
    "vm_name": "Enter a name for the VM.",
    "num_cpus": "Enter the number of CPUs.",
    "memory_mb": "Enter the memory in MB.",
    "disk_size_gb": "Enter the disk size in GB.",
    "ip_mode": "Choose DHCP or a static address.",
    "domain": "Enter the guest's DNS domain.",
}


class VMRequestForm(forms.Form):
    datacenter = forms.CharField(max_length=200)
    cluster = forms.CharField(max_length=200)
    resource_pool = forms.CharField(max_length=200)
    datastore = forms.CharField(max_length=1024)
    network = forms.CharField(max_length=200)
    folder = forms.CharField(max_length=200)
    template = forms.CharField(max_length=200)
    vm_name = forms.CharField(
        label="VM name",
        max_length=63,
        help_text="A host name: lowercase letters, digits and hyphens, at most 63 characters.",
    )
    num_cpus = forms.IntegerField(label="CPUs")
    memory_mb = forms.IntegerField(label="Memory (MB)")
    disk_size_gb = forms.IntegerField(label="Disk (GB)")
    ip_mode = forms.ChoiceField(label="Network settings", choices=IpMode.choices, initial=IpMode.DHCP)
    ipv4_address = forms.CharField(label="IPv4 address", max_length=15, required=False)
    ipv4_prefix = forms.IntegerField(label="Prefix length", min_value=8, max_value=30, required=False)
    ipv4_gateway = forms.CharField(label="Gateway", max_length=15, required=False)
    dns_servers = forms.CharField(label="DNS servers", max_length=200, required=False, help_text="Comma-separated")
    domain = forms.CharField(max_length=253, help_text="The guest's DNS domain (Linux customization needs one).")
    notes = notes_field()

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Which VM holds an address is staff's to know (the VM list is staff-only); others learn only that it is taken.
        self.names_vms = bool(user is not None and user.is_staff)
        # Bounds are settings, so they are applied per form rather than at import.
        for field, (low, high) in settings.VMPROV_LIMITS.items():
            self.fields[field].validators += [MinValueValidator(low), MaxValueValidator(high)]
            self.fields[field].widget.attrs.update({"min": low, "max": high})
        self.fields["domain"].initial = settings.VMPROV_DEFAULT_DOMAIN
        # The page says next to the sizes which are approved without a person (#auto-approval).
        for field in ("num_cpus", "memory_mb", "disk_size_gb"):
            self.fields[field].widget.attrs["aria-describedby"] = "auto-approval"
        for name, message in REQUIRED.items():
            self.fields[name].error_messages["required"] = message
        # A longer name is refused with a message, not cut short by the browser without a word.
        self.fields["vm_name"].widget.attrs.pop("maxlength", None)
        # Filled in by clean(): what the posted ids resolve to in the inventory.
        self.resolved: dict[str, dict] = {}

    # --- single fields ---

    def clean_vm_name(self) -> str:
        name = self.cleaned_data["vm_name"].strip()
        if not HOSTNAME_LABEL.match(name):
            raise ValidationError(
                "Use a host name: lowercase letters a-z, digits and hyphens, not starting or ending with a hyphen."
            )
        return name

    def clean_domain(self) -> str:
        domain = self.cleaned_data["domain"].strip().lower().rstrip(".")
        if not DOMAIN_NAME.match(domain):
            raise ValidationError("Use a DNS domain such as example.com (letters, digits, hyphens and dots).")
        return domain

    def clean_ipv4_address(self) -> str:
        return _ipv4(self.cleaned_data["ipv4_address"])

    def clean_ipv4_gateway(self) -> str:
        return _ipv4(self.cleaned_data["ipv4_gateway"])

    def clean_dns_servers(self) -> list[str]:
        servers = [s.strip() for s in self.cleaned_data["dns_servers"].split(",") if s.strip()]
        for server in servers:
            _ipv4(server)
        if len(servers) > 4:
            raise ValidationError("At most four DNS servers.")
        return servers

    # --- the whole request, against the inventory ---

    def clean(self) -> dict:
        data = super().clean()
        if data.get("ip_mode") == IpMode.STATIC:
            self._clean_static_network(data)
        if any(field in self.errors for field in ("datacenter", "cluster")):
            return data
        try:
            self._clean_placement(data)
        except catalog.NotFound as error:
            raise ValidationError(f"The vSphere inventory changed while checking this request: {error}.") from None
        except catalog.Unavailable as error:
            raise ValidationError(
                f"The vSphere inventory cannot be read right now, so nothing was saved: {error}"
            ) from None
        return data

    def _clean_static_network(self, data: dict) -> None:
        address, prefix, gateway = data.get("ipv4_address"), data.get("ipv4_prefix"), data.get("ipv4_gateway")
        for field, value in (("ipv4_address", address), ("ipv4_prefix", prefix), ("ipv4_gateway", gateway)):
            if not value and field not in self.errors:
                self.add_error(field, "Required for a static address.")
        if not (address and prefix and gateway):
            return
        network = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
        if ipaddress.IPv4Address(gateway) not in network:
            self.add_error("ipv4_gateway", f"The gateway is not inside {network}.")
        elif gateway == address:
            self.add_error("ipv4_gateway", "The gateway cannot be the VM's own address.")
        if ipaddress.IPv4Address(address) in (network.network_address, network.broadcast_address):
            self.add_error("ipv4_address", f"{address} is the network or broadcast address of {network}.")

    def _clean_placement(self, data: dict) -> None:
        datacenter_id = data["datacenter"]
        try:
            datacenter = catalog.datacenter(datacenter_id)
        except catalog.NotFound:
            self.add_error("datacenter", "This datacenter is not in the vSphere inventory.")
            return
        self.resolved["datacenter"] = datacenter

        cluster = catalog.clusters(datacenter_id).by_id().get(data["cluster"])
        if cluster is None:
            self.add_error("cluster", f"This cluster is not in datacenter {datacenter['name']}.")
            return
        self.resolved["cluster"] = cluster
        resources = catalog.cluster_resources(cluster["id"])

        self._resolve(data, "resource_pool", resources.resource_pools, f"cluster {cluster['name']}")
        datastore = self._resolve(data, "datastore", resources.datastores, f"cluster {cluster['name']}")
        self._resolve(data, "network", resources.networks, f"cluster {cluster['name']}")
        self._resolve(data, "folder", catalog.folders(datacenter_id).items, f"datacenter {datacenter['name']}")
        template = self._resolve(data, "template", resources.templates.items, f"datacenter {datacenter['name']}")

        if datastore is not None:
            problem = datastore_problem(datastore)
            if problem:
                self.add_error("datastore", problem)
            elif data.get("disk_size_gb") and data["disk_size_gb"] * 2**30 > datastore["free_space"]:
                self.add_error(
                    "disk_size_gb",
                    f"Datastore {datastore['name']} has {gb_free(datastore['free_space'])} GB free.",
                )
        if template is not None:
            problem = template_problem(template)
            if problem:
                self.add_error("template", problem)
            elif data.get("disk_size_gb") and data["disk_size_gb"] < template["disks"][0]["size_gb"]:
                self.add_error(
                    "disk_size_gb",
                    f"The disk must be at least the template's {template['disks'][0]['size_gb']} GB.",
                )
        self._clean_uniqueness(data, datacenter, resources.templates.items)

    def _resolve(self, data: dict, field: str, items: list[dict], where: str) -> dict | None:
        if field in self.errors or not data.get(field):
            return None
        found = next((item for item in items if item["id"] == data[field]), None)
        if found is None:
            self.add_error(field, f"This {self.fields[field].label or field.replace('_', ' ')} is not in {where}.")
            return None
        self.resolved[field] = found
        return found

    def _clean_uniqueness(self, data: dict, datacenter: dict, templates: list[dict]) -> None:
        vms = catalog.vms(datacenter["id"]).items
        name = data.get("vm_name")
        if name:
            if any(vm["name"].lower() == name for vm in vms):
                self.add_error("vm_name", f"A VM named {name} already exists in {datacenter['name']}.")
            elif any(template["name"].lower() == name for template in templates):
                # A template is a VM to vCenter, which refuses a second one of the same name at clone time.
                self.add_error("vm_name", f"A template named {name} already exists in {datacenter['name']}.")
            elif VMRequest.objects.open().filter(datacenter_id=datacenter["id"], vm_name=name).exists():
                self.add_error(
                    "vm_name", f"An open request already asks for a VM named {name} in {datacenter['name']}."
                )
        address = data.get("ipv4_address") if data.get("ip_mode") == IpMode.STATIC else None
        if address and "ipv4_address" not in self.errors:
            holder = _vm_with_address(address, vms, datacenter["id"])
            if holder is not None:
                by_vm = f" by VM {holder['name']}" if self.names_vms else ""
                self.add_error("ipv4_address", f"{address} is already in use{by_vm}.")
            elif VMRequest.objects.open().filter(ipv4_address=address).exists():
                self.add_error("ipv4_address", f"{address} is already taken by an open request.")


def error_summary(form: forms.Form, labels: dict[str, str] | None = None) -> list[dict]:
    """Every error of a refused form for the summary at the top of its page: the form's own errors first, then
    each field's, linked to the field and named by its label (or by `labels`, for fields a page renders itself)."""
    labels = labels or {}
    summary = [{"field_id": "", "label": "", "message": message} for message in form.non_field_errors()]
    for name, errors in form.errors.items():
        if name in form.fields:
            field = form[name]
            label = labels.get(name) or field.label
            summary += [{"field_id": field.id_for_label, "label": label, "message": m} for m in errors]
    return summary


def datastore_problem(datastore: dict) -> str | None:
    """Why no VM can go on `datastore` (the form's list shows such datastores disabled, with the reason); None when
    one can. Whether a given disk fits is the disk's question, asked in clean()."""
    if not datastore["accessible"]:
        return f"Datastore {datastore['name']} is not accessible."
    if datastore["maintenance_mode"] != "normal":
        return f"Datastore {datastore['name']} is in maintenance mode."
    if datastore["free_space"] <= 0:
        return f"Datastore {datastore['name']} is full ({gb_free(datastore['free_space'])} GB free)."
    return None


def gb_free(free_space: int) -> str:
    """Free bytes as whole GB, rounded down, with a true minus sign (as the form's list writes them)."""
    return str(free_space // 2**30).replace("-", "\u2212")


def template_problem(template: dict) -> str | None:
    """Why vmprov cannot clone `template` (the form's list marks such templates too); None when it can."""
    guest = (template.get("guest_id") or "").lower()
    if guest.startswith(UNSUPPORTED_GUESTS):
        return (
            f"Template {template['name']} is a Windows guest ({template['guest_id']}); vmprov customizes "
            "Linux guests only (Windows needs a computer name of at most 15 characters and an administrator "
            "password, which this form does not take)."
        )
    if not template.get("disks"):
        return f"Template {template['name']} has no disk to clone."
    if not template.get("nic_types"):
        return f"Template {template['name']} has no network adapter to connect."
    return None


def _vm_with_address(address: str, vms: list[dict], datacenter_id: str) -> dict | None:
    """A VM of the inventory that reports `address`: this datacenter's first, then every other's."""
    for vm in vms:
        if address in vm.get("ip_addresses", []):
            return vm
    for other in catalog.datacenters().items:
        if other["id"] != datacenter_id:
            found = next((vm for vm in catalog.vms(other["id"]).items if address in vm.get("ip_addresses", [])), None)
            if found is not None:
                return found
    return None


def _ipv4(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValidationError(
            f"{value[:40]!r} is not an IPv4 address: four numbers from 0 to 255 with dots between, such as 10.0.0.10."
        ) from None


class ChangeForm(forms.Form):
    """New values for a delivered VM, starting from those last applied: its size (the first disk only grows) and
    its notes."""

    num_cpus = forms.IntegerField(label="CPUs")
    memory_mb = forms.IntegerField(label="Memory (MB)")
    disk_size_gb = forms.IntegerField(label="First disk (GB)")
    notes = notes_field()

    def __init__(self, *args, vm: VMRequest, applied: dict, **kwargs):
        kwargs.setdefault("initial", {name: applied[name] for name in self.base_fields})
        super().__init__(*args, **kwargs)
        self.vm, self.applied = vm, applied
        for field, (low, high) in settings.VMPROV_LIMITS.items():
            self.fields[field].validators += [MinValueValidator(low), MaxValueValidator(high)]
            self.fields[field].widget.attrs.update({"min": low, "max": high})
            self.fields[field].error_messages["required"] = REQUIRED[field]
        smallest = max(applied["disk_size_gb"], settings.VMPROV_LIMITS["disk_size_gb"][0])
        self.fields["disk_size_gb"].widget.attrs["min"] = smallest
        self.fields["disk_size_gb"].help_text = f"Disks only grow: {smallest} GB or more."

    def clean_disk_size_gb(self) -> int:
        size = self.cleaned_data["disk_size_gb"]
        problem = shrink_problem(self.applied["disk_size_gb"], size)
        if problem:
            raise ValidationError(f"Disks only grow: {problem}.")
        return size

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        if all(data.get(name) == self.applied[name] for name in self.base_fields):
            raise ValidationError("Nothing changes: these are the values the VM has now.")
        growth = data["disk_size_gb"] - self.applied["disk_size_gb"]
        if growth > 0:
            free = self._datastore_free_space()
            if free is not None and growth * 2**30 > free:
                self.add_error("disk_size_gb", f"Datastore {self.vm.datastore_name} has {free // 2**30} GB free.")
        return data

    def _datastore_free_space(self) -> int | None:
        """The VM's datastore's free bytes as the inventory knows them; None when it cannot tell (the plan will)."""
        try:
            datastores = catalog.cluster_resources(self.vm.cluster_id).datastores
        except (catalog.NotFound, catalog.Unavailable):
            return None
        found = next((item for item in datastores if item["id"] == self.vm.datastore_id), None)
        return found["free_space"] if found else None


class DecommissionForm(forms.Form):
    """Why a delivered VM goes, with its name typed again: a decommission destroys the VM and its disks."""

    confirm_name = forms.CharField(
        label="VM name",
        max_length=63,
        # Phones would capitalise the first letter, and no host name vmprov creates has one.
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="The approver reads it, and it stays in the VM's history; at most 2,000 characters.",
        error_messages={"required": "Say why the VM is decommissioned."},
    )

    def __init__(self, *args, vm: VMRequest, **kwargs):
        super().__init__(*args, **kwargs)
        self.vm = vm
        confirm_name = self.fields["confirm_name"]
        confirm_name.help_text = f"Type {vm.vm_name} to confirm that this is the VM to destroy."
        confirm_name.error_messages["required"] = self._type_the_name()

    def _type_the_name(self) -> str:
        return f"Type the VM's name, {self.vm.vm_name}, to confirm."

    def clean_confirm_name(self) -> str:
        name = self.cleaned_data["confirm_name"].strip()
        if name != self.vm.vm_name:
            raise ValidationError(f"This is not the VM's name. {self._type_the_name()}")
        return name
