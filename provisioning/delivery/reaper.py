"""Lost jobs: a periodic job requeues delivery steps that stopped making progress (a worker died, a queue row
was lost). Requeueing is safe: every step claims its request by status. An apply in flight is never requeued:
it goes to needs_attention, and vmprov looks for the VM."""

from __future__ import annotations

from django.utils import timezone
from django_q.models import Schedule

from provisioning import lifecycle
from provisioning.delivery.queue import DELIVERY_CLUSTER, enqueue
from provisioning.lifecycle import RequestStatus
from provisioning.models import TransitionRefused, VMRequest

S = RequestStatus
REAPER_SCHEDULE = "delivery: requeue lost steps"


def reap() -> list[str]:
    """Requeue every step whose request went without progress longer than the lifecycle allows."""
    now = timezone.now()
    done = []
    for status, age in lifecycle.stale_after().items():
        for vm_request in VMRequest.objects.filter(status=status, updated_at__lt=now - age).select_related("requester"):
            silent = f"no progress since {vm_request.updated_at:%Y-%m-%d %H:%M:%S} UTC"
            if status == S.APPLYING:
                try:
                    vm_request.transition(
                        S.NEEDS_ATTENTION,
                        message=f"The apply job did not report back ({silent}); vmprov looks for the VM.",
                    )
                except TransitionRefused:
                    continue
                enqueue("watch", vm_request.pk, 0)
            elif status == S.PUSHING:
                # Back to submitted, so that exactly one new push job can claim it again.
                try:
                    vm_request.transition(S.SUBMITTED, message=f"The push step is queued again ({silent}).")
                except TransitionRefused:
                    continue
                enqueue("push", vm_request.pk)
            else:
                step = lifecycle.NEXT_STEP[status]
                VMRequest.objects.filter(pk=vm_request.pk, status=status).update(updated_at=now)
                vm_request.note(f"The {step} step is queued again ({silent}).")
                enqueue(step, vm_request.pk, *((0,) if step == "watch" else ()))
            done.append(f"{vm_request.pk}:{status}")
    return done


def register_reaper() -> Schedule:
    """The reaper's schedule (every 5 minutes on the delivery cluster); registered again after every migrate."""
    schedule, _ = Schedule.objects.update_or_create(
        name=REAPER_SCHEDULE,
        defaults={
            "func": "provisioning.delivery.reaper.reap",
            "schedule_type": Schedule.MINUTES,
            "minutes": 5,
            "repeats": -1,
            "cluster": DELIVERY_CLUSTER,
        },
    )
    return schedule
