"""The ``contacts:`` section: how often an agency's own contacts confirm their details."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from npsp_common.types import Duration, StrictModel

_DAY = 86400.0


class ContactsSettings(StrictModel):
    """The contacts an agency keeps in the database (not the registry's: the operations team
    keeps those)."""

    confirm_after: Annotated[Duration, Field(ge=_DAY)] = Field(
        365 * _DAY,
        description=(
            "A stored contact whose details were last confirmed (or, never confirmed, created) "
            "longer ago than this gets a reminder by e-mail and portal inbox, once per period, "
            "with a link (valid 30 days, single use) to a page where a Confirm button records "
            "that the details are still right."
        ),
    )
