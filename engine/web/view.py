"""How values look on a page: money, dates, users, choices, states (jinja2 filters)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from jinja2 import Environment

from ..fields import FieldSpec
from ..services.timeline import ENGINE_EVENTS   # audit events the engine writes itself

EVENT_LABELS = {"issued": "出具", "superseded": "被换版", "void": "作废", "dispatched": "发放",
                "recalled": "回收", "lost": "丢失声明作废"}
DOC_STATUS = {"issued": "现行", "superseded": "已换版", "void": "作废"}
COPY_STATUS = {"out": "在外", "returned": "已收回", "void": "已声明作废"}


def money(value: Any) -> str:
    if value in (None, ""):
        return ""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"¥{amount:,.2f}"


def when(value: Any) -> str:
    """2026-11-26T10:30:00+08:00 → 2026-11-26 10:30."""
    if not value:
        return ""
    text = str(value)
    return text[:16].replace("T", " ") if len(text) > 10 else text


def install(env: Environment, engine: Any) -> None:
    config = engine.config

    def user_name(login: Any) -> str:
        if not login:
            return ""
        user = config.users.get(str(login))
        return f"{user.name}" if user else str(login)

    def field_value(spec: FieldSpec, value: Any) -> Any:
        """A stored value as text for a page (tables and attachments are drawn by the template)."""
        if value is None or value == "" or value == []:
            return ""
        kind = spec.type
        if kind == "money":
            return money(value)
        if kind == "boolean":
            return "是" if value else "否"
        if kind == "user":
            return user_name(value)
        if kind == "choice":
            return spec.choice_label(str(value))
        if kind == "multichoice":
            return "、".join(spec.choice_label(v) for v in value)
        if kind == "datetime":
            return when(value)
        return value

    def trigger_label(wf: Any, trigger: str) -> str:
        if trigger in ENGINE_EVENTS:
            return ENGINE_EVENTS[trigger]
        for t in wf.transitions:
            if t.trigger == trigger:
                return t.label
        return trigger

    def state_label(wf: Any, state: str | None) -> str:
        if not state:
            return "—"
        return wf.states[state].label if state in wf.states else state

    env.filters.update(money=money, when=when, user_name=user_name,
                       doc_status=lambda s: DOC_STATUS.get(s, s),
                       copy_status=lambda s: COPY_STATUS.get(s, s),
                       event_label=lambda e: EVENT_LABELS.get(e, e))
    env.globals.update(field_value=field_value, trigger_label=trigger_label,
                       is_engine_event=lambda trigger: trigger in ENGINE_EVENTS,
                       state_label=state_label, dealer=config.dealer,
                       role_label=config.role_label)
