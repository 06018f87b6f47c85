"""Jinja2 templates of the Terraform vmprov renders (package data)."""
