"""Pointing vmprov at the tests' own services: a vcsim, a real (or dead, or hung) Redis."""

import copy


def use_vcenter(settings, vcsim) -> None:
    settings.VSPHERE_SERVER = vcsim.server
    settings.VSPHERE_USER = vcsim.user
    settings.VSPHERE_PASSWORD = vcsim.password
    settings.VSPHERE_ALLOW_UNVERIFIED_SSL = True  # vcsim's certificate is self-signed
    settings.VSPHERE_TIMEOUT = 5


def use_redis(settings, url: str) -> None:
    """Point the cache at a real Redis URL (or at a dead or hung one) instead of fakeredis."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = url
    caches["default"]["OPTIONS"].pop("CONNECTION_POOL_KWARGS", None)
    settings.CACHES = caches
