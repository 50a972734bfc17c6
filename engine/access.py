"""Who may see and do what: questions a front end asks before it shows a page or a button.

Functions over the engine's views (``Engine.case``, ``Engine.cases``, ``due``) and the
workflow definitions; ``with_conditions`` asks the workflow's own machine (``may_trigger``,
with the conditions as its guards) on what the rules would see now, rather than restating a
rule. Nothing here writes or bypasses the engine. The engine stays the authority: a button
shown here is still refused by ``Engine.fire`` if its rules say no, and a button hidden or
disabled here is so because ``Engine.fire`` would refuse it (role, separation of duties, a
condition the form cannot change), so a page never offers what the command line would refuse.
``Engine.actions`` answers all of it for one case (:func:`steps`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from . import rules
from .config import Config, User
from .workflow import Model, TransitionSpec, Workflow

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine


# --- who sees which cases and documents (config.toml [access.<role>]) ---------------------------

@dataclass(frozen=True)
class Reach:
    """What one user sees and may do besides workflow steps: the union of their roles'
    ``[access]`` tables. ``scope`` maps each workflow whose cases they see to "own" (cases
    they opened or are the assignee of, and the cases linked to those) or "all"."""

    login: str
    scope: dict[str, str]
    documents_all: bool = False
    reveal: bool = False
    register: bool = False
    dispatch: bool = False
    recall: bool = False
    reassign: bool = False
    purge: bool = False
    # workflow → (its assignee field, its open states): the pool of unassigned open cases
    # they may take (``[workflow] pool``), seen besides their own
    pool: Mapping[str, tuple[str, frozenset[str]]] = dataclasses.field(default_factory=dict)

    def sees_workflow(self, key: str) -> bool:
        return key in self.scope

    def sees_case(self, case: Mapping[str, Any]) -> bool:
        """``case``: a stored record, an ``Engine.case`` view or a listing."""
        scope = self.scope.get(case["workflow"])
        if scope == "all":
            return True
        return scope == "own" and (self.login in owners(case) or self.in_pool(case))

    def in_pool(self, case: Mapping[str, Any]) -> bool:
        """An open case with no assignee, of a workflow whose pool they may take from."""
        pool = self.pool.get(case["workflow"])
        if pool is None:
            return False
        assignee, open_states = pool
        values = case["data"] if "data" in case else case.get("fields", {})
        return case["state"] in open_states and not values.get(assignee)

    def sees_documents_of(self, key: str) -> bool:
        """Whether the documents of some cases of workflow ``key`` are theirs to see."""
        return self.documents_all or key in self.scope


def reach(config: Config, workflows: Mapping[str, Workflow], user: User) -> Reach:
    scope: dict[str, str] = {}
    flags: dict[str, bool] = {}
    for role in user.roles:
        rules = config.role_access(role)
        for name in ("reveal", "register", "dispatch", "recall", "reassign", "purge"):
            flags[name] = flags.get(name, False) or getattr(rules, name)
        if rules.documents == "all":
            flags["documents_all"] = True
        if rules.cases == "none":
            continue
        keys = (rules.workflows if rules.workflows is not None
                else list(workflows) if rules.group   # head office: every workflow
                else [k for k, wf in workflows.items() if role in workflow_roles(wf)])
        for key in keys:
            if scope.get(key) != "all":
                scope[key] = rules.cases
    for key, wf in workflows.items():   # reference data its readers all see (a catalogue)
        if set(wf.readers) & set(user.roles):
            scope[key] = "all"
    pool = {}
    for key, kind in scope.items():
        wf = workflows.get(key)
        if kind == "own" and wf is not None and wf.pool and may_own(wf, user):
            assert wf.assignee is not None
            pool[key] = (wf.assignee, frozenset(k for k, s in wf.states.items() if not s.final))
    return Reach(user.login, scope, pool=pool, **flags)


def owners(case: Mapping[str, Any]) -> list[str]:
    """Whose case it is: the logins the engine keeps on each case and its listing (who
    opened it, its assignee, and those of the case it was made from; see ``Engine``). Empty
    when nobody owns it any more (a released customer): only roles that see all, and the
    pool, see it. A record from before owners were kept is its creator's."""
    kept = case.get("owners")
    return list(kept) if kept is not None else [case["created_by"]]


NO_ROLE = "无权限"
DUTIES = "职责分离：本人起草或提交的，需由他人审批"


@dataclass(frozen=True)
class Action:
    """A step a case's state offers, and whether a user may take it now: ``refused`` says
    why they may not take it at all (no role, separation of duties: a page shows no button),
    ``blocked`` why its conditions cannot hold now whatever its form says (a disabled button
    with the reason)."""

    trigger: str
    label: str
    transitions: tuple[TransitionSpec, ...]  # the candidates (conditional routes) in order
    blocked: str | None = None
    refused: str | None = None

    @property
    def first(self) -> TransitionSpec:
        return self.transitions[0]

    @property
    def allowed(self) -> bool:
        return self.refused is None and self.blocked is None

    @property
    def reason(self) -> str | None:
        """Why not, when not allowed."""
        return self.refused or self.blocked

    @property
    def is_review(self) -> bool:
        """An approval-like step: the workflow forbids its drafter to take it."""
        return any(t.not_actor_of for t in self.transitions)


def has_any(user: User, roles: Iterable[str]) -> bool:
    return bool(set(user.roles) & set(roles))


def may_own(wf: Workflow, user: User) -> bool:
    """Whether ``user`` could be the assignee of a case of ``wf`` (has the assignee field's
    roles, or it names none); False for a workflow without an assignee."""
    if not wf.assignee:
        return False
    allowed = wf.fields[wf.assignee].roles
    return not allowed or has_any(user, allowed)


def workflow_roles(wf: Workflow) -> set[str]:
    """Every role that takes part in the workflow (creates it or fires one of its steps)."""
    return set(wf.create_roles) | {r for t in wf.transitions for r in t.roles}


def may_create(user: User, wf: Workflow) -> bool:
    return has_any(user, wf.create_roles)


def blocked_by_duties(t: TransitionSpec, history: list[Mapping[str, Any]], login: str
                      ) -> list[str]:
    """The ``not_actor_of`` triggers whose latest event was ``login``'s (the same rule as
    the engine's separation of duties); empty when the user may take the step."""
    events = sorted(history, key=lambda e: e["seq"])
    done = []
    for trigger in t.not_actor_of:
        latest = [e for e in events if e["trigger"] == trigger]
        if latest and latest[-1]["actor"] == login:
            done.append(trigger)
    return done


def steps(wf: Workflow, case: Mapping[str, Any], user: User,
          facts: Mapping[str, Any] | None = None) -> list[Action]:
    """Every trigger ``case``'s state offers (a final state offers none), in definition order,
    each saying whether ``user`` may take it now. ``case`` needs its ``state`` and audit
    ``history``.

    ``refused``: none of the trigger's routes names one of the user's roles, or every route
    their roles allow is barred to them by the separation of duties (the engine checks the
    roles of every candidate first, then of the route taken). With ``facts`` (what the
    workflow's rules see now, ``Engine.rule_names``), ``blocked`` marks the steps whose
    conditions cannot hold (:func:`with_conditions`).
    """
    out: list[Action] = []
    for t in wf.available(case["state"]):
        if any(a.trigger == t.trigger for a in out):
            continue
        candidates = tuple(x for x in wf.available(case["state"]) if x.trigger == t.trigger)
        mine = tuple(x for x in candidates if has_any(user, x.roles))
        refused = None
        if not mine:
            refused = NO_ROLE
        elif all(blocked_by_duties(x, case["history"], user.login) for x in mine):
            refused = DUTIES
        out.append(Action(t.trigger, t.label, candidates, refused=refused))
    return with_conditions(wf, case["state"], facts, out) if facts is not None else out


def actions(wf: Workflow, case: Mapping[str, Any], user: User) -> list[Action]:
    """The triggers ``user`` may fire on ``case`` (an ``Engine.case`` view) from its state.

    A trigger is offered when one of its candidate transitions names one of the user's roles
    and the separation of duties does not exclude the user. Conditions (e.g. a deadline) are
    not looked at here: ``with_conditions`` marks the steps they rule out.
    """
    return [a for a in steps(wf, case, user) if a.refused is None]


def _settled(failed: list[tuple[str, set[str]]], t: TransitionSpec) -> list[str]:
    """The reasons among ``failed`` (reason, keys read) that the form of ``t`` cannot change:
    the condition read no field the step edits (and no total, if it edits anything)."""
    out = []
    for reason, seen in failed:
        fields = {k for k in seen if not k.startswith("totals.")}
        if not t.edits or not ("*" in t.edits or fields & set(t.edits)
                               or len(fields) < len(seen)):
            out.append(reason)
    return out


class _Judged(Model):
    """The machine's model for a page's question "may this step happen now?": a failed
    condition stops a route only if the step's form cannot change it (the form's edits are
    assumed to be able to change any condition that reads an edited field)."""

    def __init__(self, wf: Workflow, facts: Mapping[str, Any], first: TransitionSpec) -> None:
        super().__init__(facts)
        self.wf = wf
        self.first = first  # the engine reads every route's data by the first's edits

    def stops(self, spec: TransitionSpec, failed: list[tuple[rules.Condition, str]]) -> bool:
        settled = _settled([(reason, self._keys(c)) for c, reason in failed], self.first)
        self.refusals.extend(settled)
        return bool(settled)

    def _keys(self, condition: rules.Condition) -> set[str]:
        reads = condition.reads()
        return ({n for n in reads if n in self.wf.fields}
                | {f"totals.{n}" for n in reads if n in self.wf.computed})


def with_conditions(wf: Workflow, state: str, facts: Mapping[str, Any],
                    acts: list[Action]) -> list[Action]:
    """``acts`` (steps from ``state``) with ``blocked`` set where every route of the trigger
    fails a condition that its form cannot change (e.g. a quote that may only expire after
    its validity date).

    The workflow's machine judges (``may_trigger``, its guards being the workflow's
    conditions) on ``facts``, what the rules would see now (``Engine.rule_names``: the case's
    data and totals, its linked cases, the policy, the engine's clock); a button is disabled
    only when posting its form must be refused. Steps already ``refused`` are left as they are."""
    if not any(t.conditions for a in acts for t in a.transitions):
        return acts
    out = []
    for a in acts:
        if a.refused is not None or not any(t.conditions for t in a.transitions):
            out.append(a)
            continue
        judged = _Judged(wf, facts, a.first)
        with wf.attached(judged, state):
            may = judged.may_trigger(a.trigger)  # type: ignore[attr-defined]
        blocked = None if may else "；".join(dict.fromkeys(judged.refusals)) or None
        out.append(dataclasses.replace(a, blocked=blocked))
    return out


def user_fields(wf: Workflow) -> list[str]:
    """Fields that name a staff member (the consultant, a reviewer)."""
    return [name for name, spec in wf.fields.items() if spec.type == "user"]


def is_mine(wf: Workflow, case: Mapping[str, Any], user: User) -> bool:
    """The user opened the case or is named on it (consultant, supervisor, owner by name).

    ``case`` is an ``Engine.case`` view or an ``Engine.cases`` listing: the listing's
    ``fields`` keep every user field and the owner field, which is all this looks at."""
    data = case["data"] if "data" in case else case["fields"]
    if case["created_by"] == user.login:
        return True
    if any(data.get(name) == user.login for name in user_fields(wf)):
        return True
    return bool(wf.owner_field and data.get(wf.owner_field) == user.name)


def firable(wf: Workflow, state: str, user: User) -> list[TransitionSpec]:
    """The transitions from ``state`` that one of the user's roles may fire (no history
    needed: the separation of duties is not looked at)."""
    return [t for t in wf.available(state) if has_any(user, t.roles)]


def listed_actions(engine: "Engine", wf: Workflow, row: Mapping[str, Any], user: User
                   ) -> list[Action]:
    """``actions`` for an ``Engine.cases`` listing, opening the case only when its history
    is needed: one of the steps the user's roles may take from its state is barred to whoever
    drafted or submitted it (``not_actor_of``)."""
    mine = firable(wf, row["state"], user)
    if not mine:
        return []
    if any(t.not_actor_of for t in mine):
        return actions(wf, engine.case(row["id"], actor=user.login), user)
    return actions(wf, {"state": row["state"], "history": []}, user)


def overview(engine: "Engine", user: User) -> dict[str, list[dict[str, Any]]]:
    """The start page: my open cases, and reviews waiting for me (never my own requests).

    Built from the store's listings; a case file is opened only for the separation of
    duties of a step the user's roles may take (see ``listed_actions``)."""
    mine, reviews = [], []
    for row in engine.cases(actor=user.login, open_only=True):
        wf = engine.workflows.get(row["workflow"])
        if wf is None or row["final"]:
            continue
        deadline = engine.deadline_status(wf, {"state": row["state"], "data": row["fields"]})
        entry = {**row, "title": wf.title, "deadline": deadline}
        acts = listed_actions(engine, wf, row, user)
        if is_mine(wf, row, user):
            mine.append({**entry, "actions": acts})
        review_acts = [a for a in acts if a.is_review]
        if review_acts:
            reviews.append({**entry, "actions": review_acts})
    return {"mine": mine, "reviews": reviews}
