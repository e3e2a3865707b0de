"""Ray Client's side of Ray Tune's executor: under Ray Client, Tune's loop runs in an actor on the cluster,
so the `Recorder`'s trial events reach the driver's `Mirror` through a named actor, the outbox, which
the driver drains while the search runs. Without Ray Client the recorder calls the mirror directly.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import ray

if TYPE_CHECKING:
    from hpsearch.backends.base import StudyView


class EventSink(Protocol):
    """What takes the `Recorder`'s trial events in the driver (`ray_tune.Mirror`): each event is one of its methods,
    called by name; `trials` is the study it records them in."""

    trials: StudyView


mirrors: dict[str, EventSink] = {}  # study name -> the mirror of the search this driver runs


@ray.remote(num_cpus=0)
class _Outbox:
    """Under Ray Client, where Tune's loop runs in an actor on the cluster: the events of its
    `Recorder`, until the driver takes them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple]] = []

    def put(self, event: tuple[str, tuple]) -> None:
        self.events.append(event)

    def take(self) -> list[tuple[str, tuple]]:
        events, self.events = self.events, []
        return events


def outbox_name(study_name: str) -> str:
    return f"hpsearch-events-{study_name}"


@contextlib.contextmanager
def mirroring(mirror: EventSink) -> Iterator[None]:
    """The mirror of this driver's search, found by the `Recorder` in this process or, under Ray
    Client, fed from its outbox by a thread while Tune runs."""
    mirrors[mirror.trials.settings.study_name] = mirror
    stop = threading.Event()
    drain = None
    if ray.util.client.ray.is_connected():
        outbox = _Outbox.options(name=outbox_name(mirror.trials.settings.study_name)).remote()

        def deliver() -> None:
            for method, args in ray.get(outbox.take.remote()):
                getattr(mirror, method)(*args)

        def keep_delivering() -> None:
            while not stop.wait(0.5):
                deliver()

        drain = threading.Thread(target=keep_delivering, name="hpsearch-ray-events", daemon=True)
        drain.start()
    try:
        yield
    finally:
        del mirrors[mirror.trials.settings.study_name]
        if drain is not None:
            stop.set()
            drain.join()
            deliver()
            ray.kill(outbox)
