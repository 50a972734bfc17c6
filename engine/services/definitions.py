"""The workflow definitions applied to a case's data: finding a definition, normalising what a
user submits, the typed values and computed totals, the names a workflow's rules see, required
fields and checks, and the context a document's template gets.

Everything here is judged on data passed in; the only reads are of linked cases (through the
unit of work ``tx`` a caller holds) and the only write is an attachment being stored while its
field is normalised (the caller removes it if the unit of work does not commit).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import privacy, rules
from ..archive import Attachments
from ..config import Config, User
from ..errors import InputError, NotFoundError
from ..fields import is_empty, normalize, to_python
from ..store import Tx
from ..workflow import DocumentSpec, TransitionSpec, Workflow


class Definitions:
    """The workflows of one dealership and what they make of a case's data."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow],
                 attachments: Attachments, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.workflows = workflows
        self.attachments = attachments
        self.clock = clock

    def workflow(self, key: str) -> Workflow:
        try:
            return self.workflows[key]
        except KeyError:
            close = difflib.get_close_matches(key, list(self.workflows), n=1)
            hint = f"；是否想用 \"{close[0]}\"？" if close else ""
            raise NotFoundError(f"没有名为 \"{key}\" 的工作流{hint}（可用：{'、'.join(self.workflows)}）",
                                workflow=key) from None

    def state_labels(self, workflow: str, states: tuple[str, ...]) -> list[str]:
        wf = self.workflows[workflow]
        return [wf.states[s].label for s in states]

    def evaluate(self, wf: Workflow, stored: Mapping[str, Any], today: date | None = None
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The case's typed values and computed values (as of ``today``, default: the clock's)."""
        values = {name: to_python(spec, stored.get(name), self.config)
                  for name, spec in wf.fields.items()}
        totals = wf.compute(values, today or self.clock().date(), self.config.policy)
        return values, totals

    def names(self, tx: Tx, values: dict[str, Any], totals: dict[str, Any], now: datetime,
              links: Mapping[str, list[str]]) -> dict[str, Any]:
        """The names a workflow's rules see (``rules.namespace``): the case's typed data and
        computed values, the data of its linked cases, the store's policy and the clock."""
        linked = {}
        for key, ids in links.items():
            other = tx.case(ids[-1]) if ids else None
            if other is not None and key in self.workflows:
                linked[key] = self.evaluate(self.workflows[key], other["data"])[0]
        return rules.namespace(values, totals, today=now.date(), now=now,
                               policy=self.config.policy, linked=linked)

    def normalize(self, wf: Workflow, data: Mapping[str, Any], current: Mapping[str, Any], *,
                  edits: tuple[str, ...], transition: TransitionSpec | None = None,
                  warnings: list[str] | None = None,
                  stored_files: list[Path] | None = None,
                  files_from: Path | None = None,
                  vouched: Callable[[str, Any], bool] | None = None) -> dict[str, Any]:
        """Normalise submitted data against the workflow's fields (all problems at once).

        Fields whose rule depends on another field (``rule_field``) are checked after it, and
        re-checked when only that other field changed; a rule's warning is accepted when the
        field's ``override`` flag is set (in the data or already on the case), or when
        ``vouched(field, value)`` says another case holds the value with its own override (a
        contract's VIN of a stock car registered with the check-digit exception). New
        attachments are stored (and listed in ``stored_files``) as their field is read.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"数据应为 JSON 对象（键值表），收到 {type(data).__name__}")
        # a masked number sent back as it was shown (a form, an API client) leaves it as it is
        data = {k: v for k, v in data.items()
                if not privacy.is_masked(wf.personal_fields.get(k), v, current.get(k))}
        problems: list[InputError] = []
        out: dict[str, Any] = {}
        for key in data:
            spec = wf.fields.get(key)
            if spec is None:
                close = difflib.get_close_matches(key, list(wf.fields), n=1)
                hint = f"，是否想写 \"{close[0]}\"？" if close else ""
                problems.append(InputError(f"未知字段 \"{key}\"{hint}（{wf.title}的字段见 "
                                           f"{wf.source.name}）", field=key))
            elif "*" not in edits and key not in edits:
                where = f"「{transition.label}」" if transition else ""
                problems.append(InputError(f"{where}不能修改{spec.label}（{key}）",
                                           field=key, label=spec.label))
        ordered = sorted((k for k in data if k in wf.fields and ("*" in edits or k in edits)),
                         key=lambda k: wf.fields[k].rule_field is not None
                         or wf.fields[k].override is not None)
        dependants = [n for n, s in wf.fields.items() if s.rule_field and n not in data
                      and s.rule_field in data and current.get(n) is not None]
        for key in [*ordered, *dependants]:
            spec = wf.fields[key]
            raw = data[key] if key in data else current.get(key)
            merged = {**current, **out}
            rule = None
            if spec.rule_field is not None:
                chooser = merged.get(spec.rule_field)
                rule = spec.rule_map.get(chooser) if chooser is not None else None
                if rule is None and not is_empty(raw):
                    ruler = wf.fields[spec.rule_field]
                    problems.append(InputError(
                        f"填写{spec.label}（{key}）前请先选择{ruler.label}（{ruler.name}）"
                        f"：{'、'.join(ruler.choices)}", field=key, label=spec.label))
                    continue
            allow = spec.override is not None and merged.get(spec.override) is True
            if spec.type == "attachments" and isinstance(raw, list):
                try:
                    raw = [self.attachments.store(Path(files_from or ".") / item, stored_files)
                           if isinstance(item, str)
                           else _attached(spec, item, current.get(key)) for item in raw]
                except InputError as err:
                    problems.append(InputError(f"{spec.label}（{key}）：{err.message}",
                                               field=key, label=spec.label))
                    continue
            try:
                if not allow and spec.override is not None and vouched is not None:
                    doubts: list[str] = []
                    value = normalize(spec, raw, self.config, rule=rule, warnings=doubts)
                    if doubts and vouched(key, value):
                        out[key] = value
                        if warnings is not None:
                            warnings.extend(doubts)
                        continue
                out[key] = normalize(spec, raw, self.config, rule=rule,
                                     warnings=(warnings if allow and warnings is not None
                                               else None))
            except InputError as err:
                problems.extend(err.problems)
        if problems:
            raise InputError.combine(problems)
        return out

    def require(self, wf: Workflow, data: Mapping[str, Any], requires: tuple[str, ...],
                action: str) -> None:
        """Refuse ``action`` while a required field (or one of ``requires``) is empty."""
        missing = [spec for name, spec in wf.fields.items()
                   if is_empty(data.get(name)) and (name in requires or spec.is_required(data))]
        if missing:
            names = "、".join(f"{s.label}（{s.name}）" for s in missing)
            raise InputError(f"{action}需要填写：{names}",
                             problems=[InputError(f"{s.label}（{s.name}）必填", field=s.name,
                                                  label=s.label) for s in missing],
                             fields=[s.name for s in missing])

    def run_checks(self, wf: Workflow, names: tuple[str, ...], facts: Mapping[str, Any]
                   ) -> None:
        """Refuse with every problem the named checks find (all at once)."""
        problems = []
        for name in names:
            for field_name, message in wf.checks[name](facts):
                label = wf.fields[field_name].label if field_name in wf.fields else field_name
                problems.append(InputError(f"{label}（{field_name}）：{message}",
                                           field=field_name, label=label))
        if problems:
            raise InputError.combine(problems)

    def context(self, wf: Workflow, spec: DocumentSpec, record: Mapping[str, Any],
                values: dict[str, Any], totals: dict[str, Any], user: User, now: datetime,
                state: str, number: str, version: int,
                links: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the template of document ``spec`` gets for this case."""
        context = copy.deepcopy(values)
        context.update({
            "dealer": dataclasses.asdict(self.config.dealer),
            "doc": {"number": number, "title": spec.title, "version": version,
                    "issued_at": now, "issuer": {"login": user.login, "name": user.name}},
            "case": {"id": record["id"], "state": state, "state_label": wf.states[state].label},
            "totals": totals,
            "links": dict(links or {}),
            # the store's rules as the checks apply them, so the printed terms say the same
            "policy": dict(self.config.policy),
            # how long personal data is kept, as dealerdocs purge --expired applies it
            "privacy": {"retention": {
                key: privacy.period_text(self.config.privacy.retention_days[key])
                if key in self.config.privacy.retention_days else "法律规定的期限"
                for key in self.workflows}},
        })
        return context

    @staticmethod
    def links_context(tx: Tx, record: Mapping[str, Any]) -> dict[str, Any]:
        """``links.<workflow>``: the linked case's id and its current issued document number."""
        out = {}
        for key, ids in record.get("links", {}).items():
            if not ids:
                continue
            docs = sorted((d for d in tx.case_documents(ids[-1]) if d["status"] == "issued"),
                          key=lambda d: d["issued_at"])
            out[key] = {"id": ids[-1], "ids": list(ids), "number": docs[-1]["number"] if docs else ""}
        return out


def related(record: Mapping[str, Any]) -> dict[str, list[str]]:
    """The cases a case's rules read as ``linked.<workflow>``: its links (source, customer,
    cases a step made) and its references (a lookup field's pick: the catalogue model)."""
    return {**record.get("links", {}), **record.get("refs", {})}


def _attached(spec, item: Any, current: Any) -> dict[str, Any]:
    """An attachment record sent back as it is (kept on the case): only one already on this
    case is accepted, and its stored record is used, never what was sent (a made-up record
    could cite evidence nobody uploaded, or point at a file outside the store)."""
    on_case = {a.get("sha256"): a for a in current or [] if isinstance(a, dict)}
    found = on_case.get(item.get("sha256")) if isinstance(item, Mapping) else None
    if found is None:
        name = item.get("name") if isinstance(item, Mapping) else None
        raise InputError(f"附件 {name or item!r} 不是本案件已上传的文件；请上传文件本身",
                         field=spec.name, label=spec.label)
    return dict(found)
