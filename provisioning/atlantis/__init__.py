"""Atlantis I/O: the one place that asks Atlantis to plan or apply a VM's directory through its API.

Callers write `from provisioning import atlantis; result = atlantis.plan(branch, directory)` and read
`result.outcome` (an `Outcome`). The contract is Atlantis's API from v0.34 to v0.47 (v0.34 is the first that clones
before planning through the API): `POST /api/plan` and `POST /api/apply`, the token in `X-Atlantis-Token`.

- `config`: the ATLANTIS_* settings, read and checked once; `settings_problems()` for a system check.
- `payload`: the request body (`Repository`, `Ref`, `Type`, `Paths`; no `PR`).
- `lock`: the per-repository Redis lock that keeps calls for one repository from overlapping at Atlantis.
- `transport`: the HTTP call and its failures classified as not sent / unanswered.
- `response`: every shape of Atlantis's answer read into a result.
- `result`: `Outcome`, `AtlantisResult`, `ProjectResult`, `plan_counts()`.
- `client`: `plan()` and `apply()`.
"""

from provisioning.atlantis.client import apply, plan
from provisioning.atlantis.config import AtlantisConfig, AtlantisConfigError, current_config, settings_problems
from provisioning.atlantis.lock import lock_key, lock_name
from provisioning.atlantis.result import AtlantisResult, Outcome, ProjectResult, plan_counts

__all__ = [
    "AtlantisConfig",
    "AtlantisConfigError",
    "AtlantisResult",
    "Outcome",
    "ProjectResult",
    "apply",
    "current_config",
    "lock_key",
    "lock_name",
    "plan",
    "plan_counts",
    "settings_problems",
]
