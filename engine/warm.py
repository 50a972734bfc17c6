"""A warm LibreOffice: a pool of unoserver instances kept running between documents and
between commands, so a document costs ~0.15 s instead of a cold start's ~1.1 s.

Each instance is ``unoserver`` (LibreOffice's own Python, Debian ``python3-uno``; installed by
``make setup`` into ``.venv-uno``) with its own profile, bound to 127.0.0.1 only (its ports have
no authentication), started in its own session so that a hung instance is killed with its
LibreOffice. The pool is described by ``<store>/converter/pool.json``; ``dealerdocs converter
start|stop|status`` manage it and any later command finds it there. A document that fails or
times out on a warm instance restarts that instance and is converted cold instead, so the
caller always gets the same contract as :class:`~engine.convert.SofficeConverter`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from filelock import FileLock

from .convert import FONTS_CONF, PDF_A_OPTION, Converter, SofficeConverter, wants_pdf_a
from .errors import ConversionError
from .files import atomic_write_bytes, make_dirs

log = logging.getLogger(__name__)

PROJECT_UNOSERVER = Path(__file__).resolve().parent.parent / ".venv-uno" / "bin" / "unoserver"
FILTERS = {".docx": "writer_pdf_Export", ".svg": "draw_pdf_Export"}


def find_unoserver(configured: str = "") -> str | None:
    """The configured unoserver, else one on PATH, else the project's ``.venv-uno``."""
    for candidate in (configured, "unoserver", str(PROJECT_UNOSERVER)):
        if candidate and (shutil.which(candidate) or Path(candidate).is_file()):
            return shutil.which(candidate) or candidate
    return None


def free_ports(count: int) -> list[int]:
    """``count`` different free ports on 127.0.0.1. The sockets stay bound until all are
    chosen: asked one after the other, the system may hand out the same port twice (it did, and
    unoserver refused to start: "--port and --uno-port must be different")."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _process_alive(pid: int) -> bool:
    """Running (not gone, not a zombie); reaps it if it is our own finished child."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            return "State:\tZ" not in fh.read()
    except (ProcessLookupError, PermissionError, FileNotFoundError):
        return False


class _Transport(xmlrpc.client.Transport):
    """XML-RPC with a socket timeout: the per-document hard limit."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class WarmConverter(Converter):
    """Converts through running unoserver instances; cold ``soffice`` when none can run."""

    def __init__(self, state_dir: Path, *, instances: int = 2, timeout: float = 120.0,
                 unoserver: str = "", binary: str = "soffice", autostart: bool = False,
                 recycle_after: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self.instances = max(1, instances)
        self.timeout = timeout
        self.unoserver = unoserver
        self.binary = binary
        self.autostart = autostart
        self.fallback = SofficeConverter(binary, timeout)
        self.recycle_after = recycle_after
        self._served: dict[int, int] = {}   # documents converted per instance (by pid)
        self._served_lock = threading.Lock()

    # --- the pool ----------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / "pool.json"

    def _load(self) -> list[dict]:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return []

    def _save(self, pool: list[dict]) -> None:
        atomic_write_bytes(self.state_file, json.dumps(pool, indent=2).encode("utf-8"))

    def _proxy(self, inst: dict, timeout: float) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{inst['port']}", allow_none=True,
                                         transport=_Transport(timeout))

    def _alive(self, inst: dict) -> bool:
        try:
            self._proxy(inst, 5).info()
            return True
        except (OSError, xmlrpc.client.Error):
            return False

    def status(self) -> list[dict]:
        return [{**inst, "alive": self._alive(inst)} for inst in self._load()]

    def start(self) -> list[dict]:
        """Start the missing instances (idempotent) and wait until each answers. Several
        processes may start the pool at once (the workers of ``dealerdocs serve --workers``
        with ``warm_instances`` set, two commands): the missing slots are chosen and spawned
        under the pool's lock, and an instance another process just spawned (still starting)
        counts as present, so they end with one pool, not one each. The wait for LibreOffice
        is outside the lock."""
        exe = find_unoserver(self.unoserver)
        if exe is None:
            raise ConversionError("找不到 unoserver（需要 Debian 的 python3-uno 与 pip 包 unoserver；"
                                  "make setup 会安装到 .venv-uno）")
        with self._pool_lock():
            pool = [inst for inst in self._load() if self._alive(inst) or self._starting(inst)]
            taken = {inst["slot"] for inst in pool}
            for slot in [s for s in range(self.instances) if s not in taken]:
                pool.append(self._spawn(exe, slot))
            self._save(sorted(pool, key=lambda i: i["slot"]))
        deadline = time.monotonic() + 90
        for inst in pool:
            while not self._alive(inst):
                if time.monotonic() > deadline:
                    self.stop()
                    raise ConversionError(f"unoserver 实例（端口 {inst['port']}）90 秒内未就绪；"
                                          f"日志：{inst['log']}")
                time.sleep(0.3)
            inst["ready"] = True   # it has answered: from now on, silence means trouble
        with self._pool_lock():   # mark them ready in the pool as it is now
            ready = {inst["pid"] for inst in pool}
            self._save([{**i, "ready": True} if i["pid"] in ready else i for i in self._load()])
        return pool

    def _pool_lock(self) -> FileLock:
        """The lock of the pool file (choosing, spawning and replacing instances)."""
        make_dirs(self.state_dir)
        return FileLock(str(self.state_dir / "pool.lock"), timeout=60)

    def _spawn(self, exe: str, slot: int) -> dict:
        port, uno_port = free_ports(2)
        profile = self.state_dir / f"profile-{slot}"
        logfile = self.state_dir / f"unoserver-{slot}.log"
        make_dirs(self.state_dir)
        cmd = [exe, "--interface", "127.0.0.1", "--uno-interface", "127.0.0.1",
               "--port", str(port), "--uno-port", str(uno_port),
               "--user-installation", str(profile),
               "--conversion-timeout", str(int(self.timeout))]
        soffice = shutil.which(self.binary)
        if soffice:
            cmd += ["--executable", soffice]
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env={**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF)},
                                    start_new_session=True)
        log.info("started unoserver %s on port %s", proc.pid, port)
        return {"slot": slot, "pid": proc.pid, "port": port, "uno_port": uno_port,
                "profile": str(profile), "log": str(logfile), "started": time.time()}

    def _starting(self, inst: dict) -> bool:
        """A freshly spawned instance whose LibreOffice is still starting (process alive, never
        seen answering, younger than 90 s); one that answered before and is silent now hangs."""
        return (_process_alive(inst["pid"]) and not inst.get("ready")
                and time.time() - inst.get("started", 0) < 90)

    def _kill(self, inst: dict) -> None:
        try:
            os.killpg(inst["pid"], signal.SIGKILL)  # unoserver and its LibreOffice
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> int:
        pool = self._load()
        for inst in pool:
            self._kill(inst)
        self._save([])
        return len(pool)

    def _restart(self, inst: dict) -> None:
        """Replace a hung or crashed instance. Under the pool's lock, and only if the pool
        file still names it: two commands that saw the same instance die start one
        replacement, not two (the second finds it already replaced)."""
        with self._pool_lock():
            current = {i["slot"]: i for i in self._load()}
            if current.get(inst["slot"], {}).get("pid") not in (None, inst["pid"]):
                return  # someone else replaced it meanwhile
            self._kill(inst)
            exe = find_unoserver(self.unoserver)
            pool = [i for i in current.values() if i["slot"] != inst["slot"]]
            if exe is not None:
                pool.append(self._spawn(exe, inst["slot"]))
            self._save(sorted(pool, key=lambda i: i["slot"]))

    # --- converting --------------------------------------------------------------------------

    def convert_many(self, documents: list[bytes], suffix: str = ".docx") -> list[bytes]:
        if not documents:
            return []
        if suffix not in FILTERS:
            return self.fallback.convert_many(documents, suffix)
        for i, data in enumerate(documents):
            if suffix == ".docx" and not data.startswith(b"PK"):
                raise ConversionError(f"第 {i + 1} 个输入不是 Word（.docx）文档")
        pool, dead = [], []
        for inst in self._load():
            (pool if self._alive(inst) else dead).append(inst)
        for inst in dead:  # crashed since the last command: replace it for the next documents
            if not self._starting(inst):
                self._restart(inst)
        if not pool and self.autostart:
            try:
                pool = self.start()
            except ConversionError as err:
                log.warning("warm LibreOffice unavailable, converting cold: %s", err)
        if not pool:
            return self.fallback.convert_many(documents, suffix)
        # one document at a time per instance (unoserver is single-threaded)
        chunks = [list(range(i, len(documents), len(pool))) for i in range(len(pool))]
        results: list[bytes | None] = [None] * len(documents)

        def work(inst: dict, indexes: list[int]) -> None:
            for index in indexes:
                results[index] = self._convert_one(inst, documents[index], suffix)

        with ThreadPoolExecutor(max_workers=len(pool)) as executor:
            for future in [executor.submit(work, inst, idx) for inst, idx in zip(pool, chunks)]:
                future.result()
        return [r for r in results if r is not None]

    def _convert_one(self, inst: dict, data: bytes, suffix: str) -> bytes:
        try:
            options = [f"{PDF_A_OPTION[0]}={PDF_A_OPTION[1]}"] if wants_pdf_a(data) else []
            out = self._proxy(inst, self.timeout).convert(
                None, xmlrpc.client.Binary(data), None, "pdf", FILTERS[suffix], options, False)
            pdf = bytes(out.data) if isinstance(out, xmlrpc.client.Binary) else bytes(out or b"")
            if pdf.startswith(b"%PDF-"):
                self._count(inst)
                return pdf
            problem = "没有返回 PDF"
        except (OSError, xmlrpc.client.Error) as err:  # timeout, crash, conversion fault
            problem = f"{type(err).__name__}: {err}"[:200]
        log.warning("warm instance on port %s failed (%s); restarting it, converting cold",
                    inst["port"], problem)
        self._restart(inst)
        return self.fallback.convert(data, suffix)

    def _count(self, inst: dict) -> None:
        """Restart an instance once it has converted ``recycle_after`` documents for this
        process: LibreOffice keeps memory from every document it opened. The others carry
        on meanwhile (a starting instance is skipped, not restarted again)."""
        if not self.recycle_after:
            return
        with self._served_lock:
            served = self._served.get(inst["pid"], 0) + 1
            self._served[inst["pid"]] = served
        if served >= self.recycle_after:
            log.info("recycling warm instance %s after %s documents", inst["port"], served)
            self._restart(inst)

    def close(self) -> None:
        """The pool outlives this object on purpose (other commands reuse it)."""
        self.fallback.close()
