"""Senior rights: the Government Office is told who holds an agency's high-level account
(QĐ 31/2021/QĐ-TTg, Chương VII, mục A khoản 2: an agency "thông báo cho Văn phòng Chính phủ về
việc cấp quyền quản trị cấp cao cho tài khoản").

* **record** (:func:`.store.record`, called by :mod:`monitor.accounts`): every path that gives
  or takes the ``agency-admin`` role — an account created with it, a role change to or from it,
  the revocation of such an account — writes one ``senior_rights_changes`` row in the same
  transaction as the account change (API, pages and command line alike).
* **notices** (:class:`SeniorRightsDesk`, on the leader): one notice per row to operations,
  through the outbox, keyed by the row (``senior-rights/<id>``: never twice, even from two
  leaders or after a restart), then the row is marked ``notified_at``.
* **report** (:func:`.model.replay`, read by :mod:`monitor.reports`): who held senior rights at
  the end of a period and the changes during it, per agency. Accounts made before the table
  existed, still active agency-admins and never recorded, count as holders from their creation.

The rooms: :mod:`.model` (a change, a holder, the replay; no I/O), :mod:`.store` (every
statement on ``senior_rights_changes``), :mod:`.desk` and :mod:`.notices` (the texts).
"""

from __future__ import annotations

from .desk import SeniorRightsDesk
from .model import AgencySeniorRights, Change, Holder, replay
from .notices import notice_for

__all__ = ["AgencySeniorRights", "Change", "Holder", "SeniorRightsDesk", "notice_for", "replay"]
