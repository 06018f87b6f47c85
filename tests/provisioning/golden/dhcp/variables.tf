# vCenter connection. null means "not set here": the vsphere provider then reads its own environment variables.
# allow_unverified_ssl is the exception: false unless Atlantis's environment sets TF_VAR_allow_unverified_ssl=true.
variable "vsphere_user" {
  type        = string
  default     = null
  description = "vCenter user; null falls back to VSPHERE_USER."
}

variable "vsphere_password" {
  type        = string
  default     = null
  sensitive   = true
  description = "vCenter password; null falls back to VSPHERE_PASSWORD."
}

variable "vsphere_server" {
  type        = string
  default     = null
  description = "vCenter host name; null falls back to VSPHERE_SERVER."
}

variable "allow_unverified_ssl" {
  type        = bool
  default     = false
  description = "Accept a self-signed vCenter certificate; Atlantis turns it on with TF_VAR_allow_unverified_ssl=true."
}

# The VM request. Placement is by managed object id, never by name: names are not unique in vCenter.
variable "vm_name" {
  type        = string
  description = "VM name in vCenter, also the guest host name."
}

variable "resource_pool_id" {
  type        = string
  description = "Managed object id of the resource pool (a cluster's root pool or a child pool)."
}

variable "datastore_id" {
  type        = string
  description = "Managed object id of the datastore."
}

variable "network_id" {
  type        = string
  description = "Managed object id of the network or distributed port group."
}

variable "network_adapter_type" {
  type        = string
  description = "Adapter type of the template's first NIC (e.g. vmxnet3)."
}

variable "folder" {
  type        = string
  description = "VM folder path relative to the datacenter's vm folder; empty for its root."
}

variable "template_uuid" {
  type        = string
  description = "UUID of the template to clone."
}

variable "guest_id" {
  type        = string
  description = "Guest OS identifier of the template."
}

variable "scsi_type" {
  type        = string
  description = "SCSI controller type of the template."
}

variable "scsi_controller_count" {
  type        = number
  description = "SCSI controllers the template's disks sit on (highest bus number + 1, 1 to 4)."
}

variable "firmware" {
  type        = string
  description = "Firmware of the template (bios or efi)."
}

variable "num_cpus" {
  type        = number
  description = "Number of virtual CPUs."
}

variable "memory_mb" {
  type        = number
  description = "Memory in MB."
}

variable "disks" {
  type = list(object({
    size             = number
    unit_number      = number
    thin_provisioned = bool
    eagerly_scrub    = bool
  }))
  description = "One entry per template disk, in unit number order; sizes in GB, never below the template's."
}

variable "domain" {
  type        = string
  description = "DNS domain given to the guest by customization."
}

variable "ipv4_address" {
  type        = string
  description = "Static IPv4 address; null for DHCP."
}

variable "ipv4_prefix" {
  type        = number
  description = "Prefix length of the static address; null for DHCP."
}

variable "ipv4_gateway" {
  type        = string
  description = "Default gateway of the static address; null for DHCP."
}

variable "dns_servers" {
  type        = list(string)
  description = "DNS servers for a static address; empty for DHCP."
}

variable "annotation" {
  type        = string
  description = "Notes shown on the VM in vCenter."
}
