"""The README's "Using it" block, typed literally by a newcomer: every line runs, in order, in
a fresh home folder, and exits 0. Only the year in document numbers follows the clock (the
README shows this year's numbers)."""
from __future__ import annotations

import os
import re
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow


def usage_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it"):]
    block = section[section.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    return [line for line in block.splitlines() if line.strip()]


def test_the_usage_block_is_runnable_line_by_line(tmp_path):
    lines = usage_block()
    assert lines[0].startswith(".venv/bin/dealerdocs init ~/") and len(lines) > 30
    for line in lines:   # literal: no placeholders, no alternatives to pick from
        command = line.split("  #")[0]
        assert not re.search(r"\[[^\]]*\]|<[^>]*>| \| ", command), line
    year = datetime.now(timezone(timedelta(hours=8))).year
    script = "\n".join(re.sub(r"\b([A-Z]{2,4})-2026-", rf"\1-{year}-", line) for line in lines)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALERDOCS_")}
    env.update(HOME=str(tmp_path), PATH=os.environ["PATH"])
    try:
        proc = subprocess.run(["bash", "-e", "-x", "-c", script], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
    finally:   # a line that failed left the warm converter of the block running
        subprocess.run([str(ROOT / ".venv" / "bin" / "dealerdocs"), "converter", "stop"],
                       cwd=tmp_path / "store-beijing", env=env, capture_output=True)
    failed = proc.stderr.strip().splitlines()[-6:]
    assert proc.returncode == 0, "\n".join(failed)
    store = tmp_path / "store-beijing"
    assert (store / "examples" / "quote.json").is_file()
    assert "校验通过" in proc.stdout and "Traceback" not in proc.stderr
    assert list((store / "outbox").rglob("HT-*.pdf")) and (store / "记录表.xlsx").is_file()
    assert (tmp_path / "dealerdocs-seals.txt").read_text(encoding="utf-8").startswith(
        "dealerdocs-seal v1 ")
