"""Delivery of a request through Git and Atlantis, as django-q2 jobs on the `delivery` cluster.

- `queue`: how a step is queued (after the transaction commits, on the delivery cluster, or later).
- `steps`: the worker steps — push, plan, apply, and watching for the new VM.
- `approval`: the auto-approval policy.
- `actions`: what people do — approve, reject, cancel, retry, and settle a request that needs attention.
- `reaper`: requeues steps lost with a worker.

The rules (which status allows what, for whom) are `provisioning.lifecycle`'s. The steps are importable from
here as well, so a job queued under its former path (`provisioning.delivery.push`) still runs.
"""

from provisioning.delivery.reaper import reap
from provisioning.delivery.steps import apply, plan, push, watch

__all__ = ["apply", "plan", "push", "reap", "watch"]
