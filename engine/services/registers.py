"""Derived deadlines, the due list and period registers (reports) of the workflows.

Overdue is never stored: it is computed from a workflow's ``[deadline]`` field, the case's
state and the engine's clock (so tests can move the clock).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Mapping

from ..case_migrations import DUE_INDEX
from ..config import GROUP, Config
from ..errors import InputError, NotFoundError, PermissionDenied, StorageError
from ..files import atomic_write_bytes
from ..access import Reach
from ..store import Store
from ..tallies import TallySpec
from ..workflow import Workflow
from .definitions import Definitions
from .guard import Guard
from .personal import PersonalData
from .press import Press

REPORT_FORMATS = ("xlsx", "docx", "pdf")


class Registers:
    """Deadlines, the due list and the ``[reports.<name>]`` registers."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 guard: Guard, definitions: Definitions,
                 personal: PersonalData, press: Press, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.guard = guard
        self.definitions = definitions
        self.personal = personal
        self.press = press
        self.clock = clock

    def deadline_status(self, wf: Workflow, record: Mapping[str, Any], today: date | None = None
                        ) -> dict[str, Any] | None:
        """Derived, never stored: days left or days overdue (open cases only)."""
        if wf.deadline_field is None:
            return None
        value = record["data"].get(wf.deadline_field)
        if value is None:
            return None
        today = today or self.clock().date()
        deadline = date.fromisoformat(value)
        is_open = not wf.states[record["state"]].final
        days = (deadline - today).days
        return {"deadline": value, "open": is_open,
                "days_left": days if is_open and days >= 0 else None,
                "overdue_days": -days if is_open and days < 0 else 0,
                "overdue": is_open and days < 0}

    def due(self, within: int = 7, *, actor: str) -> list[dict[str, Any]]:
        """The open cases ``actor`` sees with a deadline that is past or within ``within``
        days, most urgent first; for a user who sees only their own cases, those whose
        deadline owner (``[deadline] owner``) they are."""
        reach = self.guard.reach(actor)
        today = self.clock().date()
        out = []
        with self.store.snapshot() as tx:
            indexed = tx.definition(DUE_INDEX) is not None
            for wf in self.workflows.values():
                if wf.deadline_field is None or not reach.sees_workflow(wf.key):
                    continue
                found = (tx.due_cases(wf.key, today + timedelta(days=within)) if indexed
                         else tx.find_cases(workflow=wf.key, open_only=True))
                for listing in found:
                    if listing.get("final") or not reach.sees_case(listing):
                        continue
                    record = {"state": listing["state"], "data": listing.get("fields", {})}
                    if wf.owner_field and reach.scope.get(wf.key) == "own" and \
                            record["data"].get(wf.owner_field) != reach.login:
                        continue      # theirs to see, another's to do (a manager's call)
                    status = self.deadline_status(wf, record, today)
                    if not status or not status["open"]:
                        continue
                    if status["overdue"] or status["days_left"] <= within:
                        record["id"], data = listing["id"], record["data"]
                        out.append({
                            "id": record["id"], "workflow": wf.key, "title": wf.title,
                            "state": record["state"], "state_label": wf.states[record["state"]].label,
                            "summary": " ".join(str(data[k]) for k in wf.summary[:1] if data.get(k)),
                            "owner": data.get(wf.owner_field) if wf.owner_field else None,
                            "deadline_label": wf.fields[wf.deadline_field].label,
                            **({"step": wf.deadline_step, "step_label": next(
                                t.label for t in wf.transitions if t.trigger == wf.deadline_step)}
                               if wf.deadline_step else {}),
                            **status})
        return sorted(out, key=lambda r: (r["deadline"], r["id"]))

    def report(self, name: str, start: date | None = None, end: date | None = None,
               formats: tuple[str, ...] = REPORT_FORMATS, out_dir: Path | None = None, *,
               actor: str, reveal: bool = False) -> dict[str, Any]:
        """Export the register ``name`` (``[reports.<name>]`` of a workflow) for a period (or
        everything) as .xlsx / .docx / .pdf files, with the cases ``actor`` sees; identity and
        mobile numbers masked unless ``reveal`` (a role that may reveal; audited per case).
        Returns the row count and the file paths."""
        reach = self.guard.reach(actor)
        tally = next((wf.tallies[name] for wf in self.workflows.values() if name in wf.tallies),
                     None)
        if tally is not None and all(reach.sees_workflow(k) for k in tally.workflows):
            return self._tally(tally, start, end, formats, out_dir, reach)
        found = [(wf, wf.reports[name]) for wf in self.workflows.values()
                 if name in wf.reports and reach.sees_workflow(wf.key)]
        if not found:
            known = "、".join(sorted(
                [k for wf in self.workflows.values() for k in wf.reports
                 if reach.sees_workflow(wf.key)]
                + [k for wf in self.workflows.values() for k, t in wf.tallies.items()
                   if all(reach.sees_workflow(w) for w in t.workflows)]))
            raise NotFoundError(f"没有名为 \"{name}\" 的报表（可用：{known or '无'}）", report=name)
        if reveal and not reach.reveal:
            raise PermissionDenied(f"用户 {actor} 无权导出完整的个人信息（身份证号、手机号）",
                                   user=actor)
        from .. import reports

        wf, spec = found[0]
        self._formats_ok(start, end, formats)
        today = self.clock().date()
        with self.store.snapshot() as tx:
            chosen = reports.select_rows(
                ({**c, "data": c.get("fields", {})} for c in tx.find_cases(workflow=wf.key)
                 if reach.sees_case(c) and (not spec.states or c["state"] in spec.states)),
                spec.date_field, start, end)
            cases = [tx.case(c["id"]) for c in chosen]
            # links.<workflow>: the open linked cases (the contract holding a car)
            linked = {p.removeprefix("links.") for _, p in spec.columns if p.startswith("links.")}
            held = {}
            for case in cases:
                for key in linked:
                    found = [tx.case(i) for i in case.get("links", {}).get(key, [])]
                    held[(case["id"], key)] = "、".join(
                        o["id"] for o in found if o is not None and key in self.workflows
                        and not self.workflows[key].states[o["state"]].final) or None
            issued = {}
            for case in cases:
                for doc in sorted(tx.case_documents(case["id"]), key=lambda d: d["issued_at"]):
                    if doc["status"] in ("issued", "superseded"):
                        issued[(case["id"], doc["kind"])] = doc["number"]
        if reveal:
            self.personal.audit_reveals(cases, actor, f"导出{spec.title}")
        # head office's view of every store: which store each row is
        whole = self.config.current_store == GROUP
        rows = []
        for case in cases:
            if not reveal:
                case = {**case, "data": self.guard.masked(wf, case["data"])}
            values, totals = self.definitions.evaluate(wf, case["data"], today)
            status = self.deadline_status(wf, case, today) or {}
            extra = {"overdue_days": status.get("overdue_days"),
                     **{f"links.{k}": held[(case["id"], k)] for k in linked},
                     **{f"documents.{k}": issued.get((case["id"], k)) for k in wf.documents}}
            rows.append([self.config.store_label(case.get("store") or self.config.default_store)]
                        * whole + [reports.cell_value(path, case, values, totals,
                                                      lambda s: wf.states[s].label, extra)
                                   for _, path in spec.columns])
        table = reports.Table(spec.title, reports.period_label(start, end, today),
                              ["门店"] * whole + [label for label, _ in spec.columns], rows)
        return self._write(name, spec.title, table, start, end, formats, out_dir)

    @staticmethod
    def _formats_ok(start: date | None, end: date | None, formats: tuple[str, ...]) -> None:
        if start is not None and end is not None and end < start:
            raise InputError(f"统计期间的结束日期 {end} 早于开始日期 {start}", field="to")
        unknown = [f for f in formats if f not in REPORT_FORMATS]
        if unknown:
            raise InputError(f"不支持的格式 {unknown[0]}（可用：{'、'.join(REPORT_FORMATS)}）",
                             field="format")

    def _tally(self, spec: TallySpec, start: date | None, end: date | None,
               formats: tuple[str, ...], out_dir: Path | None, reach: Reach) -> dict[str, Any]:
        """A counting report (``[tallies]``) over the cases ``reach`` sees; the period defaults
        to the current month (a traffic table is a month's). A snapshot (every count of the
        day the report is made: ``date_field = "today"``) has no period: it is as of today."""
        from .. import reports, tallies

        self._formats_ok(start, end, formats)
        today = self.clock().date()
        if spec.snapshot and (start is not None or end is not None):
            raise InputError(f"{spec.title}是截至今天的现状，不按期间统计：请不要指定开始或结束日期",
                             field="from" if start is not None else "to")
        if spec.snapshot:
            start = end = today
        start = start or today.replace(day=1)
        end = end or (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if end < start:
            raise InputError(f"统计期间的结束日期 {end} 早于开始日期 {start}", field="to")
        if (end - start).days > 366:
            raise InputError("计数报表一次最多统计一年", field="from")
        dated = {(c.workflow, c.date_field) for c in spec.columns if c.counts}
        items: list[tallies.Item] = []
        with self.store.snapshot() as tx:
            for key in sorted(spec.workflows):
                wf = self.workflows[key]
                own = [f for w, f in dated if w == key]
                # every listing: a visit may be registered days after it happened
                for listing in tx.find_cases(workflow=key):
                    if not reach.sees_case(listing):
                        continue
                    listed = {**listing.get("fields", {}), "created_at": listing["created_at"]}
                    known = [listed[f] for f in own if f in listed]
                    if own and len(known) == len(own) and not any(
                            start.isoformat() <= str(v)[:10] <= end.isoformat() for v in known):
                        continue          # every date it counts on is outside the period
                    record = tx.case(listing["id"])
                    if record is None:
                        continue
                    values, totals = self.definitions.evaluate(wf, record["data"], today)
                    names = self.definitions.names(tx, values, totals, self.clock(), {})
                    names["created_at"] = datetime.fromisoformat(record["created_at"]).replace(
                        tzinfo=None)
                    names["state"] = record["state"]
                    # whose row a case counts in: a consultant's, or its values of fields
                    by = spec.by or wf.assignee
                    if spec.row_fields:
                        values_of = tuple(record["data"].get(f) for f in spec.row_fields)
                        consultant = (None if all(v in (None, "") for v in values_of)
                                      else values_of[0] if len(values_of) == 1
                                      else tuple(v or "" for v in values_of))
                    else:
                        consultant = record["data"].get(by) if by else None
                    store = listing.get("store") or self.config.default_store
                    items.append(tallies.Item(key, consultant, names, store=store))
                    for table in {c.table for c in spec.columns if c.workflow == key and c.table}:
                        for row in values.get(table) or []:
                            items.append(tallies.Item(key, consultant, {**names, **row},
                                                      table=table, store=store))
        # the counts (not the ratios, not each slot) drawn: a line per count over the days,
        # or a bar per count for each consultant; head office's view: a row and a bar per store
        if self.config.current_store == GROUP:
            headers, rows = tallies.by_store(
                spec, items, start, end, self.config.user_label,
                [(code, self.config.store_label(code)) for code in self.config.stores])
            chart, offset = "bar", 1
        else:
            headers, rows = tallies.count(spec, items, start, end, self.config.user_label)
            chart, offset = ("line" if spec.rows == "day" else "bar"), None
        subtitle = (reports.as_of_label(today) if spec.snapshot
                    else reports.period_label(start, end, today))
        table = reports.Table(spec.title, subtitle, headers, rows,
                              signatures=list(spec.signatures),
                              chart=(chart, spec.totals(offset), spec.title),
                              groups=spec.groups(offset))
        if spec.snapshot:
            return self._write(spec.key, spec.title, table, None, None, formats, out_dir,
                               as_of=today)
        return self._write(spec.key, spec.title, table, start, end, formats, out_dir)

    def _write(self, name: str, title: str, table: Any, start: date | None, end: date | None,
               formats: tuple[str, ...], out_dir: Path | None,
               as_of: date | None = None) -> dict[str, Any]:
        """The table's files; ``as_of``: a snapshot of that day (no period)."""
        from .. import reports
        from ..pdf import finish

        today = self.clock().date()
        folder = out_dir or (self.config.outbox_dir / "reports")   # files = "database" too
        stem = (f"{name}_{as_of.isoformat()}" if as_of is not None
                else f"{name}_{start or 'all'}_{end or today.isoformat()}")
        files: dict[str, str] = {}
        payloads: dict[str, bytes] = {}
        if "xlsx" in formats:
            payloads["xlsx"] = reports.to_xlsx(table)
        if "docx" in formats or "pdf" in formats:
            docx = reports.to_docx(table, self.config.dealer.name)
            if "docx" in formats:
                payloads["docx"] = docx
            if "pdf" in formats:
                payloads["pdf"] = finish(self.press.converter.convert(docx), {
                    "Title": title, "Author": self.config.dealer.name,
                    "Subject": table.subtitle})
        for kind, payload in payloads.items():
            path = Path(folder) / f"{stem}.{kind}"
            try:
                atomic_write_bytes(path, payload)
            except OSError as err:
                raise StorageError(f"无法写入报表 {path}：{err}", path=str(path)) from err
            files[kind] = str(path.resolve())
        return {"report": name, "title": title,
                "from": start.isoformat() if start else None,
                "to": end.isoformat() if end else None,
                **({"as_of": as_of.isoformat()} if as_of is not None else {}),
                "rows": len(table.rows), "files": files}
