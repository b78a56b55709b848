"""The ``retention:`` section of the daemon config: how long each kind of row is kept, and how
gently the leader prunes the rest (:mod:`monitor.retention`).

A period is a duration (``400d``, ``12h``); ``0``, ``forever`` or null keeps that kind forever.
The audit log is never pruned, whatever this says."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema, field_validator

from npsp_common.types import Duration, StrictModel, format_duration, parse_duration

__all__ = ["KINDS", "KeepFor", "RetentionSettings"]

#: The kinds of rows pruned, by their period's name (the label of the counter metric).
KINDS = ("state_changes", "verdicts", "outbox_sent", "outbox_failed", "inbox")

_DAY = 86400.0


def _keep_for(value: object) -> float | None:
    """A period, or None (keep forever) for ``0``, ``"0"``, ``"forever"`` or null."""
    if value is None or (type(value) in (int, float) and value == 0):
        return None
    if isinstance(value, str) and value.strip().lower() in ("0", "forever"):
        return None
    return parse_duration(value)


def _written(value: float | None) -> str | None:
    if value is None:
        return None
    days = value / _DAY
    return f"{days:g}d" if days == int(days) else format_duration(value)


#: How long rows of one kind are kept, in seconds; None: forever.
KeepFor = Annotated[
    float | None,
    BeforeValidator(_keep_for),
    PlainSerializer(_written, return_type=str | None),
    WithJsonSchema({"type": ["string", "null"]}),
]


class RetentionSettings(StrictModel):
    """How long the state database keeps each kind of row (see each field), pruned by the
    leader at start and at most once per ``every``, ``batch_size`` rows per short transaction."""

    state_changes: KeepFor = Field(
        400 * _DAY,
        description=(
            "The history of every system's state (state changes; the reports' source), pruned "
            "a whole month at a time: a month's rows go once the month ends more than this "
            "long ago, after its report figures per system are stored for good "
            "(`monthly_figures`, never pruned), so that past months' reports stay exact. Each "
            "system's last change before the cut is kept (the state it was in). A duration; "
            "`0` or `forever`: kept forever (so for every period below)."
        ),
    )
    verdicts: KeepFor = Field(
        30 * _DAY,
        description=(
            "Several hosts (PostgreSQL): a vantage's verdict rows that say a check passes, "
            "older than this and with no vantage seeing that check fail; and every row of a "
            "vantage silent for this long. A failing verdict is never pruned while it stands."
        ),
    )
    outbox_sent: KeepFor = Field(
        90 * _DAY,
        description=(
            "Notifications delivered (outbox rows `sent`), counted from when they were "
            "queued. Rows still pending or being sent are never pruned."
        ),
    )
    outbox_failed: KeepFor = Field(
        180 * _DAY,
        description=(
            "Notifications given up on (outbox rows `failed`: a permanent error or out of "
            "retries; and `dropped`: a revoked person's), counted from when they were queued: "
            "kept longer, as the record of who was not told."
        ),
    )
    inbox: KeepFor = Field(
        180 * _DAY,
        description="Portal-inbox messages, read or not, counted from their delivery.",
    )
    every: Duration = Field(
        3600.0,
        description="How often the leader runs a pruning pass (and once at start).",
    )
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = Field(
        500, description="Rows deleted per transaction."
    )
    pause: Duration = Field(
        0.02,
        description=("The pause between two batches, for the daemon's other database work to run."),
    )

    @field_validator("state_changes", "verdicts", "outbox_sent", "outbox_failed", "inbox")
    @classmethod
    def _a_day_at_least(cls, value: float | None) -> float | None:
        if value is not None and value < _DAY:
            raise ValueError("a period must be at least 1d (or 0 to keep forever)")
        return value

    @field_validator("every")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        if value < 60.0:
            raise ValueError("must be at least 1m")
        return value

    @field_validator("pause")
    @classmethod
    def _short_pause(cls, value: float) -> float:
        if value > 60.0:
            raise ValueError("must be at most 1m")
        return value
