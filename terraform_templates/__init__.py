"""Templates of the Terraform files vmprov renders (read by provisioning.terraform through importlib.resources)."""
