"""Cohorts: deferred Postfix mail that moves through the queue as one object.

A backlog to a dead destination is deferred again at every retry: without cohorts each
pass touches every backlogged message, so a world's cost grows with the square of its
backlog's age (issue 13). A cohort is a run of messages, in arrival order, that were
deferred together and are due together. A pass over a cohort finds the messages that
expire, that cross the delay-warning age, and that are still young enough to back off
by their own age by bisection on arrival time; the rest (age >= maximal_backoff_time,
so all due at the same queue run) move as one object without being touched.

Arrival order is what makes the bisection valid: a message's age at a pass is
``int(now) - int(arrival)``, so ages fall along the cohort.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from operator import attrgetter

from sim.model.message import DomainStats, Message

arrival_of = attrgetter("arrival")


def arrival_bound(age: float, now: int) -> float:
    """Messages that arrived before this are at least ``age`` seconds old at ``now`` in
    Postfix's whole seconds: ``now - int(arrival) >= age`` <=> ``arrival < floor(now - age) + 1``
    (arrival >= 0)."""
    return math.floor(now - age) + 1


class Cohort:
    """``messages[start:]`` in arrival order; ``messages[start:notified]`` all had their
    delay warning (later ones may have had theirs too: check ``Message.notified``)."""

    __slots__ = ("activated", "messages", "notified", "start", "stats")

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.start = 0
        self.notified = 0
        self.activated = 0.0  # when the cohort last entered the active queue
        first = messages[0].stats
        # The one domain of all its messages, or None when mixed.
        self.stats: DomainStats | None = first if all(m.stats is first for m in messages) else None

    def __len__(self) -> int:
        return len(self.messages) - self.start

    def first_arrival(self) -> float:
        return self.messages[self.start].arrival

    def last_arrival(self) -> float:
        return self.messages[-1].arrival

    def popleft(self) -> Message:
        message = self.messages[self.start]
        self.start += 1
        message.activated = self.activated
        return message

    def append(self, message: Message) -> None:
        """Add a message no older than the last one."""
        self.messages.append(message)
        if self.stats is not message.stats:
            self.stats = None

    def extend(self, other: Cohort) -> None:
        """Add a cohort whose first message is no older than this one's last."""
        all_notified = self.notified == len(self.messages)
        self.messages.extend(other.messages[other.start :] if other.start else other.messages)
        if all_notified:
            self.notified = len(self.messages) - (len(other.messages) - max(other.notified, other.start))
        if self.stats is not other.stats:
            self.stats = None

    def index_before(self, bound: float) -> int:
        """The index of the first message that arrived at or after ``bound`` (see
        ``arrival_bound``): the messages before it are at least that old."""
        messages = self.messages
        # Most passes need no search: nobody or everybody has reached the age.
        if messages[self.start].arrival >= bound:
            return self.start
        if messages[-1].arrival < bound:
            return len(messages)
        return bisect_left(messages, bound, lo=self.start, key=arrival_of)

    def is_warned_before(self, bound: float) -> bool:
        """Whether every message that arrived before ``bound`` already had its warning
        (the first one past the warned prefix arrived at or after it)."""
        first = max(self.notified, self.start)
        return first >= len(self.messages) or self.messages[first].arrival >= bound

    def drop_front(self, index: int) -> None:
        """Forget ``messages[:index]``; compact when more than half the list is gone, so a
        long-lived cohort holds no memory for messages that left it."""
        self.start = index
        self.notified = max(self.notified, index)
        if index > len(self.messages) // 2:
            del self.messages[:index]
            self.notified -= index
            self.start = 0

    def split_off(self, index: int) -> list[Message]:
        """Remove and return ``messages[index:]``."""
        tail = self.messages[index:]
        del self.messages[index:]
        self.notified = min(self.notified, index)
        return tail
