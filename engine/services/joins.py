"""The cases a case names by a value (``[joins.<workflow>]`` in its workflow: the stock car a
contract or a delivery names by its VIN), found through the store's search index of the other
workflow's ``unique`` field whenever the naming field is set or changed, and linked both ways
inside the unit of work that sets it.

A join owns this case's links to the other workflow: the case it names now is the one linked;
a case it no longer names (the VIN was changed) is unlinked, and given the join's ``leave``
step when its state takes it (the car is released). A value no case holds is refused with the
join's ``message`` unless its ``optional_when`` holds (a car from another dealer, 调车; a store
that does not keep its stock here): the case then names none. The
steps a join's cases take otherwise are the workflow's ``fire_linked`` ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..config import User
from ..errors import InputError, StateError
from ..store import Tx
from ..workflow import Workflow
from .definitions import Definitions
from .parties import Parties
from .trail import Trail


@dataclass
class Rejoined:
    """What the joins of one case change: its links (to write on it), the cases newly named
    and those no longer named (each with its workflow), and the ``leave`` steps due."""

    links: dict[str, list[str]]
    added: list[tuple[str, str]] = field(default_factory=list)     # (workflow, case id)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    leave: list[tuple[str, str]] = field(default_factory=list)     # (case id, trigger)


class Joins:
    def __init__(self, workflows: Mapping[str, Workflow], definitions: Definitions,
                 parties: Parties, trail: Trail) -> None:
        self.workflows = workflows
        self.definitions = definitions
        self.parties = parties
        self.trail = trail

    def vouches(self, tx: Tx, wf: Workflow) -> Callable[[str, Any], bool]:
        """Whether a value of a join's ``key`` that its rule doubts is held by the joined case
        with that case's own ``override`` set (a VIN without a valid check digit, registered
        in stock with the exception and its reason): then this case takes it as well."""
        def vouched(name: str, value: Any) -> bool:
            for other_key, join in wf.joins.items():
                if join.key != name:
                    continue
                spec = self.workflows[other_key].fields[join.match]
                found = self.parties.find_by(tx, other_key, join.match, value)
                if spec.override is not None and found is not None \
                        and found["data"].get(spec.override) is True:
                    return True
            return False

        return vouched

    def resolve(self, tx: Tx, wf: Workflow, data: Mapping[str, Any],
                links: Mapping[str, list[str]], names: Mapping[str, Any],
                changed: set[str] | None = None) -> Rejoined:
        """The links of a case of ``wf`` with ``data`` after its joins (only those whose key
        is in ``changed``; all of them when None, as at creation). Refused when a value names
        no case (unless ``optional_when`` holds on ``names``) or a case in a state the join
        does not take. Nothing is written here (:meth:`write`)."""
        out = Rejoined({k: list(v) for k, v in links.items()})
        for name, join in wf.joins.items():
            if changed is not None and join.key not in changed:
                continue
            other = self.definitions.workflow(name)
            value = data.get(join.key)
            found = (self.parties.find_by(tx, name, join.match, value)
                     if value not in (None, "") else None)
            if found is None and value not in (None, "") and not (
                    join.optional_when is not None and join.optional_when(names)):
                label = wf.fields[join.key].label
                message = (join.message.render({**names, "value": value}) if join.message is not None
                           else f"{label} {value} 不在{other.title}中")
                raise InputError(message, field=join.key)
            if found is not None and join.states and found["state"] not in join.states:
                need = "、".join(self.definitions.state_labels(name, join.states))
                raise StateError(f"{other.title} {found['id']}（{wf.fields[join.key].label} "
                                 f"{value}）处于「{other.states[found['state']].label}」，只有「{need}」"
                                 f"的才能用于{wf.title}", case=found["id"], state=found["state"])
            before = out.links.get(name, [])
            now = [found["id"]] if found is not None else []
            out.added += [(name, i) for i in now if i not in before]
            for i in before:
                if i in now:
                    continue
                out.dropped.append((name, i))
                left = tx.case(i)
                if join.leave and left is not None and any(
                        t.trigger == join.leave for t in other.available(left["state"])):
                    out.leave.append((i, join.leave))
            if now:
                out.links[name] = now
            else:
                out.links.pop(name, None)
        return out

    def write(self, tx: Tx, wf: Workflow, case_id: str, joined: Rejoined, user: User,
              stamp: str) -> None:
        """Link the cases newly named back to ``case_id`` and unlink those no longer named,
        each with an event in its own audit trail (the car's history names the contract)."""
        for name, other_id in [*joined.added, *joined.dropped]:
            record = tx.case(other_id)
            if record is None:
                continue
            other = self.workflows[name]
            back = {**record.get("links", {})}
            ids = [i for i in back.get(wf.key, []) if i != case_id]
            adding = (name, other_id) in joined.added
            if adding:
                ids.append(case_id)
            if ids:
                back[wf.key] = ids
            else:
                back.pop(wf.key, None)
            tx.put_case({**record, "links": back, "updated_at": stamp,
                         "updated_by": user.login})
            self.trail.audit(tx, stamp, user, other_id, other, "attach" if adding else "detach",
                             record["state"], record["state"], [], [],
                             note=f"{'关联' if adding else '不再关联'}{wf.title} {case_id}")
