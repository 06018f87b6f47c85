# One VM request, rendered by vmprov.
vm_name    = "web01"
annotation = "Requested by alice for the web tier"

template_uuid         = "42170f2e-8a0b-4c1d-9e2f-000000000001"
guest_id              = "ubuntu64Guest"
scsi_type             = "pvscsi"
scsi_controller_count = 1
firmware              = "efi"
network_adapter_type  = "vmxnet3"

resource_pool_id = "resgroup-8"
datastore_id     = "datastore-15"
network_id       = "dvportgroup-20"
folder           = ""

num_cpus  = 2
memory_mb = 4096

disks = [
  { size = 40, unit_number = 0, thin_provisioned = true, eagerly_scrub = false },
  { size = 50, unit_number = 1, thin_provisioned = false, eagerly_scrub = true },
]

domain       = "example.com"
ipv4_address = null
ipv4_prefix  = null
ipv4_gateway = null
dns_servers  = []
