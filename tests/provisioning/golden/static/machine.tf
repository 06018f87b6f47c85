# Every value comes from terraform.tfvars; this file is the same for every VM vmprov renders.
resource "vsphere_virtual_machine" "vm" {
  name             = var.vm_name
  resource_pool_id = var.resource_pool_id
  datastore_id     = var.datastore_id
  folder           = var.folder
  annotation       = var.annotation

  num_cpus  = var.num_cpus
  memory    = var.memory_mb
  guest_id  = var.guest_id
  scsi_type = var.scsi_type
  firmware  = var.firmware

  # On from the start: a later resize then adds CPUs and memory without restarting the guest. (Turning them on
  # for an existing VM restarts it, which is why a change never re-renders this file.)
  cpu_hot_add_enabled    = true
  memory_hot_add_enabled = true

  network_interface {
    network_id   = var.network_id
    adapter_type = var.network_adapter_type
  }

  # Disk unit numbers count across SCSI buses, 15 per bus (SCSI1:0 is 15); the provider only manages, and only
  # finds the template's disks on, buses 0 to scsi_controller_count - 1.
  scsi_controller_count = var.scsi_controller_count

  # A clone needs one disk block per template disk, labelled disk0, disk1, … in unit number order.
  dynamic "disk" {
    for_each = var.disks
    content {
      label            = "disk${disk.key}"
      size             = disk.value.size
      unit_number      = disk.value.unit_number
      thin_provisioned = disk.value.thin_provisioned
      eagerly_scrub    = disk.value.eagerly_scrub
    }
  }

  clone {
    template_uuid = var.template_uuid

    customize {
      linux_options {
        host_name = var.vm_name
        domain    = var.domain
      }

      # For DHCP the values file sets these to null, which Terraform treats as unset: the interface block is then
      # empty, which the provider reads as DHCP.
      network_interface {
        ipv4_address = var.ipv4_address
        ipv4_netmask = var.ipv4_prefix
      }

      ipv4_gateway    = var.ipv4_gateway
      dns_server_list = var.dns_servers
    }
  }
}
