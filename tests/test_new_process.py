"""A new business process is a TOML file and its Word template, with no Python: a workflow
written in a temp folder (fields, two states, a check, a computed value read from the store's
policy, a document) issues its PDF through the real command line and LibreOffice."""
from __future__ import annotations

import json
import re
from pathlib import Path

import docx
import pytest

from helpers import cli_json, make_dealer_dir, pdf_text, point_at_workflows, refused, use_pool

VISIT = '''
[workflow]
key = "visit"
title = "展厅来店登记"
case_prefix = "V"
initial = "open"
create_roles = ["sales"]
assignee = "consultant"
total = "per_person"
create_checks = ["deposit_within_budget"]
summary = ["customer_name"]

[fields.customer_name]
type = "string"
label = "客户姓名"
personal = "name"
required = true

[fields.consultant]
type = "user"
label = "接待顾问"
roles = ["sales"]
default = "actor"

[fields.visitors]
type = "integer"
label = "来店人数"
min = "1"
required = true

[fields.budget]
type = "money"
label = "购车预算"

[fields.deposit]
type = "money"
label = "意向金"

[states.open]
label = "接待中"

[states.registered]
label = "已登记"
final = true

[documents.card]
title = "来店登记卡"
template = "visit_card.docx"
series = "visit"

[[transitions]]
trigger = "register"
label = "登记"
source = ["open"]
dest = "registered"
roles = ["sales"]
edits = ["budget", "deposit"]
requires = ["budget"]
checks = ["deposit_within_budget"]
documents = ["card"]

[computed.per_person]
label = "人均预算"
value = "money(budget / visitors)"

[computed.deposit_cap]
label = "意向金上限"
value = "money(budget * policy.visit_deposit_share)"

[checks.deposit_within_budget]
field = "deposit"
fails_when = "deposit > deposit_cap"
message = "意向金 {{ deposit|money }} 超过预算的 {{ policy.visit_deposit_share|percent }}（{{ deposit_cap|money }}）"

[policy.visit_deposit_share]
type = "decimal"
default = "0.10"
min = "0"
max = "1"
label = "意向金占预算的上限"
'''


def visit_card(path: Path) -> None:
    """The document as a person would write it in Word: plain paragraphs with tags."""
    document = docx.Document()
    document.add_heading("来店登记卡", level=1)
    document.add_paragraph("编号：{{ doc.number }}")
    document.add_paragraph("客户：{{ customer_name }}　来店 {{ visitors }} 人")
    document.add_paragraph("预算 {{ budget|money }}，人均 {{ totals.per_person|money }}")
    document.add_paragraph("意向金 {{ deposit|money }}（上限 {{ totals.deposit_cap|money }}）")
    document.save(str(path))


@pytest.fixture
def store(tmp_path, warm_pool_dir) -> Path:
    """A dealership whose workflows and templates folders hold the new process only."""
    folder = tmp_path / "store"
    config = point_at_workflows(make_dealer_dir(folder), str(tmp_path / "workflows"))
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "visit.toml").write_text(VISIT, encoding="utf-8")
    (tmp_path / "templates").mkdir()
    visit_card(tmp_path / "templates" / "visit_card.docx")
    text = config.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^templates = .*$', f"templates = {json.dumps(str(tmp_path / 'templates'))}",
                  text)
    text = text.replace("[series.quote]", '[series.visit]\nprefix = "LD"\n\n[series.quote]', 1)
    config.write_text(text, encoding="utf-8")
    use_pool(config, warm_pool_dir)
    return folder


@pytest.mark.slow
def test_a_workflow_written_in_a_temp_folder_issues_its_pdf(store):
    case = cli_json(store, "new", "visit", "--as", "zhang",
                    data={"customer_name": "刘晓明", "visitors": 3})
    assert case["id"] == "V-1" and case["state"] == "open"

    # the check reads a computed value and the store's policy, and says so in its words
    message = refused(store, "fire", "V-1", "register", "--as", "zhang",
                      data={"budget": "150000.00", "deposit": "15000.01"})
    assert message == ("错误：意向金（deposit）：意向金 ¥15,000.01 超过预算的 10%（¥15,000.00）")

    fired = cli_json(store, "fire", "V-1", "register", "--as", "zhang",
                     data={"budget": "150000.00", "deposit": "15000.00"})
    [document] = fired["documents"]
    assert document["number"] == "LD-" + document["number"].split("-", 1)[1]
    text = pdf_text(store / "outbox" / document["pdf"])
    assert f"编号：{document['number']}" in text
    assert "客户：刘晓明" in text and "来店 3 人" in text
    assert "预算 ¥150,000.00，人均 ¥50,000.00" in text
    assert "意向金 ¥15,000.00（上限 ¥15,000.00）" in text

    shown = cli_json(store, "show", "V-1", "--as", "zhang")
    assert shown["state"] == "registered"
    assert shown["totals"] == {"per_person": "50000.00", "deposit_cap": "15000.00"}
    assert cli_json(store, "list", "--as", "zhang")[0]["total"] == "50000.00"


def test_the_store_policy_overrides_the_workflow_default(store):
    config = store / "config.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      + '\n[policy]\nvisit_deposit_share = "0.2"\n', encoding="utf-8")
    message = refused(store, "new", "visit", "--as", "zhang",
                      data={"customer_name": "刘晓明", "visitors": 2, "budget": "100000",
                            "deposit": "20000.01"})
    assert message.endswith("超过预算的 20%（¥20,000.00）")

    config.write_text(config.read_text(encoding="utf-8").replace('"0.2"', '"2"'), encoding="utf-8")
    message = refused(store, "list", "--as", "zhang")
    assert "policy.visit_deposit_share 应为 0–1 之间的小数" in message
