"""Enumerations of a request's fields (statuses live with their rules in `provisioning.lifecycle`)."""

from django.db import models


class IpMode(models.TextChoices):
    DHCP = "dhcp", "DHCP"
    STATIC = "static", "Static IPv4"
