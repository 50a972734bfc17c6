"""A warm LibreOffice: a pool of instances kept running between documents and between
commands, so a document costs ~0.15 s instead of a cold start's ~1.1 s.

Each instance is a small worker (:mod:`engine.office`, run by a Python that has LibreOffice's
``uno`` module, Debian ``python3-uno``) with its own ``soffice`` and profile, started in its own
session so that a hung instance is killed with its LibreOffice. The worker answers on a Unix
socket in the pool's folder (only this user may connect); a document travels as a file path on
a tmpfs (``/dev/shm`` where there is one), never as bytes over the socket. The pool is described
by ``<store>/converter/pool.json``; ``dealerdocs converter start|stop|status`` manage it and any
later command finds it there. A document that fails or times out on a warm instance is converted
cold instead (an instance that timed out or died is restarted first), so the caller always gets
the same contract as :class:`~engine.convert.SofficeConverter`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from filelock import FileLock

from .convert import FONTS_CONF, Converter, SofficeConverter, wants_pdf_a
from .errors import ConversionError
from .files import atomic_write_bytes, make_dirs, remove_older_than

log = logging.getLogger(__name__)

WORKER = Path(__file__).resolve().parent / "office.py"
FILTERS = {".docx": "writer_pdf_Export", ".svg": "draw_pdf_Export"}
# How long an instance may take to start before the pool gives up on it; how often it looks.
START_LIMIT = 90.0
POLL = 0.02
# AF_UNIX paths are limited to 108 bytes on Linux; a deeper pool folder gets its sockets in a
# private folder under /tmp instead.
SOCKET_PATH_MAX = 100


def find_office_python(configured: str = "", binary: str = "soffice") -> str | None:
    """The Python that runs the worker: the configured one, else LibreOffice's own (beside
    ``soffice`` in the upstream packages), else the system's (Debian's ``python3-uno``
    installs ``uno`` there). Whether it can ``import uno`` shows when the worker starts: one
    that cannot exits at once, and :meth:`WarmConverter.start` reports its log."""
    soffice = shutil.which(binary)
    bundled = str(Path(soffice).resolve().parent / "python") if soffice else ""
    for candidate in (configured, bundled, "/usr/bin/python3"):
        if candidate and (shutil.which(candidate) or Path(candidate).is_file()):
            return shutil.which(candidate) or candidate
    return None


def tmpfs_dir() -> str:
    """Where documents wait for LibreOffice: ``/dev/shm`` (memory) where it exists and is
    writable, else the system's temporary folder."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


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


def ask(path: str, request: dict, timeout: float) -> dict:
    """One request to a worker: a JSON line out, a JSON line back (see engine/office.py).
    Raises OSError (refused, reset, timed out) or ValueError (no whole answer: it died)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(json.dumps(request).encode("utf-8") + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                raise ValueError("the instance closed the connection without an answer")
            data += chunk
    return json.loads(data)


def _log_tail(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()[-300:]
    except OSError:
        return ""


class WarmConverter(Converter):
    """Converts on running LibreOffice workers; cold ``soffice`` when none can run."""

    def __init__(self, state_dir: Path, *, instances: int = 2, timeout: float = 120.0,
                 python: str = "", binary: str = "soffice", autostart: bool = False,
                 recycle_after: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self.instances = max(1, instances)
        self.timeout = timeout
        self.python = python
        self.binary = binary
        self.autostart = autostart
        self.fallback = SofficeConverter(binary, timeout)
        self.recycle_after = recycle_after
        self._work: str | None = None   # the folder of documents on the tmpfs
        self._own_work = False          # a private one, removed by close()
        self._work_lock = threading.Lock()
        # documents this process has sent to each slot and not had back: concurrent calls
        # (a batch converts each document as its own call) go to the least busy instance
        self._in_flight: dict[int, int] = {}
        self._flight_lock = threading.Lock()

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

    def _alive(self, inst: dict) -> bool:
        """The worker answers (it opens its socket only once its LibreOffice answers)."""
        if "socket" not in inst:
            return False
        try:
            return bool(ask(inst["socket"], {"ping": True}, 5).get("ok"))
        except (OSError, ValueError):
            return False

    def status(self) -> list[dict]:
        return [{**inst, "alive": self._alive(inst)} for inst in self._load()]

    def start(self) -> list[dict]:
        """Start the missing instances (idempotent) and wait until each answers; they start
        side by side, so the pool is ready when its slowest instance is. Several processes may
        start the pool at once (the workers of ``dealerdocs serve --workers`` with
        ``warm_instances`` set, two commands): the missing slots are chosen and spawned under
        the pool's lock, and an instance another process just spawned (still starting) counts
        as present, so they end with one pool, not one each. The wait for LibreOffice is
        outside the lock."""
        python = find_office_python(self.python, self.binary)
        if python is None:
            raise ConversionError("找不到能运行 LibreOffice 工作进程的 Python（需要 Debian 的 "
                                  "python3-uno；或在 config.toml 的 [libreoffice] python 中指定）")
        soffice = self.fallback.executable()   # the same message when LibreOffice is missing
        with self._pool_lock():
            pool = [inst for inst in self._load() if self._alive(inst) or self._starting(inst)]
            taken = {inst["slot"] for inst in pool}
            for slot in [s for s in range(self.instances) if s not in taken]:
                pool.append(self._spawn(python, soffice, slot))
            self._save(sorted(pool, key=lambda i: i["slot"]))
        waiting = list(pool)
        while waiting:
            waiting = [inst for inst in waiting if not self._alive(inst)]
            for inst in waiting:
                gone = not _process_alive(inst["pid"])
                if gone or time.time() - inst["started"] > START_LIMIT:
                    self.stop()
                    why = "已退出" if gone else f"{START_LIMIT:g} 秒内未就绪"
                    tail = _log_tail(inst["log"])
                    raise ConversionError(f"LibreOffice 工作进程（实例 {inst['slot']}）{why}；"
                                          f"日志 {inst['log']}{'：' + tail if tail else ''}")
            if waiting:
                time.sleep(POLL)
        with self._pool_lock():   # mark them ready in the pool as it is now
            ready = {inst["pid"] for inst in pool}
            self._save([{**i, "ready": True} if i["pid"] in ready else i for i in self._load()])
        return [{**inst, "ready": True} for inst in pool]

    def _pool_lock(self) -> FileLock:
        """The lock of the pool file (choosing, spawning and replacing instances)."""
        make_dirs(self.state_dir)
        return FileLock(str(self.state_dir / "pool.lock"), timeout=60)

    def _socket_path(self, slot: int) -> str:
        path = str(self.state_dir.resolve() / f"instance-{slot}.sock")
        if len(path.encode()) <= SOCKET_PATH_MAX:
            return path
        return os.path.join(tempfile.mkdtemp(prefix="dealerdocs-pool-"), f"{slot}.sock")

    def _spawn(self, python: str, soffice: str, slot: int) -> dict:
        profile = self.state_dir / f"profile-{slot}"
        logfile = self.state_dir / f"instance-{slot}.log"
        sock = self._socket_path(slot)
        make_dirs(self.state_dir)
        # -I: the worker's folder (engine/) must not shadow the standard library on its path
        cmd = [python, "-I", str(WORKER), "--soffice", soffice, "--profile", str(profile),
               "--socket", sock]
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env={**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF),
                                         "SAL_USE_VCLPLUGIN": "svp"},
                                    start_new_session=True)
        log.info("started LibreOffice worker %s (instance %s)", proc.pid, slot)
        return {"slot": slot, "pid": proc.pid, "socket": sock, "profile": str(profile),
                "log": str(logfile), "started": time.time()}

    def _starting(self, inst: dict) -> bool:
        """A freshly spawned instance whose LibreOffice is still starting (process alive, never
        seen answering, younger than the start limit); one that answered before and is silent
        now hangs."""
        return (_process_alive(inst["pid"]) and not inst.get("ready")
                and time.time() - inst.get("started", 0) < START_LIMIT)

    def _kill(self, inst: dict) -> None:
        try:
            os.killpg(inst["pid"], signal.SIGKILL)  # the worker and its LibreOffice
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
            python = find_office_python(self.python, self.binary)
            soffice = shutil.which(self.binary)
            pool = [i for i in current.values() if i["slot"] != inst["slot"]]
            if python is not None and soffice is not None:
                pool.append(self._spawn(python, soffice, inst["slot"]))
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
        # one document at a time per instance (a LibreOffice converts one at a time), the
        # first to the instances this process keeps least busy
        with self._flight_lock:
            pool.sort(key=lambda inst: self._in_flight.get(inst["slot"], 0))
            chunks = [list(range(i, len(documents), len(pool))) for i in range(len(pool))]
            for inst, indexes in zip(pool, chunks):
                self._in_flight[inst["slot"]] = self._in_flight.get(inst["slot"], 0) + len(indexes)
        results: list[bytes | None] = [None] * len(documents)

        def work(inst: dict, indexes: list[int]) -> None:
            try:
                for index in indexes:
                    results[index] = self._convert_one(inst, documents[index], suffix)
            finally:
                with self._flight_lock:
                    self._in_flight[inst["slot"]] -= len(indexes)

        if len(documents) == 1:   # no thread for one document
            work(pool[0], [0])
            return [results[0]]
        with ThreadPoolExecutor(max_workers=len(pool)) as executor:
            for future in [executor.submit(work, inst, idx) for inst, idx in zip(pool, chunks)]:
                future.result()
        return [r for r in results if r is not None]

    def _work_dir(self) -> str:
        """The folder where documents wait for LibreOffice: this user's ``dealerdocs-<uid>``
        on the tmpfs (mode 0700, shared by this user's processes and kept: each document's
        files go as soon as it is converted), or a private one of this converter's if that
        name is taken by something else (another user's, a link)."""
        with self._work_lock:
            if self._work is None or not os.path.isdir(self._work):
                path = os.path.join(tmpfs_dir(), f"dealerdocs-{os.getuid()}")
                try:
                    os.mkdir(path, 0o700)
                except FileExistsError:
                    pass
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() \
                        or st.st_mode & 0o077:
                    path = tempfile.mkdtemp(prefix="dealerdocs-convert-", dir=tmpfs_dir())
                    self._own_work = True
                else:
                    # what a process killed while converting left (a document holds a
                    # customer's data): no conversion waits longer than the timeout
                    remove_older_than(Path(path), max(3600.0, 2 * self.timeout))
                self._work = path
            return self._work

    def _convert_one(self, inst: dict, data: bytes, suffix: str) -> bytes:
        name = os.path.join(self._work_dir(), uuid.uuid4().hex)
        source, target = name + suffix, name + ".pdf"
        try:
            with open(source, "wb") as fh:
                fh.write(data)
            reply = ask(inst["socket"], {"input": source, "output": target,
                                         "filter": FILTERS[suffix], "pdf_a": wants_pdf_a(data)},
                        self.timeout)
            if reply.get("ok"):
                with open(target, "rb") as fh:
                    pdf = fh.read()
                if pdf.startswith(b"%PDF-"):
                    self._count(inst, reply.get("served", 0))
                    return pdf
                problem = "没有生成 PDF"
            else:
                # LibreOffice refused the document but the instance is well: the cold
                # converter gives the caller its own verdict (and its stderr)
                log.warning("warm instance %s could not convert a document (%s); converting "
                            "cold", inst["slot"], reply.get("error"))
                return self.fallback.convert(data, suffix)
        except (OSError, ValueError) as err:  # timeout, crash, a worker gone mid-answer
            problem = f"{type(err).__name__}: {err}"[:200]
        finally:
            for path in (source, target):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        log.warning("warm instance %s (pid %s) failed (%s); restarting it, converting cold",
                    inst["slot"], inst["pid"], problem)
        self._restart(inst)
        return self.fallback.convert(data, suffix)

    def _count(self, inst: dict, served: int) -> None:
        """Restart an instance once it has converted ``recycle_after`` documents (its worker
        counts them, whichever process sent them): LibreOffice keeps memory from every
        document it opened. The others carry on meanwhile."""
        if self.recycle_after and served >= self.recycle_after:
            log.info("recycling warm instance %s after %s documents", inst["slot"], served)
            self._restart(inst)

    def close(self) -> None:
        """The pool outlives this object on purpose (other commands reuse it); a private
        folder of documents goes."""
        with self._work_lock:
            if self._work is not None and self._own_work:
                shutil.rmtree(self._work, ignore_errors=True)
            self._work, self._own_work = None, False
        self.fallback.close()
