"""The ``dealerdocs`` command line: a thin layer over :class:`engine.Engine`.

Every command takes ``--config PATH`` (default ``./config.toml``), ``--as USER`` (default
``$DEALERDOCS_USER``) and ``--json``; they may stand before or after the command name. Errors
the user can act on print one line and exit non-zero; a traceback means a bug.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import unicodedata
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .engine import Engine
from .errors import ConfigError, DealerDocsError, InputError
from .files import private_umask


def _common(f: Callable) -> Callable:
    f = click.option("--store", "store", metavar="CODE", default=None,
                     help="集团的哪个门店（config.toml 的 [stores] 键；* = 全部门店，只读；"
                          "默认 $DEALERDOCS_STORE，或操作人唯一的门店）")(f)
    f = click.option("--json", "as_json", is_flag=True, default=None,
                     help="机器可读的 JSON 输出")(f)
    f = click.option("--as", "actor", metavar="USER", default=None,
                     help="操作用户（config.toml 中的 users 键；默认 $DEALERDOCS_USER）")(f)
    f = click.option("--config", "config_path", metavar="PATH", default=None,
                     help="配置文件（默认 ./config.toml）")(f)
    return f


class Ctx:
    def __init__(self, config_path: str | None, actor: str | None, as_json: bool | None,
                 store: str | None = None) -> None:
        self.config_path = config_path
        self.actor = actor
        self.as_json = bool(as_json)
        self.store = store
        self._engine: Engine | None = None

    def merge(self, config_path: str | None, actor: str | None, as_json: bool | None,
              store: str | None = None) -> "Ctx":
        self.config_path = config_path or self.config_path
        self.actor = actor or self.actor
        self.as_json = bool(as_json) or self.as_json
        self.store = store or self.store
        return self

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from .config import load_config

            config = load_config(self.config_path or "config.toml")
            config = config.for_store(self.store_code(config))
            self._engine = Engine(config, clock=_clock_from_env(config))
        return self._engine

    def store_code(self, config) -> str:
        """Which store of a group the command works in: ``--store``, else
        ``$DEALERDOCS_STORE``, else the whole group (read-only) for a group manager or a
        command without an operator, else the operator's only store. "" for one store."""
        from .config import GROUP

        if not config.stores:
            return self.store or os.environ.get("DEALERDOCS_STORE") or ""
        chosen = self.store or os.environ.get("DEALERDOCS_STORE")
        actor = self.actor or os.environ.get("DEALERDOCS_USER")
        if chosen:
            if chosen != GROUP and chosen not in config.stores:
                config.for_store(chosen)   # raises, naming the stores there are
            if actor and actor in config.users and chosen not in config.stores_of(actor):
                raise ConfigError(f"用户 {config.user_label(actor)} 在{config.store_label(chosen)}没有角色"
                                  f"（可选：{_stores_text(config, actor)}）", key="store")
            return chosen
        if not actor or actor not in config.users:
            return GROUP
        mine = config.stores_of(actor)
        if GROUP in mine:   # head office: the whole group, read-only, unless --store says
            return GROUP
        if len(mine) == 1:
            return mine[0]
        if not mine:
            raise ConfigError(f"用户 {config.user_label(actor)} 在任何门店都没有角色", key="store")
        raise ConfigError(f"用户 {config.user_label(actor)} 在多个门店有角色，请用 --store 指明门店"
                          f"（可选：{_stores_text(config, actor)}；或设置 DEALERDOCS_STORE）",
                          key="store")

    def user(self) -> str:
        actor = self.actor or os.environ.get("DEALERDOCS_USER")
        if not actor:
            raise ConfigError("请用 --as USER 指明操作人（或设置环境变量 DEALERDOCS_USER）")
        return actor

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


def _clock_from_env(config):
    """``DEALERDOCS_TODAY=YYYY-MM-DD`` moves the day the engine sees (deadlines, dates on
    documents) while keeping the time of day; for rehearsals and tests."""
    value = os.environ.get("DEALERDOCS_TODAY")
    if not value:
        return None
    from datetime import datetime

    from .dates import parse_date
    try:
        day = parse_date(value)
    except ValueError as err:
        raise ConfigError(f"环境变量 DEALERDOCS_TODAY {err}") from None
    return lambda: datetime.now(config.tz).replace(year=day.year, month=day.month, day=day.day,
                                                   microsecond=0)


def _stores_text(config, login: str) -> str:
    return "、".join(config.store_label(c) if c != "*" else "*（全部门店，只读）"
                    for c in config.stores_of(login)) or "无"


def _ctx(click_ctx: click.Context, config_path, actor, as_json, store=None) -> Ctx:
    return click_ctx.find_object(Ctx).merge(config_path, actor, as_json, store)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_common
@click.version_option(__version__, prog_name="dealerdocs")
@click.pass_context
def main(click_ctx: click.Context, config_path, actor, as_json, store) -> None:
    """dealerdocs：4S 店的单据与流程引擎。"""
    click_ctx.obj = Ctx(config_path, actor, as_json, store)
    click_ctx.call_on_close(click_ctx.obj.close)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="覆盖已有的 config.toml")
@_common
@click.pass_context
def init(click_ctx, directory: Path, force: bool, config_path, actor, as_json, store) -> None:
    """在 DIRECTORY 中生成新的 config.toml（数据库、输出目录和本店模板目录放在 DIRECTORY 中）。"""
    from .defaults import product

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    shipped = product()
    target = directory / "config.toml"
    if target.exists() and not force:
        raise ConfigError(f"{target} 已存在；如要覆盖请加 --force")
    text = shipped.config.read_text(encoding="utf-8")
    # the store's own templates beside the config; workflows and default templates are the
    # installed product's, so upgrading dealerdocs brings their new versions
    text = _set_path(text, "templates", "templates")
    text = _set_path(text, "default_templates", "")
    text = _set_path(text, "workflows", "")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    from .config import load_config  # validate what we wrote
    from .files import make_dirs
    config = load_config(target)
    make_dirs(config.path("templates"))
    examples = _copy_examples(shipped.examples, directory / "examples")
    _emit(ctx, {"config": str(target.resolve()), "store": str(config.store_dir),
                "outbox": str(config.outbox_dir), "templates": str(config.path("templates")),
                "examples": examples},
          f"已生成 {target}（数据库：{config.store_dir}，输出：{config.outbox_dir}，"
          f"本店模板：{config.path('templates')}；示例数据在 {directory / 'examples'}）")


def _copy_examples(source: Path, folder: Path) -> list[str]:
    """The example data files (and evidence pictures) next to the new config, so the first
    commands of the README work in the new folder; files already there are kept."""
    import shutil

    copied = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or path.suffix == ".py" or "__pycache__" in relative.parts:
            continue
        target = folder / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied.append(str(relative))
    return copied


def _set_path(text: str, key: str, value: str) -> str:
    new, count = re.subn(rf'(?m)^{key}\s*=\s*"[^"\n]*"', f"{key} = {json.dumps(value)}", text)
    if count != 1:
        raise ConfigError(f"自带的 config.toml 的 [paths] 中没有 {key}")
    return new


@main.command("workflows")
@_common
@click.pass_context
def workflows_cmd(click_ctx, config_path, actor, as_json, store) -> None:
    """列出工作流、状态和操作。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    eng = ctx.engine
    rows = []
    for wf in eng.workflows.values():
        rows.append({"key": wf.key, "title": wf.title, "file": str(wf.source),
                     "states": {s.name: s.label for s in wf.states.values()},
                     "transitions": [{"trigger": t.trigger, "label": t.label,
                                      "source": list(t.sources), "dest": t.dest,
                                      "roles": list(t.roles), "documents": list(t.documents)}
                                     for t in wf.transitions]})
    lines = []
    for r in rows:
        lines.append(f"{r['key']}  {r['title']}  ({r['file']})")
        for t in r["transitions"]:
            roles = "、".join(eng.config.role_label(x) for x in t["roles"])
            docs = f"  出具：{', '.join(t['documents'])}" if t["documents"] else ""
            lines.append(f"  {t['trigger']:<8} {t['label']}：{' | '.join(t['source'])} → "
                         f"{t['dest']}  [{roles}]{docs}")
    _emit(ctx, rows, "\n".join(lines))


@main.command()
@click.argument("workflow")
@click.option("--data", "data_file", metavar="FILE|-", default=None, help="JSON 数据文件，- 为标准输入")
@click.option("--from", "--from-quote", "--from-contract", "source", metavar="CASE", default=None,
              help="来源案件（如从已接受的报价 Q-1 创建合同），带入其数据并相互关联")
@click.option("--customer", metavar="K-…", default=None,
              help="客户档案（如 K-12）：带入客户姓名和手机号并关联；不写则按手机号查找或新建")
@_common
@click.pass_context
def new(click_ctx, workflow: str, data_file: str | None, source: str | None,
        customer: str | None, config_path, actor, as_json, store) -> None:
    """新建案件：dealerdocs new quote --data examples/quote.json --as zhang"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    data = _read_data(data_file) if data_file else {}
    result = ctx.engine.create(workflow, data, ctx.user(), source=source,
                               files_from=_files_from(data_file), customer=customer)
    _emit(ctx, {"id": result.id, "state": result.state,
                **({"customer": result.party} if result.party else {})},
          f"已新建 {result.id}（{result.state_label}）"
          + (f"，客户档案 {result.party}" if result.party else ""))


@main.command("import")
@click.argument("workflow")
@click.argument("file", metavar="FILE.xlsx", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="只检查并列出问题，不写入")
@_common
@click.pass_context
def import_cmd(click_ctx, workflow: str, file: Path, dry_run: bool, config_path, actor,
               as_json, store) -> None:
    """从 Excel 导入，全部或全不：dealerdocs import customers 客户.xlsx --as wang"""
    from .sheets import read_xlsx

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    report = ctx.engine.import_cases(workflow, read_xlsx(file), ctx.user(), dry_run=dry_run)
    lines = [f"{report.title}：{report.source}，{report.rows} 行数据"]
    if report.problems:
        lines.append(table(["行", "列", "问题"], [[f"第 {p.row} 行", p.column or "—", p.message]
                                                 for p in report.problems]))
        header = any(p.row == 1 for p in report.problems)
        rows = sum(row > 1 for row in report.failed_rows)
        lines.append("未导入：" + "，".join([*(["列名有问题"] if header else []),
                                           *([f"{rows} 行有错误"] if rows else [])])
                     + f"（共 {report.rows} 行，都未导入；改正后重新导入整个文件）")
    elif dry_run:
        lines.append(f"检查通过：{report.rows} 行都可导入（--dry-run，未写入）")
    elif any(o["outcome"] != "新增" for o in report.outcomes):
        # [import] update: a row per outcome (新增, 调价, 未变)
        lines.append(table(["行", "编号", "结果"], [[f"第 {o['row']} 行", o["id"], o["outcome"]]
                                                 for o in report.outcomes]))
        counts = Counter(o["outcome"] for o in report.outcomes)
        lines.append("，".join(f"{k} {n} 行" for k, n in counts.items()))
    else:
        ids = [c["id"] for c in report.created]
        span = ids[0] if len(ids) == 1 else f"{ids[0]} 至 {ids[-1]}"
        lines.append(f"已导入 {len(ids)} 个{report.title}（{span}）")
    _emit(ctx, report.to_dict(), "\n".join(lines))
    if report.problems:
        raise click.exceptions.Exit(InputError.exit_code)


@main.command()
@click.argument("case_id", metavar="CASE")
@click.argument("trigger")
@click.option("--data", "data_file", metavar="FILE|-", default=None, help="JSON 数据文件，- 为标准输入")
@click.option("--file", "files", metavar="FIELD=PATH", multiple=True,
              help="附件字段的文件，可重复：如 --file signed_contract=客户签署版.pdf")
@_common
@click.pass_context
def fire(click_ctx, case_id: str, trigger: str, data_file: str | None, files: tuple[str, ...],
         config_path, actor, as_json, store) -> None:
    """对案件执行操作：dealerdocs fire Q-1 issue --as zhang"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    data = _read_data(data_file) if data_file else None
    if files:
        data = _with_files(data or {}, files)
    result = ctx.engine.fire(case_id, trigger, ctx.user(), data, files_from=_files_from(data_file))
    lines = [f"{result.id} → {result.state_label}（{result.state}）"]
    lines += [f"  {d.number}  {d.title} 第 {d.version} 版\n    {d.pdf}\n    {d.docx}"
              for d in result.documents]
    _emit(ctx, {"id": result.id, "state": result.state,
                "documents": [d.to_dict() for d in result.documents]}, "\n".join(lines))


@main.command()
@click.argument("case_id", metavar="CASE")
@click.option("--reveal", is_flag=True,
              help="显示完整的身份证号、手机号（需有权限；每次都记入审计记录）")
@_common
@click.pass_context
def show(click_ctx, case_id: str, reveal: bool, config_path, actor, as_json, store) -> None:
    """显示案件：数据、合计、文档和历史（身份证号、手机号默认部分隐藏）。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    case = ctx.engine.case(case_id, actor=ctx.user(), reveal=reveal)
    wf = ctx.engine.workflow(case["workflow"])
    lines = [f"{case['id']}  {case['workflow_title']}  状态：{case['state_label']}（{case['state']}）",
             f"创建：{case['created_at']} {case['created_by']}   更新：{case['updated_at']} "
             f"{case['updated_by']}", "数据："]
    for name, spec in wf.fields.items():
        value = case["data"].get(name)
        if value not in (None, [], ""):
            lines.append(f"  {spec.label}：{_plain(value)}")
    if case["totals"]:
        lines.append("合计：")
        lines += [f"  {wf.total_labels.get(k, k)}：{v}" for k, v in case["totals"].items()
                  if v is not None]
    if case["documents"]:
        lines.append("文档：")
        lines += [f"  {d['number']}  第 {d['version']} 版  {d['status']}  {d['pdf']}"
                  for d in case["documents"]]
    lines.append("可执行：" + ("、".join(dict.fromkeys(f"{t['trigger']}（{t['label']}）" for t in case["triggers"]))
                             or "无"))
    lines.append("历史：")
    lines += [f"  {e['at']}  {e['actor']}  {e['trigger']}  {e['from'] or '—'} → {e['to']}"
              f"{'  ' + ','.join(e['documents']) if e['documents'] else ''}"
              for e in case["history"]]
    _emit(ctx, case, "\n".join(lines))


@main.command("list")
@click.option("--workflow", default=None, help="只列出某个工作流")
@click.option("--state", default=None, help="只列出某个状态")
@click.option("--from", "date_from", default=None, metavar="DATE", help="建档日期不早于 YYYY-MM-DD")
@click.option("--to", "date_to", default=None, metavar="DATE", help="建档日期不晚于 YYYY-MM-DD（含）")
@_common
@click.pass_context
def list_cmd(click_ctx, workflow, state, date_from, date_to, config_path, actor, as_json, store) -> None:
    """列出案件：dealerdocs list --workflow quote --state issued --from 2026-11-01"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    start = _date_option("--from", date_from) if date_from else None
    end = _date_option("--to", date_to) if date_to else None
    rows = ctx.engine.cases(workflow=workflow, state=state, opened_from=start, opened_to=end,
                            actor=ctx.user())
    text = table(["案件", "工作流", "状态", "摘要", "合计", "更新时间"],
                 [[r["id"], r["workflow"], r["state_label"], r["summary"],
                   r["total"] or "", r["updated_at"]] for r in rows])
    _emit(ctx, rows, text or "（没有案件）")


@main.command()
@click.argument("query")
@_common
@click.pass_context
def find(click_ctx, query: str, config_path, actor, as_json, store) -> None:
    """按姓名（部分即可）、完整手机号、证件号或车牌号查找客户档案：dealerdocs find 13800138000

    只在您能查看的案件中查找；结果中的号码仍部分隐藏（查找不是查看完整信息）。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    rows = ctx.engine.find(query, actor=ctx.user())
    text = table(["案件", "类别", "状态", "摘要", "联系电话", "顾问", "找到于"],
                 [[r["id"], r["workflow_title"], r["state_label"], r["summary"],
                   " ".join(r["contact"].values()), r["assignee_label"] or "",
                   "、".join(dict.fromkeys(f"{m['case']} {m['label']}" for m in r["matches"]))]
                  for r in rows])
    _emit(ctx, rows, text or f"（没有找到“{query.strip()}”：只在您能查看的案件中查找，号码须完整）")


@main.command()
@click.argument("case_id", metavar="CASE")
@_common
@click.pass_context
def timeline(click_ctx, case_id: str, config_path, actor, as_json, store) -> None:
    """案件（客户档案）及其关联案件的全部经过，最新的在前：来访、跟进、试驾、报价、合同、交车。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    lines = ctx.engine.timeline(case_id, actor=ctx.user())
    text = table(["时间", "案件", "经过", "经办", "文档"],
                 [[e["at"][:16].replace("T", " "), e["case"],
                   e["what"] + (f"（{e['change']}）" if e["change"] else "")
                   + (f"：{e['detail']}" if e["detail"] else ""),
                   e["actor_label"] or "", "、".join(d["number"] for d in e["documents"])]
                  for e in lines])
    _emit(ctx, lines, text or "（没有记录）")


@main.command()
@click.argument("number", required=False, metavar="[DOC_NUMBER]")
@click.option("--case", "case_id", default=None, help="只列出某个案件的文档")
@click.option("--status", default=None, type=click.Choice(["issued", "superseded", "void"]))
@_common
@click.pass_context
def docs(click_ctx, number, case_id, status, config_path, actor, as_json, store) -> None:
    """列出已出具的文档；给出文件编号时显示该文件的全过程（发放、回收、换版）。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    if number:
        life = ctx.engine.document(number, actor=ctx.user())
        lines = [f"{life['number']}  {life['title']} 第 {life['version']} 版  状态：{life['status']}",
                 f"  案件 {life['case_id']}，{life['issued_at']} 由 {life['issued_by']} 出具",
                 f"  PDF：{life['pdf']}"]
        if life.get("supersedes"):
            lines.append(f"  取代：{life['supersedes']}")
        if life.get("superseded_by"):
            lines.append(f"  已被 {life['superseded_by']} 取代（{life['superseded_at']}）")
        if life.get("stamped_pdf"):
            lines.append(f"  加盖「{life['stamp']}」的副本：{life['stamped_pdf']}")
        lines.append("副本：")
        lines += [f"  {c['label']}  {c['recipient']}（{c['dept']}，{c['channel']}） {c['issued_at'][:16]}"
                  f"  {c['status']}{'  ' + (c['reason'] or '') if c['reason'] else ''}"
                  for c in life["copies"]] or ["  （未发放）"]
        lines.append("登记日志：")
        lines += [f"  #{e['seq']} {e['at'][:16]} {e['actor'] or ''} {e['event']}"
                  f"{' ' + e['copy'] if e.get('copy') else ''}" for e in life["events"]]
        _emit(ctx, life, "\n".join(lines))
        return
    rows = ctx.engine.documents(case_id=case_id, status=status, actor=ctx.user())
    text = table(["编号", "文档", "版本", "案件", "状态", "出具时间", "出具人", "PDF"],
                 [[d["number"], d["title"], str(d["version"]), d["case_id"], d["status"],
                   d["issued_at"], d["issued_by"], d["pdf"]] for d in rows])
    _emit(ctx, rows, text or "（没有文档）")


@main.command()
@click.argument("name")
@click.option("--from", "date_from", default=None, metavar="DATE", help="开始日期 YYYY-MM-DD（默认不限）")
@click.option("--to", "date_to", default=None, metavar="DATE", help="结束日期 YYYY-MM-DD（含；默认不限）")
@click.option("--format", "formats", multiple=True, type=click.Choice(["xlsx", "docx", "pdf"]),
              help="输出格式，可重复；默认三种都输出")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="输出目录（默认 outbox/reports）")
@click.option("--reveal", is_flag=True,
              help="报表中显示完整的身份证号、手机号（需有权限；记入审计记录）")
@_common
@click.pass_context
def report(click_ctx, name, date_from, date_to, formats, out_dir, reveal, config_path, actor,
           as_json, store) -> None:
    """导出登记报表：dealerdocs report test-drives --from 2026-11-01 --to 2026-11-30"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    start = _date_option("--from", date_from) if date_from else None
    end = _date_option("--to", date_to) if date_to else None
    result = ctx.engine.report(name, start, end, tuple(formats) or ("xlsx", "docx", "pdf"),
                               out_dir, actor=ctx.user(), reveal=reveal)
    period = (f"截至 {result['as_of']}" if result.get("as_of")
              else f"{result['from'] or '最早'} 至 {result['to'] or '今天'}"
              if result["from"] or result["to"] else "全部")
    lines = [f"{result['title']}：{period}，共 {result['rows']} 条"]
    lines += [f"  {path}" for path in result["files"].values()]
    _emit(ctx, result, "\n".join(lines))


@main.command()
@click.option("--within", default=7, show_default=True, type=click.IntRange(0, 3650),
              help="列出此天数内到期的项目（已逾期的总是列出）")
@_common
@click.pass_context
def due(click_ctx, within: int, config_path, actor, as_json, store) -> None:
    """列出已逾期或即将到期的项目（如整改项目），含逾期/剩余天数、责任人和状态。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    rows = ctx.engine.due(within, actor=ctx.user())
    text = table(["项目", "类别", "状态", "责任人", "期限", "逾期/剩余", "摘要"],
                 [[r["id"], r["title"], r["state_label"], r["owner"] or "", r["deadline"],
                   f"逾期 {r['overdue_days']} 天" if r["overdue"] else f"剩余 {r['days_left']} 天",
                   (r["summary"] or "")[:30]] for r in rows])
    _emit(ctx, rows, text or f"（没有逾期或 {within} 天内到期的项目）")


@main.group()
def batch() -> None:
    """批量出具：对多个案件执行同一操作，或按 JSON Lines 文件逐行新建并出具；可中断后重跑续做。"""


@batch.command("fire")
@click.argument("trigger")
@click.argument("case_ids", nargs=-1, metavar="[CASE]...")
@click.option("--workflow", default=None, help="对该工作流中处于 --state 的全部案件执行")
@click.option("--state", default=None, help="与 --workflow 一起使用")
@click.option("--data", "data_file", metavar="FILE", default=None, help="每个案件都使用的 JSON 数据")
@_common
@click.pass_context
def batch_fire(click_ctx, trigger, case_ids, workflow, state, data_file, config_path, actor,
               as_json, store) -> None:
    """dealerdocs batch fire issue Q-1 Q-2 Q-3 --as zhang，或 --workflow quote --state draft"""
    from .batch import BatchItem

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    if bool(case_ids) == bool(workflow or state):
        raise InputError("请列出案件编号，或用 --workflow 和 --state 选出案件（二者选一）",
                         field="cases")
    if not case_ids:
        if not (workflow and state):
            raise InputError("--workflow 和 --state 要一起使用", field="state")
        case_ids = tuple(c["id"] for c in ctx.engine.cases(workflow=workflow, state=state,
                                                           actor=ctx.user()))
        if not case_ids:
            raise InputError(f"没有处于 {state} 的 {workflow} 案件", field="state")
    data = _read_data(data_file) if data_file else {}
    items = [BatchItem(case_id, trigger, case_id=case_id, data=data)
             for case_id in dict.fromkeys(case_ids)]
    _run_batch(ctx, "fire", trigger, items)


@batch.command("create")
@click.argument("workflow")
@click.option("--jsonl", "jsonl", required=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path), help="每行一个案件的 JSON 数据")
@click.option("--issue", "trigger", default=None, metavar="TRIGGER",
              help="新建后立即执行的操作（如 issue）")
@_common
@click.pass_context
def batch_create(click_ctx, workflow, jsonl, trigger, config_path, actor, as_json, store) -> None:
    """dealerdocs batch create quote --jsonl quotes.jsonl --issue issue --as zhang"""
    from .batch import read_jsonl

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    ctx.engine.workflow(workflow)
    _run_batch(ctx, "create", trigger, read_jsonl(jsonl, workflow, trigger))


def _run_batch(ctx: Ctx, kind: str, trigger: str | None, items: list) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .batch import BatchRunner

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=ctx.as_json or not console.is_terminal) as bar:
        task = bar.add_task("批量出具", total=len(items))

        def advance(result) -> None:
            bar.advance(task)
            if result.status == "failed":
                bar.console.print(f"[red]✗[/red] {result.key}：{result.error}")

        runner = BatchRunner(ctx.engine, ctx.user(), progress=advance)
        summary = runner.run(kind, trigger, items)
    lines = [f"批次 {summary['batch']}：共 {summary['items']} 项，完成 {summary['done']}，"
             f"此前已完成 {summary['skipped']}，失败 {summary['failed']}"]
    lines += [f"  ✗ {r['key']}{'（' + r['case'] + '）' if r['case'] else ''}：{r['error']}"
              for r in summary["results"] if r["status"] == "failed"]
    _emit(ctx, summary, "\n".join(lines))
    if summary["failed"]:
        raise click.exceptions.Exit(1)


@main.command()
@click.argument("action", type=click.Choice(["start", "stop", "status"]))
@click.option("--instances", type=click.IntRange(1, 8), default=None,
              help="实例数（默认 config.toml 的 warm_instances，或 CPU 核数）")
@_common
@click.pass_context
def converter(click_ctx, action, instances, config_path, actor, as_json, store) -> None:
    """常驻 LibreOffice（工作进程池）：start 启动、stop 停止、status 查看；之后的命令自动使用。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    warm = ctx.engine.warm_converter(instances)
    if action == "start":
        pool = warm.start()
        _emit(ctx, pool, "\n".join(f"实例 {i['slot']}：进程 {i['pid']}，{i['socket']}" for i in pool))
    elif action == "stop":
        count = warm.stop()
        _emit(ctx, {"stopped": count}, f"已停止 {count} 个实例")
    else:
        rows = warm.status()
        _emit(ctx, rows, "\n".join(f"实例 {i['slot']}：进程 {i['pid']}，"
                                   f"{'运行中' if i['alive'] else '无响应'}" for i in rows)
              or "没有运行的实例（每份文档冷启动 LibreOffice）")


@main.command()
@click.argument("targets", nargs=-1, metavar="[TEMPLATE|WORKFLOW]...")
@_common
@click.pass_context
def lint(click_ctx, targets, config_path, actor, as_json, store) -> None:
    """检查模板和工作流（变量、标签、字体、试渲染、状态图）；有错误时退出码非 0。"""
    from .config import load_config
    from .lint import format_findings, functions_report, lint_paths, load_for_lint

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    config = load_config(ctx.config_path or "config.toml")  # lint reports broken workflows itself
    loaded = load_for_lint(config)
    findings = lint_paths(config, list(targets), loaded)
    if ctx.as_json:
        click.echo(json.dumps([dataclasses.asdict(f) for f in findings], ensure_ascii=False, indent=2))
    else:
        for line in functions_report(config, loaded[0], list(targets)):
            click.echo(line)
        click.echo(format_findings(findings))
    if any(f.severity == "error" for f in findings):
        sys.exit(11)


@main.command()
@click.argument("workflow")
@click.option("--format", "fmt", type=click.Choice(["text", "md"]), default="text",
              show_default=True, help="text：终端表格；md：Markdown（templates/README.md 的变量表）")
@_common
@click.pass_context
def fields(click_ctx, workflow, fmt, config_path, actor, as_json, store) -> None:
    """模板可用的变量：流程的字段、计算值和关联单据，及哪些模板用到：dealerdocs fields quote"""
    from . import variables
    from .workflow import load_workflows

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    config = _config(ctx)
    workflows = load_workflows(config)
    if workflow not in workflows:
        from .errors import NotFoundError

        raise NotFoundError(f"没有名为 \"{workflow}\" 的流程（可用：{'、'.join(workflows)}）",
                            workflow=workflow)
    wf = workflows[workflow]
    names = variables.template_names(wf, config.template_layers.find)
    if ctx.as_json:
        _emit(ctx, {"workflow": wf.key, "title": wf.title,
                    "documents": [d.to_dict() for d in variables.documents(wf, names)],
                    "variables": [v.to_dict() for v in variables.variables(wf, workflows, names)]},
              "")
    elif fmt == "md":
        click.echo(variables.markdown(wf, workflows, names))
    else:
        click.echo(table(["写法", "含义", "类型", "备注", "用于"],
                         variables.text_rows(wf, workflows, names)))


@main.group()
def templates() -> None:
    """Word 模板：本店副本优先，其次是默认模板（templates list | copy | diff | accept）。"""


def _config(ctx: Ctx):
    from .config import load_config

    return load_config(ctx.config_path or "config.toml")


def _now(config):
    from datetime import datetime

    clock = _clock_from_env(config)
    return clock() if clock else datetime.now(config.tz).replace(microsecond=0)


@templates.command("list")
@_common
@click.pass_context
def templates_list(click_ctx, config_path, actor, as_json, store) -> None:
    """列出模板：每个模板用的是本店副本还是默认模板，副本是否落后于更新后的默认模板。"""
    from . import templates as layers

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    config = _config(ctx)
    rows = layers.statuses(config.template_layers)
    text = table(["模板", "使用", "文件"], [[r.name, r.label, str(r.path)] for r in rows])
    _emit(ctx, [r.to_dict() for r in rows], text or "（没有模板）")


@templates.command("copy")
@click.argument("name")
@click.option("--force", is_flag=True, help="本店已有副本时也重新复制（原副本改名为 ….bak 保留）")
@_common
@click.pass_context
def templates_copy(click_ctx, name, force, config_path, actor, as_json, store) -> None:
    """把默认模板复制到本店模板目录，供在 Word / WPS 中修改：dealerdocs templates copy quote"""
    from . import templates as layers

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    config = _config(ctx)
    result = layers.copy(config.template_layers, name, now=_now(config), force=force)
    backup = f"；原副本已改名为 {result['backup']}" if result["backup"] else ""
    _emit(ctx, result, f"已复制 {result['name']} → {result['path']}{backup}\n"
                       f"在 Word / WPS 中修改这个文件；出具时用它而不用默认模板。改完后请运行 "
                       f"dealerdocs lint {result['name']} 检查")


@templates.command("diff")
@click.argument("name", required=False)
@_common
@click.pass_context
def templates_diff(click_ctx, name, config_path, actor, as_json, store) -> None:
    """本店副本落后于更新后的默认模板之处（默认模板的文字改动），及本店自己的修改。
    不给 NAME 时检查全部副本。"""
    from . import templates as layers

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    found = _config(ctx).template_layers
    if name:
        diffs = [layers.diff(found, name)]
    else:
        diffs = [layers.diff(found, s.name) for s in layers.statuses(found) if s.own]
    lines = [line for d in diffs for line in layers.format_diff(d, show_store=bool(name))]
    stale = sum(d.status.state == "lagging" for d in diffs)
    if not name:
        lines.append(f"本店副本 {len(diffs)} 个，其中 {stale} 个落后于更新后的默认模板" if diffs
                     else "本店没有模板副本，全部使用默认模板")
    _emit(ctx, [d.to_dict() for d in diffs], "\n".join(lines))


@templates.command("accept")
@click.argument("name")
@_common
@click.pass_context
def templates_accept(click_ctx, name, config_path, actor, as_json, store) -> None:
    """确认本店副本已包含默认模板的最新改动：之后与现在的默认模板比较。"""
    from . import templates as layers

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    config = _config(ctx)
    result = layers.accept(config.template_layers, name, now=_now(config))
    _emit(ctx, result, f"已记录：本店副本 {result['path']} 基于现在的默认模板")


@main.command()
@click.argument("workflow")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="输出文件 .svg 或 .png")
@_common
@click.pass_context
def diagram(click_ctx, workflow, out, config_path, actor, as_json, store) -> None:
    """画出工作流的状态流转图（需要 graphviz）：dealerdocs diagram contract --out 合同.svg"""
    from .diagram import write_diagram

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    engine = ctx.engine
    path = write_diagram(engine.workflow(workflow), engine.config, out)
    _emit(ctx, {"workflow": workflow, "file": str(path.resolve())}, f"已写出 {path}")


@main.command()
@click.argument("target", metavar="CASE|WORKFLOW")
@click.option("--data", "data_file", metavar="FILE|-", default=None, help="JSON 数据（叠加在案件数据上）")
@click.option("--trigger", default=None, help="预览这个操作会出具的文档（默认：当前可执行操作的全部文档）")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="输出目录（默认临时目录）")
@_common
@click.pass_context
def preview(click_ctx, target, data_file, trigger, out_dir, config_path, actor, as_json, store) -> None:
    """预览文档：盖「草稿」章，不编号、不登记、不改变状态。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    data = _read_data(data_file) if data_file else None
    result = ctx.engine.preview(target, ctx.user(), data=data, trigger=trigger, out_dir=out_dir)
    _emit(ctx, result, "草稿预览（未编号、未登记）：\n" + "\n".join(f"  {f}" for f in result["files"]))


@main.command()
@click.argument("number", metavar="DOC_NUMBER")
@click.option("--to", "recipient", required=True, help="领用人")
@click.option("--dept", required=True, help="领用部门")
@click.option("--copies", default=1, show_default=True, type=int, help="份数")
@click.option("--channel", default="纸质", show_default=True, help="纸质 或 电子")
@click.option("--print", "print_copies", is_flag=True, help="同时生成加盖「受控文件」和发放号的 PDF")
@_common
@click.pass_context
def dispatch(click_ctx, number, recipient, dept, copies, channel, print_copies, config_path,
             actor, as_json, store) -> None:
    """发放文件副本（每份一个发放号）：dealerdocs dispatch HT-2026-000001 --to 王芳 --dept 财务部"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    result = ctx.engine.dispatch(number, to=recipient, dept=dept, copies=copies, channel=channel,
                                 actor=ctx.user(), print_copies=print_copies)
    lines = [f"{number}：发放 {len(result['copies'])} 份给 {recipient}（{dept}）"]
    lines += [f"  发放号 {c['label']}" for c in result["copies"]]
    lines += [f"  {p}" for p in result.get("printed", [])]
    _emit(ctx, result, "\n".join(lines))


@main.command()
@click.argument("number", metavar="DOC_NUMBER")
@click.option("--reason", required=True, help="换版 | 作废 | 损坏 | 丢失")
@click.option("--copy", "copy_no", type=int, default=None, help="只回收这个发放号（数字）")
@click.option("--from", "from_", default=None, help="交回人（默认为领用人）")
@click.option("--keep", is_flag=True, help="回收后作废留存（默认销毁）")
@_common
@click.pass_context
def recall(click_ctx, number, reason, copy_no, from_, keep, config_path, actor, as_json, store) -> None:
    """回收文件副本：dealerdocs recall BJ-2026-000001 --reason 换版 [--copy 2]"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    result = ctx.engine.recall(number, reason=reason, copy=copy_no, from_=from_, keep=keep,
                               actor=ctx.user())
    lines = [f"{number}：{reason}，处理 {len(result['copies'])} 份"]
    lines += [f"  {c['label']} → {c['status']}（{c['disposition']}）"
              f"{'，补发 ' + c['replaced_by'] if c.get('replaced_by') else ''}"
              for c in result["copies"]]
    _emit(ctx, result, "\n".join(lines))


@main.group()
def register() -> None:
    """文件发放回收记录表。"""


@register.command("export")
@click.option("--format", "fmt", required=True, type=click.Choice(["xlsx", "docx", "pdf"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "date_from", default=None, metavar="DATE")
@click.option("--to", "date_to", default=None, metavar="DATE")
@_common
@click.pass_context
def register_export(click_ctx, fmt, out, date_from, date_to, config_path, actor, as_json, store) -> None:
    """导出文件发放回收记录表：dealerdocs register export --format xlsx --out 记录表.xlsx"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    start = _date_option("--from", date_from) if date_from else None
    end = _date_option("--to", date_to) if date_to else None
    result = ctx.engine.register_export(fmt, out, start, end, actor=ctx.user())
    _emit(ctx, result, f"文件发放回收记录表：{result['rows']} 行 → {result['file']}")


def _date_option(name: str, value: str):
    from .dates import parse_date

    try:
        return parse_date(value)
    except ValueError as err:
        raise InputError(f"{name} {err}", field=name) from None


@main.command()
@_common
@click.pass_context
def tick(click_ctx, config_path, actor, as_json, store) -> None:
    """执行已到期的定时操作（工作流的 [[timers]]，如报价过期、整改逾期标记），操作人记为
    system；可由 cron 或 systemd 定时器每几分钟运行一次，重复运行不会重复执行。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    done = ctx.engine.tick()
    lines = []
    for entry in done:
        wf = ctx.engine.workflow(entry["workflow"])
        label = next(t.label for t in wf.transitions if t.trigger == entry["trigger"])
        if "refused" in entry:
            lines.append(f"  {entry['case']}  {label}（{entry['trigger']}）未执行：{entry['refused']}")
        else:
            docs = f"，出具 {'、'.join(entry['documents'])}" if entry["documents"] else ""
            lines.append(f"  {entry['case']}  {label}（{entry['trigger']}）→ {entry['state_label']}{docs}")
    fired = sum("refused" not in e for e in done)
    _emit(ctx, done, "\n".join([f"已执行 {fired} 项定时操作"
                               + (f"，{len(done) - fired} 项未能执行" if fired < len(done) else "")
                               + ("：" if done else "（没有到期的）"), *lines]))


@main.command()
@click.option("--seal", "seal_file", default=None, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="同时核对 FILE 中的封存行（dealerdocs seal 生成）")
@_common
@click.pass_context
def verify(click_ctx, seal_file, config_path, actor, as_json, store) -> None:
    """校验：哈希链、登记簿、各案件的记录副本、所有已出具文件的 sha256 与 PDF 中记载的链尾；
    加 --seal FILE 时，还核对哈希链是否仍延续 FILE 中的每一条封存。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    problems = ctx.engine.verify(seals=seal_file)
    count = ctx.engine.document_count()
    sealed = ""
    if seal_file is not None:
        lines = ctx.engine.read_seals(seal_file)
        ours = [line for line in lines if line.status == "ok"]
        others = sum(line.status == "other_store" for line in lines)
        sealed = (f"；哈希链延续了 {seal_file} 中本店的 {len(ours)} 条封存"
                  + (f"（最近一条 {max(line.seal.at for line in ours)}）" if ours else "")
                  + (f"，另有其他门店的 {others} 行未核对" if others else ""))
    if ctx.as_json:
        click.echo(json.dumps({"ok": not problems, "documents": count, "problems": problems},
                              ensure_ascii=False, indent=2))
    elif problems:
        for p in problems:
            if p.get("detail"):
                click.echo(p["detail"], err=True)
                continue
            what = "文件缺失" if p["problem"] == "missing" else "文件已被改动"
            click.echo(f"{p['number']}: {what}：{p['path']}", err=True)
        click.echo(f"校验失败：{len(problems)} 处问题（共 {count} 份文档）；第一处：" +
                   (problems[0].get("detail") or problems[0]["path"]), err=True)
    else:
        click.echo(f"校验通过：{count} 份文档的文件与登记的 sha256 一致，审计记录与发放登记日志的哈希链完整"
                   f"{sealed}")
    if problems:
        sys.exit(10)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_common
@click.pass_context
def check(click_ctx, file, config_path, actor, as_json, store) -> None:
    """核对一份 PDF：读出其中的验证二维码（或元数据中的验证地址），在登记簿中查找该编号，
    比对校验码与文件的 sha256，并说明文件现在是否有效。文件与存档不一致时退出码 10，
    文件已失效（已换版、收回或作废）时退出码 6。"""
    from .errors import IntegrityError, StateError

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    try:
        data = file.read_bytes()
    except OSError as err:
        raise InputError(f"无法读取 {file}：{err}", field="file") from err
    result = ctx.engine.check_file(data)
    facts, compared = result["facts"], result["file"]
    problem: DealerDocsError | None = None
    if facts is None:
        problem = IntegrityError(f"二维码与登记簿不符：编号 {result['number']} 第 {result['version']} 版"
                                 f"的校验码 {result['h']} 不匹配（二维码是伪造或抄来的，或这不是本系统出具的文件）",
                                 number=result["number"])
    elif not compared["matches"]:
        problem = IntegrityError(f"文件与存档不一致：{file.name} 的 sha256 与 {facts['number']} "
                                 f"存档的 PDF 都不同，文件在出具后被改动过，或是重新生成的",
                                 number=facts["number"])
    elif not facts["valid"]:
        problem = StateError(f"{facts['number']} {facts['status_text']}，这份文件已不再有效",
                             number=facts["number"])
    if ctx.as_json:
        click.echo(json.dumps({**result, "ok": problem is None,
                               "problem": problem.message if problem else None},
                              ensure_ascii=False, indent=2))
    else:
        if facts is not None:
            click.echo(f"文件：{facts['title']} {facts['number']}（第 {facts['version']} 版）\n"
                       f"出具门店：{facts['store']}\n出具日期：{facts['issued_on']}\n"
                       f"状态：{facts['status_text']}")
            click.echo(f"文件比对：与{compared['same']}逐字节一致" if compared["matches"]
                       else "文件比对：与存档不一致")
        if problem is None:
            click.echo("核对通过：文件与存档一致，且现行有效")
        else:
            click.echo(f"错误：{problem.message}", err=True)
    if problem is not None:
        sys.exit(problem.exit_code)


@main.command("seal")
@click.option("--out", "out", default=None, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="把封存行追加到 FILE（放在数据库之外，如 U 盘）")
@_common
@click.pass_context
def seal_cmd(click_ctx, out, config_path, actor, as_json, store) -> None:
    """输出一行封存（各哈希链的条数与链尾、文件份数、HMAC），每天打印或另存一份；
    日后用 dealerdocs verify --seal FILE 核对数据库未被整体改写。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    result = ctx.engine.seal(out=out)
    if result["key_created"]:
        click.echo(f"已生成封存密钥 {result['key']}（权限 0600）。请另行备份这把密钥并妥善保管："
                   f"核对封存时需要它，丢失后以前的封存都无法再核对。", err=True)
    if out is not None and not ctx.as_json:
        click.echo(f"已追加到 {result['out']}", err=True)
    _emit(ctx, result, result["line"])


@main.command()
@click.argument("case_id", metavar="CASE")
@click.option("--to", "to", required=True, metavar="LOGIN", help="接手的销售顾问（config.toml 的用户）")
@click.option("--reason", default=None, help="改派原因（记入审计记录）")
@_common
@click.pass_context
def reassign(click_ctx, case_id, to, reason, config_path, actor, as_json, store) -> None:
    """把案件及其关联案件（报价、合同、交车）改派给另一位销售顾问（经理）。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    result = ctx.engine.reassign(case_id, to, actor=ctx.user(), reason=reason)
    _emit(ctx, result, f"已改派给 {result['to']}：{'、'.join(result['cases'])}")


@main.command()
@click.option("--customer", default=None, metavar="MOBILE|ID",
              help="按客户手机号或身份证号删除其个人信息")
@click.option("--expired", is_flag=True, help="删除所有超过保存期限（[privacy]）的已结束案件中的个人信息")
@_common
@click.pass_context
def purge(click_ctx, customer, expired, config_path, actor, as_json, store) -> None:
    """删除个人信息（经理）：法律要求保存的合同、交车单据保留并说明依据。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    result = ctx.engine.purge(actor=ctx.user(), customer=customer, expired=expired)
    lines = [f"已删除 {len(result['purged'])} 个案件中的个人信息"]
    lines += [f"  {p['case']}  {p['workflow']}：{'、'.join(p['fields']) or '—'}"
              f"{'；删除文件 ' + '、'.join(p['documents']) if p['documents'] else ''}"
              for p in result["purged"]]
    if result["kept"]:
        lines.append("保留（法律要求保存）：")
        lines += [f"  {k['case']}  {k['workflow']}：{k['reason']}" for k in result["kept"]]
    if result["in_progress"]:
        lines.append("进行中，未删除（结束或取消后再删除）：")
        lines += [f"  {w['case']}  {w['workflow']}（{w['state']}）" for w in result["in_progress"]]
    _emit(ctx, result, "\n".join(lines))


@main.group("store")
def store_cmd() -> None:
    """数据库：把整个数据库复制到 PostgreSQL 或另一个目录。"""


@store_cmd.command("copy")
@click.option("--to", "to", required=True, metavar="postgresql://…|DIR",
              help="目标：新的空 PostgreSQL 数据库（密码用环境变量 PGPASSWORD），或一个新目录")
@click.option("--files", "files", default=None, type=click.Choice(["outbox", "database"]),
              help="目标存放已出具文件的方式（config.toml 的 files）：database = 存入目标 PostgreSQL "
                   "数据库；默认与当前相同（目录目标总是 outbox）")
@click.option("--outbox", "outbox", default=None, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="把已出具文件写入这个新的空目录（当前文件存放在数据库中、目标不存放时必须给出）")
@_common
@click.pass_context
def store_copy(click_ctx, to, files, outbox, config_path, actor, as_json, store) -> None:
    """把当前数据库的全部案件、文件记录、发放记录、审计与登记日志（链哈希不变）、计数器和登录会话
    复制到一个新的空数据库；之后把 config.toml 的 store（以及 files、[paths] outbox）指向它，
    并运行 dealerdocs verify。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    result = ctx.engine.copy_store(to, files=files, outbox=outbox)
    heads = "；".join(f"{name} 链尾 {(head or '（空）')[:12]}…" for name, head in result["heads"].items())
    moved = ""
    if result["files_to"]:
        where = "目标数据库" if result["files_to"] == "database" else result["files_to"]
        moved = f"；已出具文件 {result['files']} 个存入{where}"
        if result["files_skipped"]:
            moved += (f"，{len(result['files_skipped'])} 个缺失或与登记不符未复制（第一个："
                      f"{result['files_skipped'][0]['path']}），请运行 dealerdocs verify 查明")
    _emit(ctx, result, f"已复制到 {result['target']}：{result['cases']} 个案件，"
                       f"{result['documents']} 份文件，{result['copies']} 份发放记录，"
                       f"审计 {result['entries'].get('audit', 0)} 条、登记日志 "
                       f"{result['entries'].get('register_log', 0)} 条（{heads}）{moved}；"
                       f"新配置中请写 files = \"{result['files_setting']}\"")


@main.command()
@click.option("--discard-journal", is_flag=True,
              help="把无法补完的数据库日志（journal/commit.json）移到一旁；其中那次写入作废")
@_common
@click.pass_context
def recover(click_ctx, discard_journal, config_path, actor, as_json, store) -> None:
    """处理上次中断后无法自动补完的写入：先备份数据库目录，再用 --discard-journal。"""
    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    if not discard_journal:
        raise InputError("请加 --discard-journal（先备份整个数据库目录）", field="discard_journal")
    moved = ctx.engine.discard_journal()
    if moved is None:
        _emit(ctx, {"discarded": None}, "没有待补完的数据库日志，无需处理")
        return
    problems = ctx.engine.verify()
    _emit(ctx, {"discarded": str(moved), "problems": problems},
          f"已把数据库日志移到 {moved}；其中那次写入作废。校验："
          + ("通过" if not problems else f"{len(problems)} 处问题，请运行 dealerdocs verify 查看"))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="端口")
@click.option("--forwarded-allow-ips", "forwarded_allow_ips", default=None, metavar="IPS",
              help="反向代理的地址（逗号分隔，或 *）：信任其 X-Forwarded-For 头中的客户端地址；"
                   "不给则忽略这些头")
@click.option("--tick-seconds", "tick_seconds", default=300, show_default=True,
              type=click.FloatRange(min=0),
              help="每隔多少秒执行一次到期的定时操作（同 dealerdocs tick）；0 表示不执行")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="工作进程数（同一端口；多核服务器上可设为 CPU 核数）")
@_common
@click.pass_context
def serve(click_ctx, host, port, forwarded_allow_ips, tick_seconds, workers, config_path, actor,
          as_json, store) -> None:
    """启动网页版（员工用浏览器登录）：dealerdocs serve --port 8000"""
    from .web.cli import serve as run_server  # the web stack loads only for this command

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    run_server(ctx.engine, host, port, config_path=ctx.config_path or "config.toml",
               forwarded_allow_ips=forwarded_allow_ips, tick_seconds=tick_seconds,
               workers=workers)


@main.group()
def cert() -> None:
    """本店签章证书：生成测试证书、查看证书。"""


@cert.command("make-test")
@click.argument("folder", metavar="DIR")
@click.option("--name", default=None, help="证书上的店名（默认 config.toml 的 dealer.name）")
@_common
@click.pass_context
def cert_make_test(click_ctx, folder, name, config_path, actor, as_json, store) -> None:
    """生成自签名的测试 CA 与本店证书（PKCS#12，仅供演示和测试，无法律效力）。"""
    from . import certs
    from .config import load_config

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    variable = "DEALERDOCS_CERT_PASSWORD"
    if name is None:
        config = load_config(ctx.config_path or "config.toml")
        name, variable = config.dealer.name, config.signing.password_env
    made = certs.make_test(Path(folder), name)
    _emit(ctx, {**made, "password_env": variable},
          f"已生成测试证书（仅供演示和测试，无法律效力）：\n"
          f"  本店证书：{made['certificate']}（{made['subject']}，有效期至 {made['not_after'][:10]}）\n"
          f"  测试 CA：{made['ca']}\n"
          f"在 config.toml 中写：\n  [signing]\n  certificate = \"{made['certificate']}\"\n"
          f"  password_env = \"{variable}\"\n"
          f"  [documents.contract]\n  sign = true\n"
          f"并在运行 dealerdocs 的环境中设置证书密码（只显示这一次）：\n"
          f"  export {variable}='{made['password']}'")


@cert.command("show")
@_common
@click.pass_context
def cert_show(click_ctx, config_path, actor, as_json, store) -> None:
    """显示 [signing] certificate 的主体、签发者与有效期（需证书密码的环境变量）。"""
    from . import certs, signing
    from .config import load_config

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    config = load_config(ctx.config_path or "config.toml")
    shown = certs.describe(signing.store_signer(config).identity)
    _emit(ctx, {"certificate": str(config.certificate_path), **shown},
          f"证书文件：{config.certificate_path}\n  主体：{shown['subject']}\n"
          f"  签发者：{shown['issuer']}\n  有效期：{shown['not_before'][:10]} 至 "
          f"{shown['not_after'][:10]}\n  SHA-256 指纹：{shown['sha256']}\n"
          f"  证书链：{'；'.join(shown['chain']) or '（无，信任证书本身）'}")


@main.group()
def user() -> None:
    """用户的网页登录：密码与 API 令牌。"""


@user.command("set-password")
@click.argument("login")
@_common
@click.pass_context
def user_set_password(click_ctx, login, config_path, actor, as_json, store) -> None:
    """设置网页登录密码（argon2 哈希写入 config.toml；从终端输入两次，或从标准输入读）；
    该用户已有的登录会话和 API 令牌随即失效。"""
    from .web.cli import read_password, set_password

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    path = set_password(ctx.config_path or "config.toml", login, read_password())
    ended = ctx.engine.sessions.end_all(login)
    _emit(ctx, {"user": login, "config": str(path), "sessions_ended": ended},
          f"已为 {login} 设置密码（{path}）；已结束其 {ended} 个登录会话和令牌；"
          f"正在运行的 dealerdocs serve 无需重启")


@user.command("tokens")
@click.argument("login")
@click.option("--revoke", "revoke_id", default=None, metavar="ID|all",
              help="撤销这个编号的令牌（all：该用户的全部令牌）")
@_common
@click.pass_context
def user_tokens(click_ctx, login, revoke_id, config_path, actor, as_json, store) -> None:
    """列出用户的 API 令牌（编号、名称、创建与到期时间；不显示令牌本身），或撤销：
    dealerdocs user tokens wang --revoke 3f2a…"""
    from .web.cli import revoke, token_lines

    ctx = _ctx(click_ctx, config_path, actor, as_json, store)
    if revoke_id:
        ended = revoke(ctx.engine, login, revoke_id)
        _emit(ctx, {"user": login, "revoked": ended},
              f"已撤销 {login} 的 {len(ended)} 个令牌" +
              "".join(f"\n  {t['id']}  {t['label']}" for t in ended))
        return
    rows, text = token_lines(ctx.engine, login)
    _emit(ctx, {"user": login, "tokens": rows}, text)


def _with_files(data: Any, files: tuple[str, ...]) -> dict[str, Any]:
    """``data`` with each ``--file FIELD=PATH`` added to its attachment field (absolute
    paths: the data file's folder does not apply to them)."""
    if not isinstance(data, dict):
        raise InputError("--data 应为 JSON 对象，才能再用 --file 添加附件")
    out = dict(data)
    for item in files:
        name, _, path = item.partition("=")
        if not name or not path:
            raise InputError(f"--file 应写成 字段=文件路径（如 signed_contract=签署版.pdf），收到 \"{item}\"",
                             field="file")
        if not Path(path).is_file():
            raise InputError(f"--file {name}：找不到文件 {path}", field=name)
        listed = out.get(name) or []
        out[name] = [*(listed if isinstance(listed, list) else [listed]),
                     str(Path(path).resolve())]
    return out


def _files_from(source: str | None) -> Path | None:
    """Attachment paths in a data file are relative to that file's folder (stdin: the cwd)."""
    return Path(source).resolve().parent if source and source != "-" else None


def _read_data(source: str) -> Any:
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            text = Path(source).read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"无法读取数据文件 {source}：{err.strerror}") from err
    except UnicodeDecodeError:
        raise InputError(f"数据文件 {source} 不是 UTF-8 编码") from None
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as err:
        raise InputError(f"数据文件 {source} 不是有效 JSON：第 {err.lineno} 行第 {err.colno} 列，"
                         f"{err.msg}") from err


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return "；".join(", ".join(f"{v}" for v in row.values()) if isinstance(row, dict)
                        else str(row) for row in value)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (Decimal, Path)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _emit(ctx: Ctx, payload: Any, text: str) -> None:
    if ctx.as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_default))
    else:
        click.echo(text)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table that lines up Chinese (double-width) characters."""
    if not rows:
        return ""
    widths = [max(_width(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    def line(cells):
        return "  ".join(str(c) + " " * (w - _width(str(c))) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def run() -> None:
    """Console entry point: one clear line and a non-zero exit for user-facing errors."""
    private_umask()  # the store, the outbox and LibreOffice's files: the service user's only
    level = os.environ.get("DEALERDOCS_LOG")
    if level:  # e.g. DEALERDOCS_LOG=debug: what the engine does, on standard error
        import logging

        logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # without standalone mode, click returns the code of a command's Exit instead of
        # exiting with it (a batch with failed items, an import with problems)
        code = main.main(standalone_mode=False, prog_name="dealerdocs")
        if isinstance(code, int) and code:
            sys.exit(code)
    except DealerDocsError as err:
        if "--json" in sys.argv[1:]:
            click.echo(json.dumps(err.to_dict(), ensure_ascii=False, default=_json_default))
        click.echo(f"错误：{err.message}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("已中止", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)


if __name__ == "__main__":  # pragma: no cover
    run()
