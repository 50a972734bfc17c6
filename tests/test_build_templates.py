"""tools/build_*templates.py: each builds its first-version templates into the folder given with
``--out``, and never into templates/docx (the committed files are the source of truth and have
been edited in Word since, so their bytes are not compared with a build's)."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from engine import load_config
from engine.lint import format_findings, lint_template
from engine.workflow import load_workflows

from helpers import ROOT

SCRIPTS = {
    "build_templates.py": ["quote.docx", "contract.docx"],
    "build_delivery_templates.py": ["delivery_booking.docx", "delivery.docx"],
    "build_test_drive_templates.py": ["test_drive_agreement.docx", "test_drive_evaluation.docx"],
    "build_rectification_templates.py": ["rectification_plan.docx", "rectification_closure.docx",
                                         "rectification_extension.docx",
                                         "rectification_cancellation.docx"],
    "build_care_templates.py": ["complaint_record.docx"],
    "build_customer_templates.py": ["customer_card.docx"],
}
COMMITTED = ROOT / "templates" / "docx"


def committed_state() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in COMMITTED.glob("*.docx")}


def build(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / script), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_build_writes_only_into_its_out_folder(script, tmp_path):
    before = committed_state()
    out = tmp_path / "built"
    proc = build(script, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(SCRIPTS[script])
    assert proc.stdout.splitlines() == [f"wrote {out / name}" for name in SCRIPTS[script]]
    # what it made is a working template of its workflow (lint finds no error)
    workflows = load_workflows(load_config(ROOT / "config.toml"))
    for name in SCRIPTS[script]:
        users = [w for w in workflows.values()
                 if any(d.template == name for d in w.documents.values())]
        findings = lint_template(out / name, users)
        assert [f for f in findings if f.severity == "error"] == [], format_findings(findings)
    assert committed_state() == before


@pytest.mark.parametrize("args, words", [
    ([], "the following arguments are required: --out"),
    (["--out", str(COMMITTED)], "is the committed templates folder"),
    (["--out", "templates/docx/"], "is the committed templates folder"),
])
def test_a_build_refuses_the_committed_folder(args, words):
    before = committed_state()
    proc = build("build_templates.py", *args)
    assert proc.returncode == 2 and words in proc.stderr and proc.stdout == ""
    assert committed_state() == before
