"""Helpers shared by the tests: a settable clock, a dealership folder, and readers that open
the generated .docx (python-docx) and PDF (pdftotext, pdffonts) the way a person would."""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))


class Clock:
    """A settable clock (China Standard Time) injected into the engine."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# How `dealerdocs init` (and make_dealer_dir) names the product's workflows in config.toml.
SHIPPED_WORKFLOWS = 'workflows = ""'


def make_dealer_dir(directory: Path) -> Path:
    """A dealership folder like `dealerdocs init DIR` makes: own store, outbox and templates
    folder (empty: every template is the product's default), the product's workflows."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for old, new in (('templates = "templates/docx"', 'templates = "templates"'),
                     ('workflows = "workflows"', SHIPPED_WORKFLOWS)):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.toml").write_text(text, encoding="utf-8")
    return keep_seal_key_beside(directory / "config.toml")


def point_at_workflows(config_path: Path, folder: str) -> Path:
    """Point a config made by :func:`make_dealer_dir` at its own workflows ``folder``, without
    config.toml's ``[policy]`` overrides and ``[documents.<kind>]`` settings: they name keys
    and document kinds of the product's workflows, which a folder with only some of those
    workflows does not all declare."""
    text = config_path.read_text(encoding="utf-8")
    assert text.count(SHIPPED_WORKFLOWS) == 1 and text.count("\n[policy]\n") == 1
    text = text.replace(SHIPPED_WORKFLOWS, f"workflows = {json.dumps(folder)}")
    text = re.sub(r"\n\[policy\]\n(?:[^\[\n].*\n|\n)*", "\n", text)
    text = re.sub(r"\n\[documents\.\w+\]\n(?:[^\[\n].*\n|\n)*", "\n", text)
    config_path.write_text(text, encoding="utf-8")
    return config_path


def use_pool(config: Path, pool: Path) -> None:
    """Point a dealership's config.toml at a shared warm pool (``[libreoffice] pool``)."""
    text = config.read_text(encoding="utf-8")
    text, count = re.subn(r'(?m)^pool = ".*"', f"pool = {json.dumps(str(pool))}", text)
    assert count == 1, "config.toml has no [libreoffice] pool line"
    config.write_text(text, encoding="utf-8")


def keep_seal_key_beside(config: Path) -> Path:
    """Point ``[seal] key`` of ``config`` into its test folder (never the real home), outside
    the store and outbox; returns ``config``."""
    text = config.read_text(encoding="utf-8")
    assert text.count('\nkey = ""\n') == 1, "config.toml's [seal] key must be the empty default"
    key = config.parent / "keys" / "seal.key"
    config.write_text(text.replace('\nkey = ""\n', f"\nkey = {json.dumps(str(key))}\n"),
                      encoding="utf-8")
    return config


def pdf_text(path: Path, layout: bool = True) -> str:
    """The PDF's text laid out as on the page, or (``layout=False``) in reading order, where a
    header wrapped one character a line in a narrow column reads as its words."""
    out = subprocess.run(["pdftotext", *(["-layout"] if layout else []), str(path), "-"],
                         capture_output=True, text=True, check=True)
    return out.stdout


def qr_codes(path: Path, dpi: int = 150) -> list[list[str]]:
    """The QR codes zbar (pyzbar) reads on each page of the PDF at ``path``, rendered in grey
    by pdftoppm at ``dpi``: one list of texts per page."""
    import tempfile

    from pyzbar.pyzbar import decode

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), str(path), f"{folder}/page"],
                       check=True)
        pages = []
        for image in sorted(Path(folder).glob("page-*.pgm"), key=lambda p: int(p.stem[5:])):
            data = image.read_bytes()
            header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
            assert header, "pdftoppm -gray writes 8-bit PGM"
            w, h = int(header.group(1)), int(header.group(2))
            pages.append([c.data.decode("utf-8") for c in decode((data[header.end():], w, h))])
    return pages


def pdf_fonts(path: Path) -> list[dict[str, str]]:
    """pdffonts rows as dicts: name, type, emb (yes/no)."""
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    rows = []
    for line in out.stdout.splitlines()[2:]:
        parts = line.split()
        # name type [subtype words…] encoding emb sub uni object ID
        rows.append({"name": parts[0], "emb": parts[-5], "uni": parts[-3]})
    return rows


def docx_text(data_or_path) -> str:
    """All text of a .docx: body paragraphs, tables, headers and footers."""
    import io

    import docx

    doc = docx.Document(io.BytesIO(data_or_path) if isinstance(data_or_path, bytes)
                        else str(data_or_path))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    for section in doc.sections:
        parts.extend(p.text for p in section.header.paragraphs)
        parts.extend(p.text for p in section.footer.paragraphs)
    return "\n".join(parts)


def dealerdocs_bin() -> str:
    """The console script installed next to this Python (the real entry point)."""
    import sys

    return str(Path(sys.executable).parent / "dealerdocs")


def run_cli(*args: str, cwd: Path, stdin: str | None = None, check: bool = True,
            today: str | None = None, process: bool = False):
    """Run ``dealerdocs``; fail with its output if ``check`` and it fails. ``today``
    (YYYY-MM-DD) sets DEALERDOCS_TODAY, the day the engine sees.

    By default the console entry point (``engine.cli:run``) runs in this process, with the argv,
    environment, working folder and standard input a child would get (:func:`run_in_process`):
    a new Python costs about half a second a command. ``process=True`` starts the installed
    ``dealerdocs`` script as its own process, for tests whose point is the process (kills,
    concurrency, locks, a pool that outlives the command); so does ``DEALERDOCS_LOG`` set, whose
    logging a child configures for itself."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "DEALERDOCS_TODAY"}
    if today:
        env["DEALERDOCS_TODAY"] = today
    if process or env.get("DEALERDOCS_LOG"):
        proc = subprocess.run([dealerdocs_bin(), *args], cwd=cwd, input=stdin,
                              capture_output=True, text=True, timeout=300, env=env)
    else:
        proc = run_in_process(list(args), cwd=cwd, stdin=stdin, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"dealerdocs {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def run_in_process(args: list[str], cwd: Path, stdin: str | None,
                   env: dict[str, str]) -> subprocess.CompletedProcess:
    """``dealerdocs ARGS`` as the console script runs it (``engine.cli:run``), but in this
    process: ``sys.argv``, ``os.environ``, the working folder, the umask and the standard
    streams are those a child would have (standard input ``stdin``, else empty; the terminal
    size a pipe's), and restored after. The exit code is the child's: ``SystemExit``'s code,
    or 1 with the traceback on standard error for an uncaught exception."""
    import io
    import os
    import sys
    import traceback

    from engine import cli

    def stream(text: str = "") -> io.TextIOWrapper:
        return io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8",
                                write_through=True)

    out, err = stream(), stream()
    saved_streams = sys.stdin, sys.stdout, sys.stderr, sys.__stdout__
    saved_argv, saved_env, saved_cwd = sys.argv, dict(os.environ), os.getcwd()
    saved_umask = os.umask(0o022)
    os.umask(saved_umask)
    code = 0
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [dealerdocs_bin(), *args]
        # sys.__stdout__ too: click and shutil ask it for the terminal's width; a pipe has none
        sys.stdin, sys.stdout, sys.stderr, sys.__stdout__ = stream(stdin or ""), out, err, out
        try:
            cli.run()
        except SystemExit as exit_:
            if exit_.code is None:
                code = 0
            elif isinstance(exit_.code, int):
                code = exit_.code
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except Exception:  # what the interpreter does with an uncaught exception
            traceback.print_exc(file=sys.stderr)
            code = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr, sys.__stdout__ = saved_streams
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        os.umask(saved_umask)
    return subprocess.CompletedProcess([dealerdocs_bin(), *args], code, _text(out), _text(err))


def _text(stream) -> str:
    """What a stream made by :func:`run_in_process` holds, read as ``subprocess.run(text=True)``
    reads a pipe (universal newlines)."""
    data = stream.buffer.getvalue().decode("utf-8")
    return data.replace("\r\n", "\n").replace("\r", "\n")


def cli_json(dealer: Path, *args: str, data: dict | None = None, check: bool = True,
             today: str | None = None, process: bool = False):
    """``dealerdocs ARGS --json`` with ``data`` on stdin: the parsed JSON, or the finished
    process when it failed and ``check`` is off."""
    stdin = json.dumps(data, ensure_ascii=False) if data is not None else None
    if data is not None:
        args = (*args, "--data", "-")
    proc = run_cli(*args, "--json", cwd=dealer, stdin=stdin, check=check, today=today,
                   process=process)
    return json.loads(proc.stdout) if proc.returncode == 0 else proc


def refused(dealer: Path, *args: str, data: dict | None = None, today: str | None = None,
            process: bool = False) -> str:
    """The one-line error of a command that must be refused (no traceback, non-zero exit)."""
    proc = cli_json(dealer, *args, data=data, today=today, check=False, process=process)
    assert not isinstance(proc, dict), f"{args} was not refused"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def china_today() -> date:
    """Today in the stores' timezone (config.toml: Asia/Shanghai), read when called: never keep
    it at import, a run may cross midnight."""
    return datetime.now(CST).date()


def day(offset: int, today: date | None = None) -> str:
    """The ISO date ``offset`` days from ``today`` (by default :func:`china_today`, now)."""
    return ((today or china_today()) + timedelta(days=offset)).isoformat()


@dataclass(frozen=True)
class Day:
    """One day fixed for a whole test: the dates the test computes from it and the day every
    CLI process it starts sees (DEALERDOCS_TODAY), so a run across midnight China time cannot
    give the test one day and the engine another. ``today(3)`` is the ISO date 3 days later."""

    date: date

    @classmethod
    def now(cls) -> "Day":
        return cls(china_today())

    @property
    def iso(self) -> str:
        return self.date.isoformat()

    def __call__(self, offset: int = 0) -> str:
        return day(offset, self.date)

    def run(self, *args: str, **kwargs):
        """:func:`run_cli` on this day."""
        return run_cli(*args, today=self.iso, **kwargs)

    def cli(self, dealer: Path, *args: str, **kwargs):
        """:func:`cli_json` on this day."""
        return cli_json(dealer, *args, today=self.iso, **kwargs)

    def refused(self, dealer: Path, *args: str, **kwargs) -> str:
        """:func:`refused` on this day."""
        return refused(dealer, *args, today=self.iso, **kwargs)


def example(name: str, **changes) -> dict:
    """examples/<name>.json with ``changes`` laid over it."""
    data = json.loads((ROOT / "examples" / f"{name}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def contract_data(today: date | None = None, **changes) -> dict:
    """A complete contract whose deposit, payment and delivery dates fit ``today`` (by default
    :func:`china_today`, now)."""
    return example("contract", deposit_date=day(0, today), payment_deadline=day(10, today),
                   delivery_deadline=day(20, today), **changes)


def store_state(store_dir: Path) -> dict[str, bytes]:
    """Every file of a store folder (but its lock and the converter pool's state), by path:
    equal before and after means nothing was written."""
    store_dir = Path(store_dir)
    if not store_dir.exists():
        return {}
    return {str(p.relative_to(store_dir)): p.read_bytes() for p in sorted(store_dir.rglob("*"))
            if p.is_file() and p.name != "dealerdocs.lock"
            and "converter" not in p.relative_to(store_dir).parts}


def with_customers(files: dict[str, str]) -> dict[str, str]:
    """``files`` (workflow file name → text) and the shipped workflows they name (by
    ``workflow = "…"``: the customer's file a ``[party]`` joins, the calls a delivery's
    ``spawn`` makes; by ``[joins.<workflow>]``: the stock a contract names its car in; and in
    turn those these name), so a folder of a few files loads."""
    out = dict(files)
    while True:
        named = {f"{m}.toml" for text in out.values()
                 for m in [*re.findall(r'\bworkflow = "(\w+)"', text),
                           *re.findall(r'(?m)^\[joins\.(\w+)\]', text)]}
        missing = {n for n in named - set(out) if (ROOT / "workflows" / n).is_file()}
        if not missing:
            return out
        for name in sorted(missing):
            out[name] = (ROOT / "workflows" / name).read_text(encoding="utf-8")


def definition_error(tmp_path: Path, files: dict[str, str], with_product: bool = False):
    """The WorkflowDefinitionError of a dealership whose workflows folder holds ``files``
    (file name → text), beside the product's own workflows when ``with_product``."""
    import shutil

    import pytest

    from engine import load_config
    from engine.errors import WorkflowDefinitionError
    from engine.workflow import load_workflows

    folder = tmp_path / "workflows"
    if with_product:
        shutil.copytree(ROOT / "workflows", folder)
    folder.mkdir(exist_ok=True)
    for name, text in (files if with_product else with_customers(files)).items():
        (folder / name).write_text(text, encoding="utf-8")
    config = load_config(point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder)))
    with pytest.raises(WorkflowDefinitionError) as raised:
        load_workflows(config)
    return raised.value


def edit_paragraph(path: Path, old: str, new: str) -> None:
    """Change the body paragraph (or table cell's) of a .docx whose text is ``old`` to ``new``
    (as someone would in Word: the first run takes the text, the others are emptied)."""
    import docx

    document = docx.Document(str(path))
    cells = {id(p._p): p for t in document.tables for row in t.rows for cell in row.cells
             for p in cell.paragraphs}   # a merged cell is listed once per row it spans
    [paragraph] = [p for p in [*document.paragraphs, *cells.values()] if p.text == old]
    paragraph.runs[0].text = new
    for run in paragraph.runs[1:]:
        run.text = ""
    document.save(str(path))


def vin_numbered(serial: int) -> str:
    """A valid VIN of its own for ``serial`` (its check digit worked out by trying each one
    against the product's own rule): a car no other test's contract holds."""
    from engine.validators import RuleViolation, vin

    for check in "0123456789X":
        candidate = f"LSJA24U6{check}JG{serial:06d}"
        try:
            return vin(candidate)
        except RuleViolation:
            continue
    raise AssertionError(serial)


def write_xlsx(path: Path, header: list, rows: list[list]) -> Path:
    """An .xlsx file as Excel saves it (openpyxl): row 1 the column names, then ``rows``."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(header)
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def shipped_edit_error(tmp_path: Path, file: str, old: str, new: str):
    """The WorkflowDefinitionError of the product's workflows with ``old`` in ``file`` (once)
    replaced by ``new``."""
    text = (ROOT / "workflows" / file).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    return definition_error(tmp_path, {file: text.replace(old, new)}, with_product=True)


def sign_contract(engine, case_id: str, signed_date: str = "2026-11-26") -> str:
    """A drafted contract submitted (approved by wang when its discount needs a manager),
    issued and signed by zhang; its id."""
    if engine.fire(case_id, "submit", "zhang").state == "pending_approval":
        engine.fire(case_id, "approve", "wang")
    engine.fire(case_id, "issue", "zhang")
    engine.fire(case_id, "sign", "zhang", {"signed_date": signed_date})
    return case_id


def database_state(url: str) -> dict[str, list]:
    """Every row of every dealerdocs table of a PostgreSQL store, by table (the tables'
    version aside, and no empty table): equal before and after means nothing was written;
    {} is a store nothing was written to."""
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'dd\\_%' ORDER BY 1")]
        rows = {t: sorted(repr(r) for r in conn.execute(f"SELECT * FROM {t}").fetchall()
                          if not (t == "dd_meta" and r[0] == "tables"))
                for t in tables}
        return {t: found for t, found in rows.items() if found}


class Backend:
    """One of the store's two backends for a behavioural test: ``open()`` gives a store on
    this test's own folder or database, ``where`` names it for a child process, ``state()``
    is everything in it."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind, self.where = kind, where
        self.opened: list = []

    def open(self, **kwargs):
        from engine.store import store_at

        store = store_at(self.where, **kwargs)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()

    def state(self):
        from engine.store import store_at

        return store_contents(store_at(self.where))


def use_database(config_path: Path, url: str) -> Path:
    """Point a dealership's config.toml at a PostgreSQL store (``store = "postgresql://…"``);
    its keys, attachments and caches stay in ``[paths] store``."""
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(f"store = {json.dumps(url)}\n{text}", encoding="utf-8")
    return config_path


def keep_files_in_database(config_path: Path, url: str) -> Path:
    """Point a dealership at a PostgreSQL store that keeps the issued files too
    (``files = "database"``)."""
    use_database(config_path, url)
    text = config_path.read_text(encoding="utf-8")
    assert text.count('files = "outbox"') == 1
    config_path.write_text(text.replace('files = "outbox"', 'files = "database"'),
                           encoding="utf-8")
    return config_path


def store_contents(store) -> dict:
    """Everything in a store (its folder's files, or its database's rows): equal before and
    after means nothing was written."""
    if store.kind == "postgresql":
        return database_state(store.url)
    return store_state(store.directory)


def require_stock_vins(config_path: Path) -> Path:
    """Set ``stock_vin_required = true`` in a dealership's config.toml: a contract's VIN must
    then be a stock car (调车 aside)."""
    text = config_path.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^stock_vin_required = .*$", "stock_vin_required = true", text)
    assert count == 1
    config_path.write_text(text, encoding="utf-8")
    return config_path


GROUP_STORES = '''
[stores.BJ01]
name = "北京星辰汽车销售服务有限公司"
uscc = "91110108772551611J"
address = "北京市海淀区西三环北路 88 号"
phone = "010-88886666"
bank = "中国工商银行北京西三环支行"
account = "0200 0043 0920 0123 456"
prefix = "BJ01"
legal_representative = "林国栋"

[stores.SH01]
name = "上海星辰汽车销售服务有限公司"
uscc = "91310115MA1K4ABC0Y"
address = "上海市浦东新区张杨路 1200 号"
phone = "021-58886666"
bank = "招商银行上海张杨路支行"
account = "1219 0888 1010 666"
prefix = "SH01"
legal_representative = "周海"

[stores.SH01.policy]
contract_approval_discount_share = "0.08"

[users.he]
name = "何静"
stores = { SH01 = ["sales"] }
password_hash = "$argon2id$v=19$m=65536,t=3,p=4$oSFFuBOCjQ4oI72Uxby3Hg$xK1jwURiaIiIIddFI8VdMw9RlB8BG/KA7cQ01nytENg"

[users.ma]
name = "马超"
stores = { SH01 = ["sales_manager"] }
password_hash = "$argon2id$v=19$m=65536,t=3,p=4$oSFFuBOCjQ4oI72Uxby3Hg$xK1jwURiaIiIIddFI8VdMw9RlB8BG/KA7cQ01nytENg"

[users.boss]
name = "林总"
roles = ["group_manager"]
password_hash = "$argon2id$v=19$m=65536,t=3,p=4$oSFFuBOCjQ4oI72Uxby3Hg$xK1jwURiaIiIIddFI8VdMw9RlB8BG/KA7cQ01nytENg"
'''


def make_group_dir(directory: Path) -> Path:
    """A dealer group's folder: the test dealership's config with two stores, BJ01 (北京) and
    SH01 (上海, its own discount policy). 张伟 (zhang) sells and 王强 (wang) manages in BJ01
    only; 何静 (he) sells and 马超 (ma) manages in SH01; 林总 (boss) is the group manager;
    the other users keep their roles in every store."""
    config = make_dealer_dir(directory)
    text = config.read_text(encoding="utf-8")
    for login, role in (("zhang", "sales"), ("wang", "sales_manager")):
        old = re.search(rf"\[users\.{login}\]\nname = .*\nroles = \[\"{role}\"\]\n", text)
        assert old, login
        text = text.replace(old.group(0), old.group(0).replace(
            f'roles = ["{role}"]', f'stores = {{ BJ01 = ["{role}"] }}'))
    config.write_text(text + GROUP_STORES, encoding="utf-8")
    return config
