"""What the ``dealerdocs serve`` and ``dealerdocs user …`` commands do; engine/cli.py imports
this only inside those commands, so the rest of the CLI never loads the web stack."""
from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
import threading
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..engine import Engine
from ..errors import ConfigError, NotFoundError
from . import auth

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

# how `serve --workers N` tells each worker process which config.toml to serve
CONFIG_VARIABLE = "DEALERDOCS_SERVE_CONFIG"


def read_password() -> str:
    """A new password, typed twice at a terminal (hidden), or two lines on standard input."""
    if sys.stdin.isatty():
        return click.prompt("新密码", hide_input=True, confirmation_prompt="再输入一次新密码")
    lines = sys.stdin.read().splitlines()
    if not lines or not lines[0]:
        raise ConfigError("请在标准输入中给出新密码（一行；可再给一行确认）")
    if len(lines) > 1 and lines[1] != lines[0]:
        raise ConfigError("两次输入的密码不一致")
    return lines[0]


def set_password(config_path: str | Path, login: str, password: str) -> Path:
    path = Path(config_path).resolve()
    auth.set_password(path, login, auth.hash_password(password))
    return path


def tick_in_background(engine: Engine, every: float, stop: threading.Event | None = None
                       ) -> threading.Thread:
    """Run ``engine.tick_alone()`` every ``every`` seconds in a daemon thread (the workflows'
    timed transitions happen while the web app runs, without cron); a failing tick is logged
    and tried again at the next one. While another server on the same store is ticking, this
    one skips its turn (logged at debug level)."""
    stop = stop or threading.Event()
    log = logging.getLogger("dealerdocs.tick")

    def loop() -> None:
        while not stop.is_set():
            try:
                done = engine.tick_alone()
                if done is None:
                    log.debug("另一个服务器正在执行定时操作，本次跳过")
                for entry in done or ():
                    log.info("定时操作 %s %s：%s", entry["case"], entry["trigger"],
                             entry.get("refused") or entry.get("state_label"))
            except Exception:  # noqa: BLE001 - a tick must not stop the server
                log.exception("定时操作失败，将在下次重试")
            stop.wait(every)

    thread = threading.Thread(target=loop, name="dealerdocs-tick", daemon=True)
    thread.start()
    return thread


def worker_app() -> "FastAPI":
    """The app of one worker process of ``dealerdocs serve --workers N`` (uvicorn's app
    factory): its own engine, made from the config.toml named by :data:`CONFIG_VARIABLE` the
    way the command line makes one. Each worker needs its own: an engine holds a connection
    pool, caches and a converter, none of which may be shared across processes. What the
    workers must agree on is in the store: sign-in sessions, the throttle's failure counts."""
    from ..cli import Ctx
    from .app import create_app

    path = os.environ.get(CONFIG_VARIABLE)
    if not path:
        raise ConfigError(f"环境变量 {CONFIG_VARIABLE} 未设置：工作进程只能由 dealerdocs serve "
                          f"--workers 启动")
    ctx = Ctx(path, None, None)
    app = create_app(ctx.engine, config_path=path)
    served = app.router.lifespan_context

    @asynccontextmanager
    async def closing(app: "FastAPI"):
        async with served(app) as state:
            yield state
        ctx.close()   # the worker's connections to the database, its converter

    app.router.lifespan_context = closing
    return app


def serve(engine: Engine, host: str, port: int, *, config_path: str | Path | None = None,
          forwarded_allow_ips: str | None = None, tick_seconds: float = 300,
          workers: int = 1) -> None:
    """Run the web app. With ``forwarded_allow_ips`` (the reverse proxy's addresses, comma
    separated, or ``*``) uvicorn takes the client's address and scheme from the proxy's
    ``X-Forwarded-For``/``-Proto``; without it those headers are ignored, so nobody can choose
    the address the sign-in throttle counts against. With ``workers`` > 1, uvicorn runs that
    many worker processes on the one port (:func:`worker_app`), and this process only
    supervises them and runs the timers."""
    import uvicorn

    from .app import create_app, demo_passwords_in_use

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    users = [u for u in engine.config.users.values() if u.password_hash]
    click.echo(f"dealerdocs 网页版：http://{host}:{port}/ （按 Ctrl+C 停止）")
    if not users:
        click.echo("注意：还没有用户设置密码，无法登录；请先运行 dealerdocs user set-password LOGIN",
                   err=True)
    demo = demo_passwords_in_use(engine)
    if demo:
        click.echo(f"注意：{'、'.join(demo)} 仍在使用演示密码，只可用于试用；正式使用前请用 "
                   f"dealerdocs user set-password 逐个改掉", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("注意：服务对其他电脑开放；请在前面放置 HTTPS 反向代理（Cookie 才会只走加密连接），"
                   "并用 --forwarded-allow-ips 指明代理的地址", err=True)
    if forwarded_allow_ips:
        click.echo(f"信任来自 {forwarded_allow_ips} 的 X-Forwarded-For / X-Forwarded-Proto 头"
                   f"（登录限速按其中的客户端地址计）", err=True)
    if tick_seconds > 0:
        tick_in_background(engine, tick_seconds)
        click.echo(f"定时操作（工作流的 [[timers]]）每 {tick_seconds:g} 秒检查一次"
                   f"（同一数据库上的多台服务器轮流执行，同一时刻只有一台）", err=True)
    options = dict(host=host, port=port, log_level="info", server_header=False,
                   **proxy_options(forwarded_allow_ips))
    if workers <= 1:
        uvicorn.run(create_app(engine, config_path=config_path), **options)
        return
    click.echo(f"{workers} 个工作进程（登录会话与登录限速计数都在数据库中，各进程共享）", err=True)
    os.environ[CONFIG_VARIABLE] = str(Path(config_path or "config.toml").resolve())
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)


def proxy_options(forwarded_allow_ips: str | None) -> dict[str, object]:
    """uvicorn's proxy settings: off unless the proxy's addresses are given (uvicorn's own
    default would trust 127.0.0.1)."""
    if not forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}


def token_lines(engine: Engine, login: str) -> tuple[list[dict], str]:
    """``login``'s API tokens as rows and as a text table (never a secret)."""
    from ..cli import table

    _known(engine, login)
    tokens = engine.sessions.list(login, "api")
    web = len(engine.sessions.list(login, "web"))
    rows = [t.to_dict() for t in tokens]
    text = table(["编号", "名称", "创建时间", "到期时间"],
                 [[t.id, t.label, t.created_at[:16].replace("T", " "),
                   t.expires_at[:16].replace("T", " ")] for t in tokens])
    summary = f"{login}：{len(tokens)} 个有效的 API 令牌，{web} 个网页登录会话"
    return rows, (text + "\n" if text else "") + summary


def revoke(engine: Engine, login: str, token_id: str) -> list[dict]:
    _known(engine, login)
    return [t.to_dict() for t in engine.sessions.revoke(login, token_id, "api")]


def _known(engine: Engine, login: str) -> None:
    if login not in engine.config.users:
        known = "、".join(sorted(engine.config.users)) or "（无）"
        raise NotFoundError(f"config.toml 中没有用户 \"{login}\"（有：{known}）", user=login)
