"""The settings of several gateway hosts sharing one PostgreSQL state database (``cluster:``).

They mean nothing on a single host (``state_db`` a file path): that host is its own leader and
its only vantage."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from npsp_common.types import Duration, StrictModel

__all__ = ["ClusterSettings"]


class ClusterSettings(StrictModel):
    """Quorum, leadership and the vantages' liveness."""

    quorum: Literal["majority"] | Annotated[int, Field(ge=1, le=64)] = Field(
        "majority",
        description=(
            "How many voting vantages must see a system failing for it to be DOWN: "
            "`majority` (more than half of the vantages voting now) or a number (capped at "
            "the number voting; with one vantage left it decides alone, and says so)."
        ),
    )
    failover_after: Duration = Field(
        15.0,
        description=(
            "A leader that stops renewing its lease is replaced within this time; it renews "
            "every fifth of it and its lease lasts three fifths."
        ),
    )
    beat_interval: Duration = Field(
        2.0, description="How often a vantage writes its liveness beat."
    )
    vote_stale_after: Duration = Field(
        10.0, description="A vantage whose last beat is older than this does not vote."
    )
    path_notice_after: Duration = Field(
        60.0,
        description=(
            "A check failing from a minority of the voting vantages while the rest see it "
            "pass, for this long, is a path problem: one notice to the operations team."
        ),
    )

    @model_validator(mode="after")
    def _sane(self) -> ClusterSettings:
        if not 3.0 <= self.failover_after <= 300.0:
            raise ValueError("failover_after must lie between 3s and 5m")
        if not 0.2 <= self.beat_interval <= 60.0:
            raise ValueError("beat_interval must lie between 200ms and 1m")
        if self.vote_stale_after < 2 * self.beat_interval:
            raise ValueError("vote_stale_after must be at least twice beat_interval")
        return self

    @property
    def lease_ttl(self) -> float:
        return self.failover_after * 0.6

    @property
    def renew_every(self) -> float:
        return self.failover_after / 5
