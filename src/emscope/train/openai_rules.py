"""Pure decisions of the OpenAI backend: the platform wind-down notice, how to recognise a
moderation rejection, and the jittered exponential backoff used while polling a job."""

from __future__ import annotations

import random
from datetime import date

NEW_ORGS_BLOCKED_ON = date(2026, 5, 7)
JOB_CREATION_ENDS_ON = date(2027, 1, 6)

# Words OpenAI uses when its moderation of the training file (before training) or its safety
# evaluation of the trained model (after training) refuses a job.
_MODERATION_MARKERS = (
    "moderation",
    "usage polic",
    "safety",
    "unsafe",
    "refusals_v",
)
_MODERATION_CODES = ("moderation_failed", "safety_eval_failed", "content_policy_violation")


def wind_down_notice(today: date) -> str:
    """What to tell a user of OpenAI fine-tuning on ``today`` (protocol §7).

    >>> "ended on 2027-01-06" in wind_down_notice(date(2027, 1, 7))
    True
    """
    if today >= JOB_CREATION_ENDS_ON:
        return (
            f"OpenAI self-serve fine-tuning job creation ended on {JOB_CREATION_ENDS_ON}: new jobs "
            "will be refused. emscope can still re-attach to jobs recorded in a state directory, "
            "and existing fine-tuned models stay usable for sampling while their base model is "
            "served."
        )
    days = (JOB_CREATION_ENDS_ON - today).days
    return (
        "OpenAI is winding down self-serve fine-tuning: organisations new to fine-tuning have "
        f"been blocked since {NEW_ORGS_BLOCKED_ON}, and job creation ends on "
        f"{JOB_CREATION_ENDS_ON} ({days} day(s) left). Runs that depend on new OpenAI "
        "fine-tunes may not be reproducible after that date."
    )


def is_moderation_rejection(code: str | None, message: str | None) -> bool:
    """True when a failed job's error says the platform refused the data on safety grounds.

    >>> is_moderation_rejection("invalid_training_file",
    ...     "This training file was blocked by our moderation system")
    True
    >>> is_moderation_rejection("invalid_training_file", "Invalid file format. Line 3")
    False
    """
    if code and code.lower() in _MODERATION_CODES:
        return True
    text = (message or "").lower()
    return any(marker in text for marker in _MODERATION_MARKERS)


class Backoff:
    """Exponential delays with multiplicative jitter, capped; ``reset()`` after progress.

    Delays start at ``initial`` and grow by ``factor`` per call up to ``cap``; each is scaled down
    by a uniform factor in ``[1 - jitter, 1]`` so that pollers do not fire in step, even at the
    cap (jitter never pushes a delay above it).

    >>> b = Backoff(1.0, cap=4.0, jitter=0.0)
    >>> [b.next() for _ in range(4)]
    [1.0, 2.0, 4.0, 4.0]
    """

    def __init__(
        self,
        initial: float,
        *,
        cap: float,
        factor: float = 2.0,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or cap < initial or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("need 0 < initial <= cap, factor >= 1 and 0 <= jitter < 1")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.rng = rng or random.Random()
        self._current = initial

    def next(self) -> float:
        base = self._current
        self._current = min(self.cap, self._current * self.factor)
        scale = 1.0 - self.rng.uniform(0.0, self.jitter) if self.jitter else 1.0
        return base * scale

    def reset(self) -> None:
        self._current = self.initial
