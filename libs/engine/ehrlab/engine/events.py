"""In-process fan-out of experiment events to WatchExperiment streams.

Watchers always start from a snapshot read after subscribing, so nothing is missed between the
snapshot and the first change; after a controller restart they reconnect and get a fresh snapshot.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import Any

END = object()  # put on a subscription when its experiment finished


class Subscription:
    def __init__(self, bus: EventBus, experiment_id: str) -> None:
        self.bus = bus
        self.experiment_id = experiment_id
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def get(self, timeout: float) -> Any:
        """The next event, END when the experiment finished, or None on timeout."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.bus._unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, experiment_id: str) -> Subscription:
        sub = Subscription(self, experiment_id)
        with self._lock:
            self._subscribers[experiment_id].add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(sub.experiment_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[sub.experiment_id]

    def watched(self, experiment_id: str) -> bool:
        return experiment_id in self._subscribers

    def publish(self, experiment_id: str, event: Any) -> None:
        with self._lock:
            subs = list(self._subscribers.get(experiment_id, ()))
        for sub in subs:
            sub.queue.put(event)

    def finish(self, experiment_id: str) -> None:
        self.publish(experiment_id, END)
