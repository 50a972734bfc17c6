"""What the ``dealerdocs serve`` and ``dealerdocs user set-password`` commands do; engine/cli.py
imports this only inside those commands, so the rest of the CLI never loads the web stack."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..engine import Engine
from ..errors import ConfigError
from . import auth


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


def serve(engine: Engine, host: str, port: int) -> None:
    import uvicorn

    from .app import create_app, demo_passwords_in_use

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(engine)
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
        click.echo("注意：服务对其他电脑开放；请在前面放置 HTTPS 反向代理（Cookie 才会只走加密连接）",
                   err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
