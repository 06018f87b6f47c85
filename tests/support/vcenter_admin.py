"""Test-side vCenter administration (renames, new objects) through pyVmomi, as an operator would."""

from __future__ import annotations

import ssl
from contextlib import contextmanager
from urllib.parse import urlsplit

from pyVim import connect
from pyVim.task import WaitForTask
from pyVmomi import vim


@contextmanager
def admin_session(vcsim):
    parts = urlsplit(vcsim.url)
    si = connect.SmartConnect(
        host=parts.hostname,
        port=parts.port,
        user=vcsim.user,
        pwd=vcsim.password,
        sslContext=ssl._create_unverified_context(),
    )
    try:
        yield si
    finally:
        connect.Disconnect(si)


def find(si, vim_type, name: str, within=None):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(within or content.rootFolder, [vim_type], True)
    try:
        matches = [obj for obj in view.view if obj.name == name]
    finally:
        view.DestroyView()
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} {vim_type.__name__} named {name!r}")
    return matches[0]


def rename(si, vim_type, old: str, new: str, within=None):
    obj = find(si, vim_type, old, within)
    WaitForTask(obj.Rename_Task(new))
    return obj._moId


def create_pool(parent, name: str) -> str:
    """A child resource pool (vcsim cannot rename pools, but creates them with any name)."""
    allocation = vim.ResourceAllocationInfo(
        reservation=0, expandableReservation=True, limit=-1, shares=vim.SharesInfo(level="normal", shares=0)
    )
    spec = vim.ResourceConfigSpec(cpuAllocation=allocation, memoryAllocation=allocation)
    return parent.CreateResourcePool(name, spec)._moId


def count_entities(si, vim_type) -> int:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim_type], True)
    try:
        return len(view.view)
    finally:
        view.DestroyView()


__all__ = ["admin_session", "count_entities", "create_pool", "find", "rename", "vim"]
