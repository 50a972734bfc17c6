"""Cases made under an earlier workflow definition: a state renamed through [migrations]
keeps old cases readable and movable, a renamed field carries its values, a retired field
keeps them aside, and a state removed with no migration stops the engine (and lint) with what
to write, before anything is changed."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.errors import WorkflowDefinitionError
from engine.lint import lint_paths

from helpers import ROOT, definition_error, make_dealer_dir, point_at_workflows, store_state


@pytest.fixture
def shop(tmp_path, converter, clock, quote_data):
    """A dealership with its own copy of the workflows and two quotes: Q-1 issued, Q-2 draft."""
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", folder)
    config = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder))
    engine = Engine(load_config(config), converter=converter, clock=clock)
    engine.create("quote", quote_data, actor="zhang")
    engine.fire("Q-1", "issue", actor="zhang")
    engine.create("quote", {**quote_data, "remarks": "客户想要白色"}, actor="zhang")
    engine.close()
    return config, folder


def reopen(config: Path, converter, clock) -> Engine:
    return Engine(load_config(config), converter=converter, clock=clock)


def without_own_migrations(text: str) -> str:
    """quote.toml with its shipped ``[migrations]`` table left out (it keeps a typed purchase tax
    as the override, issue 19), for a test that writes its own in its place."""
    lines = text.splitlines(keepends=True)
    start = lines.index("[migrations]\n")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    return "".join(lines[:start] + lines[end:])


def edit_quote(folder: Path, *edits: tuple[str, str], append: str = "") -> None:
    path = folder / "quote.toml"
    text = path.read_text(encoding="utf-8")
    if "[migrations]" in append:
        text = without_own_migrations(text)
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text + append, encoding="utf-8")


RENAME_ISSUED = (('[states.issued]', '[states.offered]'), ('dest = "issued"', 'dest = "offered"'),
                 ('source = ["issued"]', 'source = ["offered"]'),
                 ('source = ["draft", "issued"]', 'source = ["draft", "offered"]'))


def test_every_new_case_records_its_definition(shop, converter, clock):
    config, _ = shop
    engine = reopen(config, converter, clock)
    with engine.store.snapshot() as tx:
        assert tx.case("Q-1")["definition"] == engine.workflows["quote"].definition
        assert tx.definition("quote") == engine.workflows["quote"].definition
    engine.close()


def test_a_renamed_state_keeps_old_cases_readable_and_movable(shop, converter, clock):
    config, folder = shop
    edit_quote(folder, *RENAME_ISSUED, append='\n[migrations]\nstates = { issued = "offered" }\n')

    engine = reopen(config, converter, clock)
    case = engine.case("Q-1", actor="zhang")
    assert case["state"] == "offered"
    assert [(e["trigger"], e["from"], e["to"]) for e in case["history"]] == [
        ("create", None, "draft"), ("issue", "draft", "issued")]   # the trail is never rewritten
    assert [c["id"] for c in engine.cases(state="offered", actor="zhang")] == ["Q-1"]
    assert engine.cases(workflow="quote", state="draft", actor="zhang")[0]["id"] == "Q-2"
    result = engine.fire("Q-1", "accept", actor="zhang")
    assert result.state == "accepted"
    assert engine.verify() == []
    engine.close()

    # the next start finds nothing to do
    before = store_state(config.parent / "store")
    reopen(config, converter, clock).close()
    assert store_state(config.parent / "store") == before


def test_a_removed_state_without_a_migration_stops_everything_and_changes_nothing(
        shop, converter, clock):
    config, folder = shop
    edit_quote(folder, *RENAME_ISSUED)
    before = store_state(config.parent / "store")

    with pytest.raises(WorkflowDefinitionError) as raised:
        reopen(config, converter, clock)
    assert raised.value.message == (
        'quote.toml: 数据库中有商谈报价单处于已不存在的状态 "issued"（1 个案件，如 Q-1）；'
        '请在 [migrations] 中写明它们现在的状态，例如 states = { issued = "draft" }')
    assert store_state(config.parent / "store") == before

    findings = lint_paths(load_config(config), [])
    [error] = [f for f in findings if f.place == "migrations.states"]
    assert error.severity == "error" and error.file == "quote.toml"
    assert '"issued"（1 个案件，如 Q-1）' in error.problem


def test_a_renamed_field_carries_its_values_and_a_retired_one_is_kept_aside(
        shop, converter, clock):
    config, folder = shop
    edit_quote(folder, ("[fields.remarks]", "[fields.notes]"),
               ("[fields.gifts]\ntype = \"text\"\nlabel = \"赠送装潢及其他赠送\"\nmax_length = 500\n", ""),
               append='\n[migrations]\nfields = { remarks = "notes" }\nretired_fields = ["gifts"]\n')
    engine = reopen(config, converter, clock)
    with engine.store.snapshot() as tx:
        q2 = tx.case("Q-2")
    assert q2["data"]["notes"] == "客户想要白色" and "remarks" not in q2["data"]
    assert "gifts" not in q2["data"] and q2["retired"]["gifts"]  # the example has gifts
    assert engine.case("Q-2", actor="zhang")["data"]["notes"] == "客户想要白色"
    engine.close()


@pytest.mark.parametrize("migrations, key, words", [
    ('states = { draft = "issued" }', "migrations.states.draft", ['"draft" 仍是现有状态']),
    ('states = { offered = "sent" }', "migrations.states.offered", ['"sent" 不是现有状态']),
    ('fields = { remarks = "notes" }', "migrations.fields.remarks", ["应把已不存在的字段映射到现有字段"]),
    ('retired_fields = ["remarks"]', "migrations.retired_fields[0]", ['"remarks" 仍是现有字段']),
])
def test_mistakes_in_migrations_name_their_key(tmp_path, migrations, key, words):
    quote = without_own_migrations((ROOT / "workflows" / "quote.toml").read_text(encoding="utf-8"))
    error = definition_error(tmp_path, {"quote.toml": quote + f"\n[migrations]\n{migrations}\n"},
                             with_product=True)
    assert error.details["key"] == key
    for word in words:
        assert word in error.message, error.message
