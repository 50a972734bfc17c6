"""Who may see and do what, asked by every service before it reads or writes for a user.

A user's ``Reach`` comes from ``[access]`` in config.toml (:func:`engine.access.reach`); a case
or document outside it reads exactly like one that does not exist, so nobody learns which
customers a colleague has. Refusals name the user's roles and the roles that would do.
"""
from __future__ import annotations

from typing import Any, Mapping

from .. import access, privacy
from ..access import Reach
from ..config import Config, User
from ..errors import NotFoundError, PermissionDenied
from ..store import Tx
from ..workflow import Workflow


class Guard:
    """Access rules of one dealership: config.toml's roles and ``[access]`` tables."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow]) -> None:
        self.config = config
        self.workflows = workflows

    def reach(self, actor: str) -> Reach:
        """What ``actor`` sees and may do besides workflow steps (``[access]`` in config.toml)."""
        return access.reach(self.config, self.workflows, self.config.user(actor))

    def everything(self, login: str) -> Reach:
        """A reach that sees every case (the workflow file's own timers act with it)."""
        return Reach(login, {k: "all" for k in self.workflows})

    def authorize(self, user: User, roles: tuple[str, ...], action: str) -> None:
        """Refuse ``action`` unless the user has one of ``roles`` (a workflow step's)."""
        if set(roles) & set(user.roles):
            return
        mine = "、".join(self.config.role_label(r) for r in user.roles) or "无"
        need = "、".join(dict.fromkeys(self.config.role_label(r) for r in roles)) or "（无人可执行）"
        raise PermissionDenied(f"用户 {user.login}（{user.name}，角色：{mine}）无权{action}；"
                               f"需要角色：{need}", user=user.login, roles=list(roles))

    def allow(self, user: User, allowed: bool, action: str, right: str) -> None:
        """Refuse ``action`` unless one of the user's roles has ``right`` in ``[access]``."""
        if allowed:
            return
        need = "、".join(self.config.role_label(r) for r, a in self.config.access.items()
                        if getattr(a, right)) or "（无人）"
        mine = "、".join(self.config.role_label(r) for r in user.roles) or "无"
        raise PermissionDenied(f"用户 {user.login}（{user.name}，角色：{mine}）无权{action}；"
                               f"需要角色：{need}", user=user.login, right=right)

    @staticmethod
    def visible_case(tx: Tx, case_id: str, reach: Reach) -> dict[str, Any]:
        """The case, if ``reach`` sees it; a case that exists but is someone else's reads as
        not found, so nobody learns which customers a colleague has."""
        record = tx.case(case_id)
        if record is None or not reach.sees_case(record):
            raise NotFoundError(f"找不到案件 \"{case_id}\"（可用 dealerdocs list 查看）", case=case_id)
        return record

    @staticmethod
    def visible_document(tx: Tx, number: str, reach: Reach) -> dict[str, Any]:
        """The register entry of ``number`` if ``reach`` sees it (the same "not found" as for
        a number never issued, so nobody learns of a colleague's customers)."""
        doc = tx.document(number)
        if doc is not None and not reach.documents_all:
            record = tx.case(doc["case_id"])
            if record is None or not reach.sees_case(record):
                doc = None
        if doc is None:
            raise NotFoundError(f"找不到文件编号 \"{number}\"（可用 dealerdocs docs 查看已出具的文件）",
                                number=number)
        return doc

    @staticmethod
    def masked(wf: Workflow, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` with identity and mobile numbers masked (``privacy.mask``)."""
        out = {k: privacy.mask(wf.personal_fields.get(k), v) for k, v in data.items()}
        for table, kinds in wf.personal_columns.items():
            if isinstance(out.get(table), list):
                out[table] = [{c: privacy.mask(kinds.get(c), v) for c, v in row.items()}
                              if isinstance(row, dict) else row for row in out[table]]
        return out
