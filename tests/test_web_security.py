"""Issue 13, "Safe to put in front of a store", the web side: each finding reproduced as an
attack and shown refused or harmless. Real engine, real store; LibreOffice where a document is
issued; a real uvicorn server (in a thread) where the socket matters (proxy headers, chunked
bodies)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

from engine.errors import ConfigError, NotFoundError, StateError, StorageError
from engine.sessions import MAX_LIVE, Sessions, owner_of
from engine.store import Store
from engine.web import auth, limits
from engine.web.app import create_app, public_error, scrub
from engine.web.cli import proxy_options
from engine.web.throttle import Throttle
from helpers import CST, ROOT, Clock, dealerdocs_bin, example
from web_support import DEMO_PASSWORD, as_form, client, csrf_of, post_form, sign_in, web_engine


def still_throttle() -> Throttle:
    """A throttle whose clock stands still: its waits do not run out while a test is slow."""
    return Throttle(clock=lambda: 1000.0)


@pytest.fixture
def site(config_path, converter):
    eng = web_engine(config_path, converter)
    app = create_app(eng, throttle=still_throttle())
    yield eng, app
    eng.close()


def signed_in(app, login: str, **kw):
    c = client(app, **kw) if kw else client(app)
    r = sign_in(c, login)
    assert r.status_code == 200 and "我的工作台" in r.text, r.text[:300]
    return c


def token_of(c, login: str, name: str | None = None) -> str:
    r = c.post("/api/token", json={"login": login, "password": DEMO_PASSWORD,
                                   **({"name": name} if name else {})})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([dealerdocs_bin(), *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120)


# --- 1. forged sign-in: the secret key ---------------------------------------------------------

def test_secret_key_made_once_when_threads_race_on_a_fresh_folder(tmp_path):
    for round_ in range(30):
        folder = tmp_path / str(round_)
        start = threading.Barrier(6)

        def racer():
            start.wait()
            return auth.load_secret(folder)

        with ThreadPoolExecutor(6) as pool:
            keys = list(pool.map(lambda _: racer(), range(6)))
        assert len(set(keys)) == 1 and len(keys[0]) == 32
        key_file = folder / "web" / "secret.key"
        assert bytes.fromhex(key_file.read_text()) == keys[0]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert sorted(p.name for p in key_file.parent.iterdir()) == ["secret.key"]  # no temp left


def test_secret_key_made_once_when_two_servers_start_at_once(tmp_path):
    go = tmp_path / "go"
    script = ("import sys, time, pathlib\n"
              "from engine.web.auth import load_secret\n"
              "go = pathlib.Path(sys.argv[1])\n"
              "while not go.exists(): time.sleep(0.001)\n"
              "print(load_secret(pathlib.Path(sys.argv[2])).hex())\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(go), str(tmp_path / "store")],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(4)]
    time.sleep(1.0)  # let them all import and wait at the line
    go.touch()
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and len(bytes.fromhex(keys.pop())) == 32


@pytest.mark.parametrize("content, problem", [
    ("", "只有 0 字节"),                     # two servers at once, or a crash before the write
    ("00" * 16, "只有 16 字节"),
    ("not hex at all", "已损坏"),
])
def test_a_short_or_broken_key_file_is_refused_with_what_to_do(tmp_path, content, problem):
    key_file = tmp_path / "web" / "secret.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text(content)
    with pytest.raises(ConfigError) as caught:
        auth.load_secret(tmp_path)
    assert problem in caught.value.message
    assert "删除" in caught.value.message and "重新登录" in caught.value.message
    assert key_file.read_text() == content  # never replaced behind the admin's back


def test_the_server_does_not_start_with_an_empty_key(config_path, converter):
    eng = web_engine(config_path, converter)
    key_file = eng.config.store_dir / "web" / "secret.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("")
    with pytest.raises(ConfigError):
        create_app(eng)
    with pytest.raises(ConfigError):
        create_app(eng, secret=b"")


def test_a_new_key_signs_everyone_out(site):
    """What the refusal above tells the admin to do (delete the key, restart) does what it
    says: sessions and tokens opened under the old key end."""
    eng, app = site
    c = signed_in(app, "wang")
    token = token_of(client(app), "wang")
    key_file = eng.config.store_dir / "web" / "secret.key"
    key_file.unlink()
    restarted = create_app(eng, throttle=still_throttle())
    assert key_file.is_file()
    again = client(restarted)
    again.cookies.set(auth.SESSION_COOKIE, c.cookies[auth.SESSION_COOKIE])
    assert again.get("/", follow_redirects=False).status_code == 303
    assert again.get("/api/me", headers=bearer(token)).status_code == 401
    assert signed_in(restarted, "wang").get("/").status_code == 200


def test_a_cookie_signed_with_the_empty_key_is_not_accepted(site):
    """The attack of finding 1: a session cookie (and a token) for the sales manager, signed
    with b"" as the old code would have accepted it from an empty key file."""
    eng, app = site
    wang = eng.config.users["wang"]
    payload = {"u": "wang", "c": "x" * 32, "p": auth.fingerprint(wang)}
    forged = URLSafeTimedSerializer(b"", salt="dealerdocs-session").dumps(payload)
    c = client(app)
    c.cookies.set(auth.SESSION_COOKIE, forged)
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    forged_token = URLSafeTimedSerializer(b"", salt="dealerdocs-api-token").dumps(
        {"u": "wang", "p": auth.fingerprint(wang)})
    assert c.get("/api/me", headers=bearer(forged_token)).status_code == 401
    # nor does a token of the right shape that the store never issued
    made_up = f"{owner_of('wang')}.{'0' * 16}.{'A' * 43}"
    assert c.get("/api/me", headers=bearer(made_up)).status_code == 401


# --- 2. signing out signs out; tokens can be revoked ------------------------------------------

def test_a_cookie_copied_before_sign_out_no_longer_works(site):
    eng, app = site
    c = signed_in(app, "wang")
    stolen = c.cookies[auth.SESSION_COOKIE]
    csrf = csrf_of(c.get("/").text)
    r = c.post("/logout", data={"_csrf": csrf})
    assert r.status_code == 200 and "员工登录" in r.text
    thief = client(app)
    thief.cookies.set(auth.SESSION_COOKIE, stolen)
    assert thief.get("/", follow_redirects=False).status_code == 303
    r = thief.post("/cases/new/quote", data={"_csrf": csrf, **as_form(example("quote"))})
    assert r.status_code == 401 and eng.cases(actor="wang") == []


def test_every_worker_sees_a_sign_out_at_once(site, config_path, converter):
    """Two apps on two engines over one store stand for two server processes: the check reads
    the store, not the memory of the process that was told."""
    _, app = site
    other_engine = web_engine(config_path, converter)
    other = create_app(other_engine)
    c = signed_in(app, "zhang")
    cookie = c.cookies[auth.SESSION_COOKIE]
    elsewhere = client(other)
    elsewhere.cookies.set(auth.SESSION_COOKIE, cookie)
    assert "我的工作台" in elsewhere.get("/").text
    c.post("/logout", data={"_csrf": csrf_of(c.get("/").text)})
    assert elsewhere.get("/", follow_redirects=False).status_code == 303
    other_engine.close()


def test_a_new_password_ends_sessions_and_tokens_and_works_without_restart(site):
    eng, app = site
    dealer = eng.config.base_dir
    page_user, api = signed_in(app, "li"), client(app)
    token = token_of(api, "li")
    assert api.get("/api/me", headers=bearer(token)).status_code == 200
    proc = cli("user", "set-password", "li", cwd=dealer, stdin="brand-new-pw\nbrand-new-pw\n")
    assert proc.returncode == 0, proc.stderr
    assert "已结束其 2 个登录会话和令牌" in proc.stdout and "无需重启" in proc.stdout
    # the running app (another process) sees it at once
    assert page_user.get("/", follow_redirects=False).status_code == 303
    assert api.get("/api/me", headers=bearer(token)).status_code == 401
    # and takes the new password without a restart (config.toml re-read on change)
    assert sign_in(client(app), "li", DEMO_PASSWORD).status_code == 401
    assert sign_in(client(app), "li", "brand-new-pw").status_code == 200
    assert "我的工作台" in sign_in(client(app), "li", "brand-new-pw").text


def test_a_session_opened_before_a_password_change_in_the_file_is_refused(site):
    """The fingerprint check stays: a hash changed in config.toml by hand (not through the
    command that ends sessions) still ends the sessions opened with the old one."""
    eng, app = site
    c = signed_in(app, "zhang")
    config = eng.config.base_dir / "config.toml"
    text = config.read_text(encoding="utf-8")
    old = eng.config.users["zhang"].password_hash
    new = auth.hash_password("changed-by-hand")
    config.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(config, ns=(time.time_ns(), time.time_ns() + 10**9))  # a visibly new mtime
    assert c.get("/", follow_redirects=False).status_code == 303
    assert sign_in(client(app), "zhang", "changed-by-hand").status_code == 200


def test_tokens_are_listed_and_revoked_by_the_command_line(site):
    eng, app = site
    dealer = eng.config.base_dir
    c = client(app)
    dms, wechat = token_of(c, "wang", "DMS 对接"), token_of(c, "wang", "小程序")
    listed = cli("user", "tokens", "wang", "--json", cwd=dealer)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["tokens"]
    assert [r["label"] for r in rows] == ["DMS 对接", "小程序"]
    assert {"id", "created_at", "expires_at", "label"} <= set(rows[0])
    for token in (dms, wechat):  # the secret is shown once, at issue, and never again
        assert token.split(".")[2] not in listed.stdout
    text = cli("user", "tokens", "wang", cwd=dealer).stdout
    assert rows[0]["id"] in text and "DMS 对接" in text and "2 个有效的 API 令牌" in text
    r = cli("user", "tokens", "wang", "--revoke", rows[0]["id"], cwd=dealer)
    assert r.returncode == 0 and "已撤销 wang 的 1 个令牌" in r.stdout
    assert c.get("/api/me", headers=bearer(dms)).status_code == 401
    assert c.get("/api/me", headers=bearer(wechat)).status_code == 200
    r = cli("user", "tokens", "wang", "--revoke", "0123456789abcdef", cwd=dealer)
    assert r.returncode != 0 and "没有编号为" in r.stderr and "Traceback" not in r.stderr
    r = cli("user", "tokens", "nobody", cwd=dealer)
    assert r.returncode != 0 and "没有用户 \"nobody\"" in r.stderr
    token_of(c, "wang")
    r = cli("user", "tokens", "wang", "--revoke", "all", cwd=dealer)
    assert r.returncode == 0 and "已撤销 wang 的 2 个令牌" in r.stdout
    assert c.get("/api/me", headers=bearer(wechat)).status_code == 401


def test_an_api_caller_revokes_its_own_token(site):
    _, app = site
    c = client(app)
    token = token_of(c, "zhao")
    r = c.delete("/api/token", headers=bearer(token))
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert c.get("/api/me", headers=bearer(token)).status_code == 401


def test_a_session_is_only_what_it_was_opened_for(site):
    _, app = site
    c = signed_in(app, "zhang")
    cookie = c.cookies[auth.SESSION_COOKIE]
    assert c.get("/api/me", headers=bearer(cookie)).status_code == 401  # a cookie is no token
    token = token_of(client(app), "zhang")
    other = client(app)
    other.cookies.set(auth.SESSION_COOKIE, token)  # nor a token a cookie
    assert other.get("/", follow_redirects=False).status_code == 303


def test_sessions_in_the_store_expire_hold_no_secret_and_are_bounded(tmp_path):
    clock = Clock(datetime(2026, 11, 26, 10, 30, tzinfo=CST))
    store = Store(tmp_path / "store")
    sessions = Sessions(store, clock)
    opened = sessions.open("wang", "web", label="Firefox", fingerprint="f")
    assert sessions.check(opened.token, "web").login == "wang"
    text = (tmp_path / "store" / "sessions" / f"{owner_of('wang')}.json").read_text()
    secret = opened.token.split(".")[2]
    assert secret not in text and hashlib.sha256(secret.encode()).hexdigest() in text
    clock.advance(hours=12)
    assert sessions.check(opened.token, "web") is None and sessions.list("wang") == []
    assert opened.session.id in text  # still on disk until the user's file is next written
    later = sessions.open("wang", "web")
    text = (tmp_path / "store" / "sessions" / f"{owner_of('wang')}.json").read_text()
    assert opened.session.id not in text and later.session.id in text
    # a 21st browser session ends the oldest; a 51st token is refused with what to do
    first = later
    for _ in range(MAX_LIVE["web"]):
        sessions.open("wang", "web")
    assert sessions.check(first.token, "web") is None
    assert len(sessions.list("wang", "web")) == MAX_LIVE["web"]
    for _ in range(MAX_LIVE["api"]):
        sessions.open("wang", "api")
    with pytest.raises(StateError) as caught:
        sessions.open("wang", "api")
    assert "--revoke" in caught.value.message
    with pytest.raises(NotFoundError):
        sessions.revoke("wang", "ffffffffffffffff")
    assert len(sessions.revoke("wang", "all")) == MAX_LIVE["api"]
    assert sessions.end_all("wang") == MAX_LIVE["web"]
    with pytest.raises(StorageError):  # the store names files only by the hash it expects
        with store.snapshot() as tx:
            tx.sessions("../../etc/passwd")


# --- 3. sign-in throttling instead of a lockout ------------------------------------------------

def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere(site):
    _, app = site
    from fastapi.testclient import TestClient

    attacker = TestClient(app, raise_server_exceptions=False, client=("203.0.113.9", 40000))
    for _ in range(3):
        sign_in(attacker, "wang", "guess-" + os.urandom(4).hex())
    assert sign_in(attacker, "wang", "another-guess").status_code == 429
    assert sign_in(attacker, "wang").status_code == 429  # even with the right password
    office = TestClient(app, raise_server_exceptions=False, client=("192.168.1.20", 50000))
    r = sign_in(office, "wang")
    assert r.status_code == 200 and "我的工作台" in r.text


def test_a_forged_forwarded_for_does_not_change_the_throttled_address(site):
    _, app = site
    c = client(app)
    for i in range(3):
        page = c.get("/login")
        c.post("/login", headers={"X-Forwarded-For": f"198.51.100.{i}"},
               data={"login": "qian", "password": "wrong", "_csrf": csrf_of(page.text)})
    page = c.get("/login")
    r = c.post("/login", headers={"X-Forwarded-For": "198.51.100.77"},
               data={"login": "qian", "password": DEMO_PASSWORD, "_csrf": csrf_of(page.text)})
    assert r.status_code == 429 and "秒后再试" in r.text


def test_the_throttle_table_is_bounded():
    throttle = Throttle(clock=lambda: 1000.0, capacity=300)
    for i in range(10_000):
        throttle.attempt(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "wang")
    assert len(throttle) <= 300
    # the most recent keys are the ones kept: the last address is still counted
    assert throttle.attempt("10.0.39.15", "wang").wait == 0
    assert throttle.attempt("10.0.39.15", "wang").wait == 0
    assert throttle.attempt("10.0.39.15", "wang").wait > 0


def test_guesses_spread_over_addresses_cost_the_login_a_bounded_delay_only():
    throttle = Throttle(clock=lambda: 1000.0)
    for i in range(200):
        throttle.attempt(f"10.0.0.{i}", "wang")
    verdict = throttle.attempt("192.168.1.20", "wang")
    assert verdict.wait == 0 and 0 < verdict.delay <= 2


def test_serve_trusts_forwarded_headers_only_when_told(monkeypatch, dealer):
    """``dealerdocs serve`` passes the option to uvicorn; without it the headers are off
    (uvicorn's own default would trust 127.0.0.1)."""
    import uvicorn
    from click.testing import CliRunner

    from engine.cli import main

    seen = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.append(kw))
    monkeypatch.chdir(dealer)
    runner = CliRunner()
    assert runner.invoke(main, ["serve"]).exit_code == 0
    assert runner.invoke(main, ["serve", "--forwarded-allow-ips", "10.0.0.2"]).exit_code == 0
    assert seen[0]["proxy_headers"] is False and "forwarded_allow_ips" not in seen[0]
    assert seen[1]["proxy_headers"] is True and seen[1]["forwarded_allow_ips"] == "10.0.0.2"


@pytest.fixture
def live(config_path, converter):
    """Start uvicorn (in a thread) on an app; yields ``start(**proxy options) -> base URL``."""
    import uvicorn

    eng = web_engine(config_path, converter)
    servers = []

    def start(**options):
        app = create_app(eng, throttle=still_throttle())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off", **options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
    eng.close()


def _sign_in_via(base: str, login: str, password: str, forwarded: str) -> int:
    import httpx

    with httpx.Client(base_url=base, follow_redirects=False) as c:
        page = c.get("/login")
        return c.post("/login", headers={"X-Forwarded-For": forwarded},
                      data={"login": login, "password": password,
                            "_csrf": csrf_of(page.text)}).status_code


def test_behind_a_trusted_proxy_the_real_client_is_throttled(live):
    base = live(**proxy_options("127.0.0.1"))
    for _ in range(3):
        assert _sign_in_via(base, "wang", "wrong", "10.0.0.5") == 401
    assert _sign_in_via(base, "wang", DEMO_PASSWORD, "10.0.0.5") == 429
    assert _sign_in_via(base, "wang", DEMO_PASSWORD, "10.0.0.6") == 303  # another client
    # without the option everyone behind the header is the proxy itself: the header is ignored
    plain = live(**proxy_options(None))
    for _ in range(3):
        assert _sign_in_via(plain, "wang", "wrong", "10.0.0.5") == 401
    assert _sign_in_via(plain, "wang", DEMO_PASSWORD, "10.0.0.6") == 429


# --- 4. request bodies: size on the stream, CSRF before parsing, JSON depth ---------------------

def _never(*args, **kwargs):
    raise AssertionError("the body was parsed")


def test_ten_megabytes_of_json_to_the_token_route_are_refused_unread(site, monkeypatch):
    _, app = site
    monkeypatch.setattr(auth.Accounts, "authenticate", _never)
    big = b'{"login": "wang", "password": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    c = client(app)
    r = c.post("/api/token", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "超过 1 MB" in r.json()["message"]

    def chunks():  # no Content-Length: counted while it arrives
        for _ in range(10):
            yield b" " * (1024 * 1024)

    r = c.post("/api/token", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "HTTPError"


def test_a_chunked_upload_over_the_limit_is_refused(site, monkeypatch):
    eng, app = site
    c = signed_in(app, "zhang")
    token = csrf_of(c.get("/cases/new/quote").text)
    boundary = "dealerdocs-test"

    def body():  # a multipart upload with no Content-Length, 41 MB
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"evidence\"; "
               f"filename=\"big.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-").encode()
        for _ in range(41):
            yield b"\0" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = c.post(f"/cases/new/quote?_csrf={token}", content=body(),
               headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "超过 40 MB" in r.text and "Traceback" not in r.text
    assert eng.cases(actor="wang") == []
    # a signed-out sender gets the small limit, and is asked to sign in before anything is read
    r = client(app).post("/cases/new/quote", content=body(), follow_redirects=False,
                         headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 401


def test_the_stream_limit_holds_on_a_real_socket(live):
    """A chunked body (no Content-Length) sent to uvicorn: answered 413 once over 1 MB."""
    base = live(**proxy_options(None))
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /api/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 65536
        answer = b""
        try:
            for _ in range(64):  # up to 4 MB, unless answered first
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_multipart_sign_in_without_a_token_is_refused_before_its_parts_are_read(site,
                                                                                monkeypatch):
    _, app = site
    from starlette.formparsers import MultiPartParser

    monkeypatch.setattr(MultiPartParser, "parse", _never)
    c = client(app)
    c.get("/login")  # the browser has its sign-in cookie; the forged post has no token
    files = {"upload": ("big.bin", b"\0" * (5 * 1024 * 1024), "application/octet-stream")}
    r = c.post("/login", data={"login": "wang", "password": DEMO_PASSWORD}, files=files)
    assert r.status_code == 403 and "表单已失效" in r.text
    r = c.post("/login", content=b"not multipart at all",
               headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 403  # a body that would not even parse: never parsed
    monkeypatch.undo()
    # with its token in the URL it is read, but the sign-in form takes no file
    token = c.cookies["dealerdocs_login"]
    r = c.post(f"/login?_csrf={token}", data={"login": "wang", "password": DEMO_PASSWORD},
               files={"upload": ("a.txt", b"hello", "text/plain")})
    assert r.status_code == 400 and "不接受上传文件" in r.text
    assert auth.SESSION_COOKIE not in c.cookies


def test_forms_take_files_only_where_the_step_asks_for_them(site, monkeypatch):
    eng, app = site
    c = signed_in(app, "zhang")
    r = post_form(c, "/cases/new/quote", "/cases/new/quote", as_form(example("quote")))
    case_id = re.search(r"/cases/(Q-\d+)", str(r.url)).group(1)
    page = c.get(f"/cases/{case_id}").text
    token = csrf_of(page)
    assert f'action="/cases/{case_id}/fire/cancel?_csrf={token}"' in page  # as the browser posts
    file = {"evidence": ("a.pdf", b"%PDF-1.4", "application/pdf")}
    # a multipart form whose token is only in the body is refused before it is parsed
    from starlette.formparsers import MultiPartParser

    monkeypatch.setattr(MultiPartParser, "parse", _never)
    r = c.post(f"/cases/{case_id}/fire/cancel", data={"_csrf": token}, files=file)
    assert r.status_code == 403
    monkeypatch.undo()
    r = c.post(f"/cases/{case_id}/fire/cancel?_csrf={token}", data={"_csrf": token}, files=file)
    assert r.status_code == 400 and "不接受上传文件" in r.text
    assert eng.case(case_id, actor="wang")["state"] == "draft"
    r = c.post("/logout", data={"_csrf": token}, files=file)
    assert r.status_code == 403  # multipart without the token in the URL


@pytest.mark.parametrize("body, deep", [
    ("[" * 32 + "]" * 32, False),
    ("[" * 33 + "]" * 33, True),
    ('{"a": ' * 33 + "1" + "}" * 33, True),
    ('{"text": "' + "[" * 500 + '"}', False),              # brackets in a string are text
    ('{"text": "\\"' + "[" * 500 + '"}', False),           # an escaped quote keeps it text
    ("[[]" * 40 + "]" * 40, True),
    ("[]" * 10000, False),
    ("[" * 5000, True),                                    # unclosed: still too deep
])
def test_json_depth_is_judged_without_parsing(body, deep):
    assert limits.too_deep(body.encode(), 32) is deep


def test_json_nested_800_deep_is_a_400_not_a_500(site):
    _, app = site
    c = client(app)
    token = token_of(c, "zhang")
    deep = '{"workflow": "quote", "data": {"remarks": ' + "[" * 800 + "]" * 800 + "}}"
    r = c.post("/api/cases", headers={**bearer(token), "content-type": "application/json"},
               content=deep)
    assert r.status_code == 400 and "嵌套超过 32 层" in r.json()["message"]
    r = c.post("/api/token", content="[" * 800 + "]" * 800,
               headers={"content-type": "application/json"})
    assert r.status_code == 400
    # an ordinary body with brackets in its text still goes through
    r = c.post("/api/cases", headers=bearer(token), json={"workflow": "quote", "data": {
        **example("quote"), "remarks": "[[[[" * 20}})
    assert r.status_code == 201, r.text


def test_signed_in_uploads_keep_the_upload_limit(site):
    eng, app = site
    c = client(app)
    sun = bearer(token_of(c, "sun"))
    import base64

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024)
    data = {**example("rectification"),
            "evidence": [{"name": "现场.png", "content_base64": base64.b64encode(png).decode()}]}
    r = c.post("/api/cases", headers=sun, json={"workflow": "rectification", "data": data})
    assert r.status_code == 201, r.text[:300]
    # the same body without a valid token is held to 1 MB and not read further
    r = c.post("/api/cases", headers=bearer("forged"), json={"workflow": "rectification",
                                                             "data": data})
    assert r.status_code == 413


# --- 5. no server paths in answers -------------------------------------------------------------

def test_no_api_answer_names_a_folder_of_the_server(site, monkeypatch):
    eng, app = site
    c = client(app)
    h = bearer(token_of(c, "zhang"))
    zhao = bearer(token_of(c, "zhao"))
    folders = {str(eng.config.store_dir), str(eng.config.outbox_dir), str(eng.config.base_dir)}
    answers = []
    created = c.post("/api/cases", headers=h, json={"workflow": "quote", "data": example("quote")})
    case_id = created.json()["id"]
    fired = c.post(f"/api/cases/{case_id}/fire/issue", headers=h)
    number = fired.json()["documents"][0]["number"]
    answers += [created, fired, c.get(f"/api/cases/{case_id}", headers=h),
                c.get("/api/cases", headers=h), c.get("/api/documents", headers=h),
                c.get(f"/api/documents/{number}", headers=h),
                c.post(f"/api/documents/{number}/dispatch", headers=zhao,
                       json={"to": "周会计", "dept": "财务部"}),
                c.post(f"/api/documents/{number}/recall", headers=zhao, json={"reason": "换版"}),
                c.get("/api/register", headers=zhao), c.get("/api/due", headers=h)]
    shown = answers[2].json()
    assert shown["documents"][0]["pdf_url"] == f"/api/documents/{number}/pdf"
    assert "pdf" not in shown["documents"][0] and "docx" not in shown["documents"][0]
    # errors that carry a path: a damaged case file, a file missing from the outbox
    case_file = next((eng.config.store_dir / "cases").glob(f"Q/*/{case_id}.json"))
    case_file.write_text("{ damaged", encoding="utf-8")
    broken = c.get(f"/api/cases/{case_id}", headers=h)
    assert broken.status_code == 503 and "已损坏" in broken.json()["message"]
    assert "path" not in broken.json()
    zhang = signed_in(app, "zhang")
    page = zhang.get(f"/cases/{case_id}")
    assert page.status_code == 503 and f"{case_id}.json" in page.text
    # a damaged sessions file: said plainly (503, its own name only), not a crash
    sessions_file = eng.config.store_dir / "sessions" / f"{owner_of('zhang')}.json"
    sessions_file.write_text("{ damaged", encoding="utf-8")
    session_page = zhang.get("/")
    api_answer = c.get("/api/me", headers=h)
    assert session_page.status_code == 503 and api_answer.status_code == 503
    assert "已损坏" in session_page.text and f"{owner_of('zhang')}.json" in api_answer.text
    answers += [broken, page, session_page, api_answer]
    for r in answers:
        for folder in folders:
            assert folder not in r.text, (r.request.url, r.text[:300])


@pytest.mark.parametrize("message, shown", [
    ("数据库文件 /srv/dealer/store/cases/Q/0/Q-1.json 已损坏（第 1 行）",
     "数据库文件 Q-1.json 已损坏（第 1 行）"),
    ("无法读取数据库文件 /srv/store/index/x.json：[Errno 13] Permission denied: '/srv/store/index/x.json'",
     "无法读取数据库文件 x.json：[Errno 13] Permission denied: 'x.json'"),
    ("模板 /opt/dealer/templates/docx/quote.docx 缺少 {{ total }}", "模板 quote.docx 缺少 {{ total }}"),
    ("付款方式为「分期/按揭」时必填", "付款方式为「分期/按揭」时必填"),  # not a path
    ("日期 2026/11/26 无效", "日期 2026/11/26 无效"),
])
def test_paths_are_cut_from_what_the_web_shows(message, shown):
    assert scrub(message) == shown
    err = StorageError(message, path="/srv/dealer/store")
    assert public_error(err) == {"error": "StorageError", "message": shown}


def test_cookies_are_secure_over_https_and_headers_stay(site):
    _, app = site
    from fastapi.testclient import TestClient

    c = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    page = c.get("/login")
    login_cookie = page.headers["set-cookie"]
    assert "Secure" in login_cookie and "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    r = c.post("/login", data={"login": "zhang", "password": DEMO_PASSWORD,
                               "_csrf": csrf_of(page.text)}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert r.status_code == 303 and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    home = c.get("/")
    assert home.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in home.headers["content-security-policy"]
    assert home.headers["cache-control"] == "no-store"
    too_big = c.post("/api/token", content=b" " * (2 * 1024 * 1024),
                     headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and too_big.headers["x-content-type-options"] == "nosniff"
