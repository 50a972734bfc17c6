"""A wheel of this checkout, installed into a fresh venv, works outside the repository:
``dealerdocs init`` finds the workflows, templates, example data and web assets it carries as
package data (engine/defaults.py), a quote is issued to a PDF, a store's copy of a template
wins over the default and survives the product's files being replaced."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import docx
import pytest

from helpers import ROOT, edit_paragraph, pdf_text

pytestmark = pytest.mark.slow

# Not part of the product: what a build must not pick up from a working checkout. The
# checkout's own folders are left out at its top only (engine/store/ is code).
_TOP_ONLY = {".git", ".venv", ".venv-uno", "store", "outbox", "demo", "build", "dist",
             ".pytest_cache", ".cache", "results"}
_ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__")


def _NOT_SOURCES(folder: str, names: list[str]) -> set[str]:
    left_out = set(_ANYWHERE(folder, names))
    if Path(folder) == ROOT:
        left_out |= _TOP_ONLY & set(names)
    return left_out


def _run(*args, cwd: Path, env: dict[str, str], check: bool = True
         ) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict:
    """A fresh venv with this checkout's wheel, and an environment that cannot see the
    checkout (no PYTHONPATH, no DEALERDOCS_* settings, a home folder of its own)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DEALERDOCS_", "PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = str(root / "home")
    (root / "home").mkdir()
    # Build from a copy of the sources so that the build writes nothing into the checkout.
    # pip builds in an isolated environment and takes setuptools from its configured index,
    # the same requirement as `make setup` (which installs the checkout the same way).
    source = root / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", root / "dist",
         source, cwd=root, env=env)
    [wheel] = (root / "dist").glob("dealerdocs-*.whl")
    target = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", target, cwd=root, env=env)
    python = target / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet",
         wheel, cwd=root, env=env)
    # The dependencies: the machine may be offline, and they are the very wheels this test
    # run's venv already has, so the new venv sees that venv's site-packages through a .pth
    # line. A .pth line only appends a folder to sys.path (after the new venv's own
    # site-packages, where dealerdocs is installed); .pth files inside that folder, such as
    # the checkout's editable-install hook, are not run, so the checkout stays invisible.
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                        cwd=root, env=env).stdout.strip())
    (purelib / "dealerdocs-test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return {"root": root, "env": env, "python": python, "bin": target / "bin" / "dealerdocs",
            "wheel": wheel, "purelib": purelib}


def test_the_package_comes_from_the_wheel_with_its_data(venv):
    probe = textwrap.dedent("""
        import json, engine
        from engine.defaults import package_path, product
        p = product()
        print(json.dumps({"engine": engine.__file__, "installed": p.installed,
                          "workflows": sorted(x.name for x in p.workflows.glob("*.toml")),
                          "templates": sorted(x.name for x in p.templates.glob("*.docx")),
                          "examples": sorted(str(x.relative_to(p.examples))
                                             for x in p.examples.rglob("*") if x.is_file()),
                          "config": p.config.is_file(),
                          "fonts": package_path("fonts.conf").is_file(),
                          "web": sorted(x.name for x in package_path("web", "static").iterdir())}))
    """)
    found = json.loads(_run(venv["python"], "-c", probe, cwd=venv["root"], env=venv["env"]).stdout)
    assert Path(found["engine"]).is_relative_to(venv["purelib"]) and found["installed"]
    assert found["workflows"] == sorted(p.name for p in (ROOT / "workflows").glob("*.toml"))
    assert found["templates"] == sorted(p.name for p in (ROOT / "templates" / "docx").glob("*.docx"))
    assert "quote.json" in found["examples"] and "demo.py" not in found["examples"]
    assert any(name.startswith("evidence/") for name in found["examples"])
    assert found["config"] and found["fonts"]
    assert found["web"] == sorted(p.name for p in (ROOT / "engine" / "web" / "static").iterdir())
    assert {"app.css", "app.js", "manifest.json", "apple-touch-icon.png"} <= set(found["web"])



def test_init_and_a_quote_to_pdf_outside_the_repository(venv):
    """The README's first commands with the installed dealerdocs (a cold LibreOffice: nothing
    of the checkout, not even its .venv-uno, is used)."""
    home, env, dealerdocs = venv["root"] / "home", venv["env"], venv["bin"]
    _run(dealerdocs, "init", home / "store-beijing", cwd=home, env=env)
    store = home / "store-beijing"
    text = (store / "config.toml").read_text(encoding="utf-8")
    assert 'templates = "templates"' in text and 'workflows = ""' in text
    assert str(ROOT) not in text
    assert _run(dealerdocs, "lint", cwd=store, env=env).stdout.splitlines()[-1] == "未发现问题"

    created = json.loads(_run(dealerdocs, "new", "quote", "--data", "examples/quote.json",
                              "--as", "zhang", "--json", cwd=store, env=env).stdout)
    assert created == {"id": "Q-1", "state": "draft", "customer": "K-1"}   # and its customer's file
    fired = json.loads(_run(dealerdocs, "fire", "Q-1", "issue", "--as", "zhang", "--json",
                            cwd=store, env=env).stdout)
    [doc] = fired["documents"]
    pdf = Path(doc["pdf"])
    assert pdf.is_file() and pdf.is_relative_to(store / "outbox")
    assert "刘晓明" in pdf_text(pdf)

    # the store's own copy of the quote, edited in "Word"
    _run(dealerdocs, "templates", "copy", "quote", cwd=store, env=env)
    own = store / "templates" / "quote.docx"
    edit_paragraph(own, "一、客户及车辆信息", "一、尊贵客户及车辆信息")
    # an upgrade changes the product's quote.docx inside the installed package
    installed = venv["purelib"] / "engine" / "product" / "templates" / "quote.docx"
    edit_paragraph(installed, "商谈报价单", "商谈报价单（新版）")
    fired = json.loads(_run(dealerdocs, "fire", "Q-1", "revise", "--data", "examples/revision.json",
                            "--as", "zhang", "--json", cwd=store, env=env).stdout)
    printed = pdf_text(Path(fired["documents"][0]["pdf"]))
    assert "一、尊贵客户及车辆信息" in printed and "新版" not in printed
    shown = _run(dealerdocs, "templates", "diff", "quote", cwd=store, env=env).stdout
    assert "      + 商谈报价单（新版）" in shown

    # replacing the product's files wholesale (a reinstall) leaves the store's copy alone
    _run(sys.executable, "-m", "pip", "--python", venv["python"], "install", "--no-deps",
         "--force-reinstall", "--quiet", venv["wheel"], cwd=venv["root"], env=env)
    assert "新版" not in docx_body(installed)
    listed = {r["name"]: r for r in json.loads(_run(dealerdocs, "templates", "list", "--json",
                                                    cwd=store, env=env).stdout)}
    assert listed["quote.docx"]["state"] == "current" and listed["quote.docx"]["path"] == str(own)
    assert listed["contract.docx"]["path"] == str(venv["purelib"] / "engine" / "product"
                                                  / "templates" / "contract.docx")
    assert "一、尊贵客户及车辆信息" in docx_body(own)


def docx_body(path: Path) -> str:
    return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)


def test_the_web_app_serves_its_pages_and_assets_from_the_wheel(venv):
    home, env = venv["root"] / "home", venv["env"]
    _run(venv["bin"], "init", home / "web-store", cwd=home, env=env)
    probe = textwrap.dedent("""
        import warnings
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
        from engine import Engine, load_config
        from engine.web.app import create_app
        with Engine(load_config("config.toml")) as eng:
            c = TestClient(create_app(eng))
            css, login = c.get("/static/app.css"), c.get("/login")
            print(css.status_code, login.status_code, "登录" in login.text, len(css.text) > 100)
    """)
    out = _run(venv["python"], "-c", probe, cwd=home / "web-store", env=env).stdout.split()
    assert out == ["200", "200", "True", "True"]
