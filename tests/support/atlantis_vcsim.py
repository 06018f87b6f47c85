"""The tests' bridge between a started vcsim and the Atlantis double: the double's provider works in that vcsim.

The vCenter effects themselves (clone, resize, destroy) are devtools.vsphere_provider's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.terraform_sim import SimulatedProvider
from devtools.vcsim import Vcsim
from devtools.vsphere_provider import VCenterProvider


def provider_in(vcsim: Vcsim) -> VCenterProvider:
    """The double's provider for this vcsim: VMs are cloned, resized and destroyed there."""
    return VCenterProvider(vcsim.url)


class FakeCreation(SimulatedProvider):
    """A provider whose creation reports success and makes no VM (Terraform said so; vCenter never shows it)."""


class FailingCreation(SimulatedProvider):
    """A provider whose creation fails with `message` (e.g. vCenter's error), as `terraform apply` would."""

    def __init__(self, message: str) -> None:
        self.message = message

    def create(self, directory: Path, values: dict[str, Any], attributes: dict[str, Any]) -> str:
        raise RuntimeError(self.message)


class HookedCreation:
    """`inner`, with `before(values)` run first on every creation; it may hand back other values to create with."""

    def __init__(self, inner, before: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        self.inner = inner
        self.before = before

    def create(self, directory: Path, values: dict[str, Any], attributes: dict[str, Any]) -> str:
        values = self.before(values) or values
        return self.inner.create(directory, values, attributes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
