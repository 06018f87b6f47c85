"""Queueing delivery steps: on the `delivery` django-q2 cluster, once the current transaction commits."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

# Its own cluster: its `retry` outlasts an apply, so a running apply is never handed out twice.
DELIVERY_CLUSTER = "delivery"
STEPS_MODULE = "provisioning.delivery.steps"
# django-q2's cluster looks for due schedules about every 30 s: a step queued for later runs up to that late.
SCHEDULER_TICK_SECONDS = 30


def enqueue(step: str, request_id: int, *args) -> None:
    """Queue `step` for a request once the current transaction commits (never for a row nobody can see yet)."""
    transaction.on_commit(
        lambda: async_task(
            f"{STEPS_MODULE}.{step}",
            request_id,
            *args,
            cluster=DELIVERY_CLUSTER,
            task_name=f"{step} request {request_id}",
            group="delivery",
        )
    )


def enqueue_later(step: str, request_id: int, seconds: int, *args) -> None:
    """Run `step` once, `seconds` from now (the delivery cluster's scheduler picks it up)."""
    Schedule.objects.create(
        name=f"{step} request {request_id} at {timezone.now():%H:%M:%S.%f}",
        func=f"{STEPS_MODULE}.{step}",
        args=",".join(str(arg) for arg in (request_id, *args)),
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + timedelta(seconds=seconds),
        cluster=DELIVERY_CLUSTER,
    )


def later_interval(seconds: int) -> str:
    """How long `enqueue_later(seconds)` really waits, said truthfully for a request's history."""
    return f"{seconds} to {seconds + SCHEDULER_TICK_SECONDS} s"


def start(vm_request) -> None:
    """A submitted request's delivery begins with its push."""
    enqueue("push", vm_request.pk)
