"""System check vmprov.E001: the vSphere and watcher settings, checked once when a process starts
(`manage.py check`)."""

from __future__ import annotations

from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def vsphere_settings(app_configs=None, **kwargs) -> list[Error]:
    # Imported here: the vSphere modules load pyVmomi, which a web process needs only when it collects.
    from inventory import vsphere, watcher

    return [
        Error(problem, hint="See README: Configuration (VSPHERE_*, INVENTORY_*).", id="vmprov.E001")
        for problem in vsphere.settings_problems() + watcher.settings_problems()
    ]
