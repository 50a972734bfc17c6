"""Helpers for the web app's tests: a dealership with its app, signing in, CSRF tokens, and
example data turned into the form fields a browser would send."""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from engine import Engine, load_config

DEMO_PASSWORD = "demo-2026"  # the demo users' password in config.toml (README, "Web app")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx versions
    from fastapi.testclient import TestClient


def web_engine(config_path: Path, converter) -> Engine:
    """An engine on the real clock (the example data's dates are relative to today)."""
    return Engine(load_config(config_path), converter=converter)


def client(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, follow_redirects=True)


def csrf_of(html: str) -> str:
    m = re.search(r'name="_csrf" value="([^"]*)"', html)
    assert m, "page has no CSRF field"
    return m.group(1)


def sign_in(c: TestClient, login: str, password: str = DEMO_PASSWORD, next: str = "/"):
    page = c.get(f"/login?next={next}")
    return c.post("/login", data={"login": login, "password": password,
                                  "_csrf": csrf_of(page.text), "next": next})


def as_form(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-like case data as form fields (``name``, ``table.1.col``, repeated multichoice)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for i, row in enumerate(value, start=1):
                for col, cell in row.items():
                    out[f"{key}.{i}.{col}"] = "" if cell is None else str(cell)
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, bool):
            out[key] = "是" if value else "否"
        else:
            out[key] = "" if value is None else str(value)
    return out


def post_form(c: TestClient, page_url: str, action: str, data: dict[str, Any],
              files: Any = None, csrf: bool = True):
    """Open ``page_url`` (for its CSRF token) and post ``data`` to ``action`` like its form;
    with ``files`` the form is multipart and, as the page's form does, names its token in the
    action URL (the server checks it there before reading the parts)."""
    page = c.get(page_url)
    assert page.status_code == 200, page.text[:500]
    fields = dict(data)
    if csrf:
        fields["_csrf"] = csrf_of(page.text)
        if files:
            action += ("&" if "?" in action else "?") + "_csrf=" + fields["_csrf"]
    return c.post(action, data=fields, files=files)


def errors_of(html: str) -> list[str]:
    """The messages shown next to fields and in the alert box."""
    found = re.findall(r'<p class="error"[^>]*>([^<]+)</p>', html)
    found += re.findall(r'<div class="alert" role="alert">\s*((?:<p>[^<]*</p>)+)', html)
    return [re.sub(r"<[^>]+>", " ", f).strip() for f in found]


def field_error(html: str, name: str) -> str:
    """The error text inside the form field whose input is named ``name``."""
    m = re.search(rf'<div class="field has-error[^"]*">\s*<label for="[^"]*-{re.escape(name)}">'
                  rf'(.*?)</div>', html, re.S)
    assert m, f"no error shown at field {name}"
    return " ".join(re.findall(r'<p class="error"[^>]*>([^<]+)</p>', m.group(1)))
