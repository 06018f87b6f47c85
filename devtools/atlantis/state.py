"""What the Atlantis double remembers between calls, as Terraform's backend would: one state per backend, and the
provider that carries out a plan's changes.

- `StateStore`: the states, keyed by the directory's backend block (its type and settings, which name the state:
  vmprov's per-VM `schema_name`, `key`, ...). Like a remote backend, a state outlives Atlantis's working directory:
  a later plan of the same directory sees what an earlier apply created, and plans a change or a destroy of it.
- `Provider`: create, read (refresh), update and delete one resource. `SimulatedProvider` touches nothing (ids are
  made up, nothing ever drifts); `devtools.atlantis.vcenter.VCenterProvider` does it in vcsim.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class StateResource:
    """One managed object in a state: its id, its attributes as last applied, and the directory's values then."""

    id: str
    attributes: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)


class StateStore:
    """Every state the double's backends hold, in memory (one per backend block)."""

    def __init__(self) -> None:
        self._states: dict[str, dict[str, StateResource]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(backend: dict[str, Any]) -> str:
        """The state a backend block names: its type and its settings, as Terraform's backend would find it."""
        return json.dumps(backend, sort_keys=True, default=str)

    def resources(self, key: str) -> dict[str, StateResource]:
        """address -> resource of one state (a copy: a plan never changes a state)."""
        with self._lock:
            return dict(self._states.get(key, {}))

    def put(self, key: str, address: str, resource: StateResource) -> None:
        with self._lock:
            self._states.setdefault(key, {})[address] = resource

    def remove(self, key: str, address: str) -> None:
        with self._lock:
            self._states.get(key, {}).pop(address, None)


class Provider(Protocol):
    """What Terraform asks of a provider for one resource. Any exception is the provider's error: the apply fails."""

    def create(self, directory: Path, values: dict[str, Any], attributes: dict[str, Any]) -> str:
        """Create the object; returns its id."""

    def read(self, resource_id: str) -> dict[str, Any] | None:
        """What the object is now, as attribute paths (e.g. {"num_cpus": 4, "disk[0].size": 40}); None when it is
        gone. Attributes left out are taken as they were applied."""

    def update(self, resource_id: str, values: dict[str, Any], attributes: dict[str, Any], changed: list[str]) -> None:
        """Change the object in place to `attributes` (`changed`: the attribute paths that differ)."""

    def delete(self, resource_id: str) -> None:
        """Destroy the object."""


class SimulatedProvider:
    """A provider that creates nothing real: made-up ids, no drift, updates and deletes that always succeed."""

    def create(self, directory: Path, values: dict[str, Any], attributes: dict[str, Any]) -> str:
        return str(uuid.uuid4())

    def read(self, resource_id: str) -> dict[str, Any] | None:
        return {}

    def update(self, resource_id: str, values: dict[str, Any], attributes: dict[str, Any], changed: list[str]) -> None:
        pass

    def delete(self, resource_id: str) -> None:
        pass
