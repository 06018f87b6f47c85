"""Machine specs the rendering, Git and Atlantis tests share: a DHCP and a static request, hostile text, and a
template with disks on two SCSI controllers."""

import dataclasses

from provisioning.terraform.spec import MachineSpec, TemplateDisk, TemplateSpec

# Every kind of text that must not break out of an HCL string.
HOSTILE_TEXT = (
    'quote " backslash \\ ${var.vsphere_password} %{ if true }x%{ endif } $${ %%{ \n'
    "CR\r tab\t nul\x00 bell\x07 del\x7f rtl \u202e\u05e9\u05dc\u05d5\u05dd emoji 👩\u200d💻 trailing \\"
)


def make_template(**changes) -> TemplateSpec:
    template = TemplateSpec(
        uuid="42170f2e-8a0b-4c1d-9e2f-000000000001",
        guest_id="ubuntu64Guest",
        scsi_type="pvscsi",
        firmware="efi",
        nic_types=("vmxnet3", "e1000e"),
        disks=(
            TemplateDisk(label="Hard disk 1", size_gb=20, thin=True, eagerly_scrub=False, unit_number=0),
            TemplateDisk(label="Hard disk 2", size_gb=50, thin=False, eagerly_scrub=True, unit_number=1),
        ),
    )
    return dataclasses.replace(template, **changes)


def dhcp_spec(**changes) -> MachineSpec:
    spec = MachineSpec(
        vm_name="web01",
        datacenter_id="datacenter-2",
        datacenter_name="DC0",
        cluster_id="domain-c7",
        cluster_name="Cluster 0",
        resource_pool_id="resgroup-8",
        datastore_id="datastore-15",
        network_id="dvportgroup-20",
        folder="",
        template=make_template(),
        num_cpus=2,
        memory_mb=4096,
        disk_size_gb=40,
        domain="example.com",
        annotation="Requested by alice for the web tier",
    )
    return dataclasses.replace(spec, **changes)


def static_spec(**changes) -> MachineSpec:
    spec = dhcp_spec(
        vm_name="db-01",
        folder="Team A/db%2fprod",
        ipv4_address="10.20.30.40",
        ipv4_prefix=24,
        ipv4_gateway="10.20.30.1",
        dns_servers=("10.20.0.53", "10.20.1.53"),
        annotation='Owner: "bob"\nTicket: OPS-1',
    )
    return dataclasses.replace(spec, **changes)


def hostile_spec() -> MachineSpec:
    """User-reachable fields full of HCL metacharacters (ids too: a bug upstream must not become an injection)."""
    return static_spec(
        annotation=HOSTILE_TEXT,
        folder=f"dir/{HOSTILE_TEXT}",
        domain=f"{HOSTILE_TEXT}.example",
        datastore_id=f"datastore-{HOSTILE_TEXT}",
        template=make_template(guest_id=f"guest-{HOSTILE_TEXT}"),
    )


def two_controller_spec() -> MachineSpec:
    """A template with disks on SCSI0:0, SCSI0:8 and SCSI1:0, numbered as the vsphere provider numbers them."""
    return dhcp_spec(
        template=make_template(
            scsi_controller_count=2,
            disks=(
                TemplateDisk(label="Hard disk 1", size_gb=20, unit_number=0),
                TemplateDisk(label="Hard disk 2", size_gb=30, unit_number=7),
                TemplateDisk(label="Hard disk 3", size_gb=50, unit_number=15),
            ),
        )
    )
