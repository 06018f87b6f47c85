"""What a page shows of a request's progress: the lifecycle's steps for its status, when each began and how long
it took, read from the request's history. The steps themselves (and which statuses belong to which) are
`lifecycle.STEPS`; this module only lays the history over them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from provisioning import lifecycle
from provisioning.models import RequestEvent


@dataclass(frozen=True)
class TimedStep:
    label: str
    state: str  # lifecycle.StepState.state: done, current, failed, attention or todo
    began: datetime | None
    took: timedelta | None  # so far, for the step the request is at

    @property
    def took_text(self) -> str:
        return duration_text(self.took) if self.took is not None else ""


def timed_steps(
    status: str,
    events: Iterable[RequestEvent],
    kind: str = lifecycle.RequestKind.CREATE,
    *,
    now: datetime | None = None,
) -> list[TimedStep]:
    """The steps of a request in `status` with their times. A step entered again (a retry) counts from its last
    entry; the step the request is at runs until now, unless the request has settled."""
    steps = lifecycle.STEPS[kind]
    index_of = {status: i for i, step in enumerate(steps) for status in step.statuses}
    moves = [event for event in events if event.from_status != event.to_status]  # notes keep the status
    began: dict[int, datetime] = {}
    ended: dict[int, datetime] = {}
    current = None
    for event in moves:
        index = index_of[event.to_status]
        if index == current:
            continue
        if current is not None:
            ended[current] = event.at
        for later in [i for i in began if i >= index]:  # sent back (a retry): those steps are done afresh
            began.pop(later)
            ended.pop(later, None)
        began[index], current = event.at, index
    if current is not None and status in lifecycle.SETTLED_STATUSES:
        ended[current] = moves[-1].at  # settled: the clock of its last step stops there
    now = now or timezone.now()
    timed = []
    for index, state in enumerate(lifecycle.progress(status, kind)):
        start = began.get(index)
        took = (ended.get(index) or now) - start if start is not None else None
        timed.append(TimedStep(state.step.label, state.state, start, took))
    return timed


def duration_text(took: timedelta) -> str:
    """A short duration people read at a glance: "4 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"."""
    seconds = max(0, round(took.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
