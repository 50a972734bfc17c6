"""The case a new case belongs to (``[party]`` in its workflow: the customer of a visit, a test
drive or a quote), found or made inside the creating unit of work.

A customer is found by the one named (``--customer K-12``), else by the source case's (a
contract made from a quote belongs to the quote's customer), else by the key field's value
(a mobile) through the store's people index, else made new from the ``create`` fields. One
customer belongs to one consultant (the party workflow's ``assignee``): a case for a customer
someone else owns is refused with the owner's name, unless the party's ``free_when`` holds
(no recorded follow-up for a month: the owner let the customer lapse), in which case the
customer passes to the new consultant and its audit trail says why.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from .. import access, case_migrations, privacy, rules
from ..config import Config, User
from ..errors import InputError, PermissionDenied
from ..store import Store, Tx
from ..workflow import Party, Workflow
from .definitions import Definitions
from .guard import Guard
from .trail import Trail

log = logging.getLogger(__name__)
_MARK = case_migrations.PARTY_LINKED   # + workflow: its old cases are linked


@dataclass
class Attached:
    """The customer a new case joins: its record as it will be written, and what it adds to
    the new case (owners, links)."""

    record: dict[str, Any]
    wf: Workflow
    created: bool
    owners: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    before: dict[str, Any] | None = None   # its data before (None when made new)


class Parties:
    def __init__(self, config: Config, workflows: Mapping[str, Workflow], guard: Guard,
                 definitions: Definitions, trail: Trail, key: privacy.PersonalKey) -> None:
        self.config = config
        self.workflows = workflows
        self.guard = guard
        self.definitions = definitions
        self.trail = trail
        self.key = key

    def attach(self, tx: Tx, wf: Workflow, stored: dict[str, Any], user: User,
               named: str | None, origin: Mapping[str, Any] | None, now: datetime
               ) -> Attached | None:
        """The customer of a new case of ``wf`` with data ``stored`` (filled in place from the
        customer: ``fill``, and the owner field). None when the workflow has no ``[party]`` or
        the case names no one (a visitor who left no number)."""
        party = wf.party
        if party is None:
            if named:
                raise InputError(f"{wf.title}不关联客户档案，不能指定 --customer", field="customer")
            return None
        pwf = self.workflows[party.workflow]
        found = None
        if named:
            found = self.guard.visible_case(tx, named, self.guard.reach(user.login))
            if found["workflow"] != pwf.key:
                raise InputError(f"{named} 不是{pwf.title}", field="customer")
        elif origin is not None and origin.get("links", {}).get(pwf.key):
            found = tx.case(origin["links"][pwf.key][0])
        elif stored.get(party.key) not in (None, ""):
            found = self.find(tx, party, stored[party.key])
        if found is None:
            if stored.get(party.key) in (None, ""):
                return None
            return self._new(tx, wf, pwf, party, stored, user, now)
        given, theirs = stored.get(party.key), found["data"].get(party.match)
        if named and given not in (None, "") and theirs not in (None, "") and given != theirs:
            label = wf.fields[party.key].label
            raise InputError(f"{label}与{pwf.title} {found['id']} 的不一致：请不填{label}（带入客户档案的），"
                             f"或核对是否选错了客户", field=party.key, case=found["id"])
        return self._existing(tx, wf, pwf, party, found, stored, user, now)

    def find(self, tx: Tx, party: Party, value: Any) -> dict[str, Any] | None:
        """The customer whose ``match`` field holds ``value`` (the newest if several)."""
        return self.find_by(tx, party.workflow, party.match, value)

    def find_by(self, tx: Tx, workflow: str, name: str, value: Any,
                other_than: str | None = None) -> dict[str, Any] | None:
        """The case of ``workflow`` whose field ``name`` holds ``value`` (the newest if several),
        through the store's people index (identity and mobile fields: ``privacy.MASKED_KINDS``)
        or its search index (``search`` and ``unique`` fields: a VIN). ``other_than``: a case
        left out (the one asking, whose own value it is)."""
        hashed = privacy.keyed_hash(self.key.get(), value)
        prefix = f"{self.workflows[workflow].case_prefix}-"
        index = (tx.cases_of_value(hashed) if name in self.workflows[workflow].indexed_fields
                 else tx.cases_of_person(hashed))
        for case_id in reversed(index):
            if not case_id.startswith(prefix) or case_id == other_than:   # another workflow's
                continue
            record = tx.case(case_id)
            if record and record["workflow"] == workflow and record["data"].get(name) == value:
                return record
        return None

    def match_fields(self, workflow: str) -> tuple[str, ...]:
        """The fields other workflows find a case of ``workflow`` by (their ``[party]``
        ``match``: a customer's mobile): no two cases of ``workflow`` should share a value."""
        return tuple(dict.fromkeys(wf.party.match for wf in self.workflows.values()
                                   if wf.party is not None and wf.party.workflow == workflow))

    def unique_fields(self, workflow: str) -> tuple[str, ...]:
        """The fields no two cases of ``workflow`` may share: those other workflows find its
        cases by (:meth:`match_fields`) and those marked ``unique = true`` (a VIN)."""
        return tuple(dict.fromkeys([*self.match_fields(workflow),
                                    *self.workflows[workflow].unique_fields]))

    def taken(self, tx: Tx, wf: Workflow, data: Mapping[str, Any],
              name: str, other_than: str | None = None) -> str | None:
        """Why a case of ``wf`` cannot have ``data[name]`` (one of :meth:`unique_fields`):
        the case that already has it (other than ``other_than``), with its assignee; None if
        it is free."""
        value = data.get(name)
        found = (self.find_by(tx, wf.key, name, value, other_than)
                 if value not in (None, "") else None)
        if found is None:
            return None
        owner = found["data"].get(wf.assignee) if wf.assignee else None
        whose = (f"（{wf.fields[wf.assignee].label}：{self.config.user_label(owner)}）"
                 if wf.assignee and owner else "")
        shown = privacy.mask(wf.personal_fields.get(name), str(value))
        return f"{wf.fields[name].label} {shown} 已有{wf.title} {found['id']}{whose}"

    def link(self, tx: Tx, attached: Attached, wf: Workflow, case_id: str, user: User,
             stamp: str) -> None:
        """Write the customer, linked to the new case ``case_id``, with its audit event."""
        record = attached.record
        links = {**record.get("links", {})}
        links[wf.key] = [*links.get(wf.key, []), case_id]
        record["links"] = links
        pwf = attached.wf
        if attached.created:
            tx.put_case(record)
            self.trail.audit(tx, stamp, user, record["id"], pwf, "create", None, record["state"],
                             self.trail.changes(pwf, {}, record["data"]), [],
                             note=f"由{wf.title} {case_id} 登记")
            return
        record.update(updated_at=stamp, updated_by=user.login)
        tx.put_case(record)   # every case joining the customer is in its own history
        self.trail.audit(tx, stamp, user, record["id"], pwf, "attach", record["state"],
                         record["state"], self.trail.changes(pwf, attached.before or {},
                                                              record["data"]), [],
                         note="；".join([f"关联{wf.title} {case_id}", *attached.notes]))

    def link_existing(self, store: Store, now: datetime) -> int:
        """Cases made before their workflow joined cases to customers (a store from before
        ``[party]``) are linked once to the customer of their mobile, found or made new with the
        case's consultant as owner, oldest case first; each link is in the customer's audit
        trail (as ``system``). Owners are not checked here: an old store may hold two
        consultants' cases of one customer, who stays the first one's (a manager can
        reassign). Returns how many cases were linked."""
        from ..timers import SYSTEM

        if not store.exists():
            return 0
        with store.snapshot() as tx:   # nothing to link: nothing written (a read stays a read)
            todo = [wf for wf in self.workflows.values()
                    if wf.party and tx.definition(_MARK + wf.key) is None
                    and tx.find_cases(wf.key)]
        if not todo:
            return 0
        linked = 0
        with store.transaction() as tx:
            stamp = now.isoformat()
            for wf in todo:
                if tx.definition(_MARK + wf.key) is not None:
                    continue                        # another process did it meanwhile
                party = wf.party
                assert party is not None
                pwf = self.workflows[party.workflow]
                for row in sorted(tx.find_cases(wf.key), key=lambda r: r["created_at"]):
                    record = tx.case(row["id"])
                    if record is None or record.get("links", {}).get(pwf.key) \
                            or record["data"].get(party.key) in (None, ""):
                        continue
                    stored = copy.deepcopy(record["data"])
                    found = self.find(tx, party, stored[party.key])
                    if found is None:
                        try:
                            attached = self._new(tx, wf, pwf, party, stored, SYSTEM, now)
                        except InputError as err:   # e.g. no name: left as it was, said why
                            log.warning("%s not linked to a customer: %s", record["id"],
                                        err.message)
                            continue
                    else:
                        attached = Attached(copy.deepcopy(found), pwf, False,
                                            before=copy.deepcopy(found["data"]))
                    self.link(tx, attached, wf, record["id"], SYSTEM, stamp)
                    tx.put_case({**record, "links": {**record.get("links", {}),
                                                     pwf.key: [attached.record["id"]]}})
                    linked += 1
                tx.set_definition(_MARK + wf.key, "linked")
        if linked:
            log.warning("linked %d case(s) to their customers' files", linked)
        return linked

    def give(self, attached: Attached, login: str) -> None:
        """A customer with no consultant yet (a new visitor) becomes ``login``'s (the rota's
        turn)."""
        pwf = attached.wf
        if pwf.assignee and attached.record["data"].get(pwf.assignee) is None:
            attached.record["data"][pwf.assignee] = login
            attached.record["owners"] = list(dict.fromkeys([*attached.record["owners"], login]))
            attached.owners = list(attached.record["owners"])

    def record_new(self, tx: Tx) -> None:
        """In a unit of work that makes a case: a workflow with no cases yet has none to link
        (:meth:`link_existing` then never looks at it again)."""
        for wf in self.workflows.values():
            if wf.party and tx.definition(_MARK + wf.key) is None and not tx.find_cases(wf.key):
                tx.set_definition(_MARK + wf.key, "linked")

    # --- the two cases ---------------------------------------------------------------------

    def _new(self, tx: Tx, wf: Workflow, pwf: Workflow, party: Party, stored: dict[str, Any],
             user: User, now: datetime) -> Attached:
        data: dict[str, Any] = {}
        owner = stored.get(party.owner) if party.owner else None
        referrer = (self.find(tx, party, stored[party.referred_by])
                    if party.referred_by and stored.get(party.referred_by) else None)
        if referrer is not None:
            # referred by an existing customer: the referrer's consultant receives them
            name = next((referrer["data"].get(k) for k in pwf.summary[:1]), None)
            data[party.referrer] = f"{referrer['id']} {name or ''}".strip()
            if owner is None and pwf.assignee:
                owner = referrer["data"].get(pwf.assignee)
        if owner is None and pwf.assignee and access.may_own(pwf, user):
            owner = user.login
        if owner is not None and pwf.assignee:
            data[pwf.assignee] = owner
            if party.owner and stored.get(party.owner) is None:
                stored[party.owner] = owner
        stamp = now.isoformat()
        case_id = f"{pwf.case_prefix}-{tx.next_counter(f'case:{pwf.case_prefix}')}"
        case_migrations.record_new(tx, self.workflows)
        record = {"id": case_id, "workflow": pwf.key, "state": pwf.initial, "data": data,
                  "links": {}, "created_at": stamp, "created_by": user.login,
                  "updated_at": stamp, "updated_by": user.login,
                  "owners": list(dict.fromkeys([user.login, *([owner] if owner else [])])),
                  "definition": pwf.definition}
        self._fill(party, record, stored)
        self.definitions.require(pwf, data, (), f"登记{pwf.title}")
        return Attached(record, pwf, True, owners=list(record["owners"]))

    def _existing(self, tx: Tx, wf: Workflow, pwf: Workflow, party: Party,
                  found: Mapping[str, Any], stored: dict[str, Any], user: User, now: datetime
                  ) -> Attached:
        record = copy.deepcopy(dict(found))
        if party.states and record["state"] not in party.states:
            need = "、".join(self.definitions.state_labels(pwf.key, party.states))
            raise InputError(f"{pwf.title} {record['id']} 处于「{pwf.states[record['state']].label}」，"
                             f"只有「{need}」的客户才能登记{wf.title}（请先重新激活该客户）",
                             field=party.key, case=record["id"])
        attached = Attached(record, pwf, False, before=copy.deepcopy(record["data"]))
        owner = record["data"].get(pwf.assignee) if pwf.assignee else None
        if party.owner:
            wanted = stored.get(party.owner)
            if wanted is None and owner is not None and not access.may_own(pwf, user):
                wanted = owner                  # the front desk: the customer's consultant
            elif wanted is None and access.may_own(pwf, user):
                wanted = user.login
            if owner is not None and access.may_own(pwf, user) and user.login != owner \
                    and not self.guard.reach(user.login).reassign:
                wanted = user.login   # a colleague's customer, even when naming the colleague
            if owner is not None and wanted is not None and wanted != owner \
                    and self._holds(tx, pwf, party.shared_when, record, now):
                # the store checks ownership per consultant: the colleague registers their
                # own case and may read the file; the customer stays with its consultant
                record["owners"] = list(dict.fromkeys([*access.owners(record), wanted]))
                attached.notes.append(
                    f"客户由 {self.config.user_label(owner)} 跟进；本次由 "
                    f"{self.config.user_label(wanted)} 接待")
            elif owner is not None and wanted is not None and wanted != owner:
                if self._holds(tx, pwf, party.free_when, record, now):
                    attached.notes.append(
                        f"原销售顾问 {self.config.user_label(owner)} 超过期限未跟进，客户转为 "
                        f"{self.config.user_label(wanted)} 的客户")
                    owner = None
                else:
                    raise PermissionDenied(
                        f"客户{self._who(pwf, record)}已由 {self.config.user_label(owner)} 接待"
                        f"（{pwf.title} {record['id']}），不能再登记给 {self.config.user_label(wanted)}；"
                        f"如需改由其他顾问跟进，请销售经理改派（dealerdocs reassign "
                        f"{record['id']} --to 登录名）", user=user.login, rule="party_owner",
                        owner=owner, case=record["id"])
            if owner is None and wanted is not None and pwf.assignee:
                record["data"][pwf.assignee] = wanted
                record["owners"] = [o for o in access.owners(record)
                                    if o == record["created_by"]] + [wanted]
                owner = wanted
            if wanted is not None:
                stored[party.owner] = wanted
        self._fill(party, record, stored)
        attached.owners = access.owners(record)
        return attached

    def _fill(self, party: Party, record: dict[str, Any], stored: dict[str, Any]) -> None:
        """This case's empty fields from the customer; the customer's record from this case."""
        for target, origin in party.fill.items():
            if stored.get(target) in (None, "", []) and record["data"].get(origin) not in (None, ""):
                stored[target] = copy.deepcopy(record["data"][origin])
        pwf = self.workflows[party.workflow]
        for target, origin in party.create.items():
            if record["data"].get(target) in (None, "", []) and \
                    stored.get(origin) not in (None, "", []):
                record["data"][target] = as_field(pwf, target, stored[origin])
        for target, origin in party.update.items():
            if stored.get(origin) not in (None, "", []):
                record["data"][target] = as_field(pwf, target, stored[origin])

    def _holds(self, tx: Tx, pwf: Workflow, expression: rules.Expression | None,
               record: Mapping[str, Any], now: datetime) -> bool:
        """Whether ``expression`` (``free_when``, ``shared_when``) holds on the customer's file
        (the names its rules see); False when the workflow file does not give it."""
        if expression is None:
            return False
        values, totals = self.definitions.evaluate(pwf, record["data"], now.date())
        return bool(expression(self.definitions.names(tx, values, totals, now, {})))

    @staticmethod
    def _who(pwf: Workflow, record: Mapping[str, Any]) -> str:
        name = next((record["data"].get(k) for k in pwf.summary if record["data"].get(k)), "")
        return f" {name} " if name else " "


def as_field(wf: Workflow, name: str, value: Any) -> Any:
    """``value`` as field ``name`` of ``wf`` keeps it (the day of a date and time for a date)."""
    if wf.fields[name].type == "date" and isinstance(value, str) and len(value) > 10:
        return value[:10]
    return copy.deepcopy(value)
