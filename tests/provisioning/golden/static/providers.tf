terraform {
  required_providers {
    vsphere = {
      source  = "hashicorp/vsphere"
      version = "~> 2.4.0"
    }
  }
  required_version = ">= 1.0.0"

  # One state per VM. A backend block cannot read variables, so its key is a literal, built only from the
  # datacenter id and the VM name reduced to [a-z0-9-]. Credentials come from Atlantis's environment.
  backend "pg" {
    schema_name = "vmprov_datacenter-2_db-01"
  }
}

# Connection settings left null fall back to VSPHERE_USER, VSPHERE_PASSWORD and VSPHERE_SERVER in Atlantis's
# environment (TF_VAR_vsphere_user etc. work too). allow_unverified_ssl is false unless Atlantis sets
# TF_VAR_allow_unverified_ssl=true (VSPHERE_ALLOW_UNVERIFIED_SSL has no effect: the provider reads it only when the
# argument is unset).
provider "vsphere" {
  user                 = var.vsphere_user
  password             = var.vsphere_password
  vsphere_server       = var.vsphere_server
  allow_unverified_ssl = var.allow_unverified_ssl
}
