"""One warm LibreOffice and the small worker that drives it over UNO: the process the warm pool
(:mod:`engine.warm`) starts for each of its instances.

This file runs as a script under a Python that has LibreOffice's ``uno`` module (Debian's
``python3-uno``: /usr/bin/python3), not under the engine's virtualenv, so it imports nothing of
the engine. It starts ``soffice`` as its own child (one process group, which the pool kills as a
whole), connects to it through a named UNO pipe, then answers requests on a Unix socket in the
pool's folder, one JSON line in and one JSON line out per connection::

    {"ping": true}                                              → {"ok": true, "served": 12}
    {"input": "/dev/shm/…/a.docx", "output": "/dev/shm/…/a.pdf",
     "filter": "writer_pdf_Export", "pdf_a": false}             → {"ok": true}
                                                                or {"ok": false, "error": "…"}

Why not unoserver (which the pool used before): it carries documents as base64 inside XML-RPC
and re-reads its filter options per call; file paths on a tmpfs and options built once save
~20–40 ms per document (README, "Measured"). The socket is created only once LibreOffice
answers, so "the socket answers" means "ready to convert". One document at a time: a
LibreOffice converts one document at a time anyway; other callers wait in the listen backlog.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

import uno  # LibreOffice's Python bridge (python3-uno); the pool checks the Python it runs
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException

# a request is a path pair, never a document: one line is plenty
MAX_REQUEST = 64 * 1024
# PDF/A-2b (ISO 19005-2 level B), as engine.convert.PDF_A_OPTION says for the cold converter
PDF_A_VERSION = 2


def props(**values) -> tuple:
    out = []
    for name, value in values.items():
        prop = PropertyValue()
        prop.Name, prop.Value = name, value
        out.append(prop)
    return tuple(out)


def store_props(export_filter: str, pdf_a: bool) -> tuple:
    """storeToURL's arguments for a filter (built once per filter and PDF/A choice). Writer's
    bookmarks become named destinations (where the engine marked the signature labels), as
    engine.convert.WRITER_OPTIONS says for the cold converter."""
    if export_filter != "writer_pdf_Export":
        return props(FilterName=export_filter, Overwrite=True)
    options = {"ExportBookmarksToPDFDestination": True,
               **({"SelectPdfVersion": PDF_A_VERSION} if pdf_a else {})}
    data = uno.Any("[]com.sun.star.beans.PropertyValue", props(**options))
    return props(FilterName=export_filter, Overwrite=True, FilterData=data)


# Hidden: no frame to lay out on screen; ReadOnly: no lock file beside the input;
# UpdateDocMode 0 (NO_UPDATE) and MacroExecutionMode 0 (NEVER_EXECUTE): a template's links and
# macros are never followed.
LOAD_PROPS = props(Hidden=True, ReadOnly=True, UpdateDocMode=0, MacroExecutionMode=0)
FILTERS = ("writer_pdf_Export", "draw_pdf_Export")


class Office:
    """A running soffice and the UNO desktop of it."""

    def __init__(self, soffice: str, profile: str, pipe: str) -> None:
        self.process = subprocess.Popen(
            [soffice, f"-env:UserInstallation={uno.systemPathToFileUrl(profile)}",
             "--headless", "--invisible", "--nocrashreport", "--nodefault", "--nologo",
             "--nofirststartwizard", "--norestore", "--nolockcheck",
             f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext"],
            stdin=subprocess.DEVNULL)
        self.desktop = self._connect(pipe)
        self.store = {(f, a): store_props(f, a) for f in FILTERS for a in (False, True)}
        self.document = None   # the last converted document, until release()

    def _connect(self, pipe: str):
        """Poll the pipe every 20 ms: soffice opens it ~1 s after start, and a coarse poll
        (unoserver and Carbone sleep a whole second between tries) would add its own wait."""
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        deadline = time.monotonic() + 90
        while True:
            try:
                context = resolver.resolve(
                    f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                return context.ServiceManager.createInstanceWithContext(
                    "com.sun.star.frame.Desktop", context)
            except NoConnectException:
                if self.process.poll() is not None:
                    sys.exit(f"soffice exited with {self.process.returncode} before answering")
                if time.monotonic() > deadline:
                    sys.exit("soffice did not answer within 90 s")
                time.sleep(0.02)

    def convert(self, source: str, target: str, export_filter: str, pdf_a: bool) -> None:
        """Convert ``source`` into ``target``. The document stays open until :meth:`release`,
        which the server calls once it has answered: closing a document takes LibreOffice a
        few milliseconds the caller need not wait for."""
        self.release()
        document = self.desktop.loadComponentFromURL(
            uno.systemPathToFileUrl(source), "_blank", 0, LOAD_PROPS)
        if document is None:
            raise ValueError("source file could not be loaded")
        self.document = document
        document.storeToURL(uno.systemPathToFileUrl(target),
                            self.store[export_filter, pdf_a and export_filter ==
                                       "writer_pdf_Export"])

    def release(self) -> None:
        """Close the document the last conversion opened, if any."""
        document, self.document = self.document, None
        if document is not None:
            try:
                document.close(True)
            except Exception:  # a dying office: the next request finds it dead and says so
                pass


def serve(office: Office, path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)  # a dead worker's socket (the pool replaces a slot's worker)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)  # only this user may ask for conversions
    try:
        server.bind(path)
    finally:
        os.umask(old)
    server.listen(16)
    print(f"ready: soffice {office.process.pid}, socket {path}", flush=True)
    served = 0
    while True:
        conn, _ = server.accept()
        try:
            with conn:
                try:
                    request = json.loads(_read_line(conn))
                except (ValueError, OSError) as err:
                    _answer(conn, {"ok": False, "error": f"bad request: {err}"})
                    continue
                if office.process.poll() is not None:  # LibreOffice died: the pool replaces us
                    sys.exit(f"soffice exited with {office.process.returncode}")
                if request.get("ping"):
                    _answer(conn, {"ok": True, "served": served, "office": office.process.pid})
                    continue
                if request.get("filter") not in FILTERS:
                    _answer(conn, {"ok": False,
                                   "error": f"unknown filter {request.get('filter')}"})
                    continue
                print(f"converting {request['input']} → {request['output']}", flush=True)
                try:
                    office.convert(request["input"], request["output"], request["filter"],
                                   bool(request.get("pdf_a")))
                except Exception as err:  # a UNO error: the document, or a dying office
                    if office.process.poll() is not None:
                        sys.exit(f"soffice exited with {office.process.returncode}")
                    print(f"failed: {type(err).__name__}: {err}", flush=True)
                    _answer(conn, {"ok": False, "error": f"{type(err).__name__}: {err}"[:300]})
                    continue
                served += 1
                _answer(conn, {"ok": True, "served": served})
        finally:
            office.release()   # after the answer: the caller is not kept waiting


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk or len(data) > MAX_REQUEST:
            raise ValueError("no complete line")
        data += chunk
    return data


def _answer(conn: socket.socket, reply: dict) -> None:
    try:
        conn.sendall(json.dumps(reply).encode("utf-8") + b"\n")
    except OSError:
        pass  # the caller gave up (its timeout); the next request is another connection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soffice", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--socket", required=True)
    args = parser.parse_args()
    # the pool kills our whole process group; a plain SIGTERM should too
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
    office = Office(args.soffice, os.path.abspath(args.profile),
                    f"dealerdocs-{os.getpid()}-{time.monotonic_ns()}")
    serve(office, args.socket)


if __name__ == "__main__":
    main()
