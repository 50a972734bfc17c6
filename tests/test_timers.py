"""Timed transitions ([[timers]] in a workflow file): `dealerdocs tick` expires a quote past
its validity and marks an overdue rectification item, once, as the actor system with the
transition's own conditions; a second tick changes nothing; `serve` ticks in the background."""
from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.workflow import parse_duration

from helpers import (CST, ROOT, Clock, cli_json, definition_error, example, make_dealer_dir,
                     point_at_workflows, refused, run_cli, store_state)

ISSUED_ON = "2026-11-20"


def quote(dealer: Path, valid_until: str) -> str:
    case = cli_json(dealer, "new", "quote", "--as", "zhang", today=ISSUED_ON,
                    data=example("quote", valid_until=valid_until))["id"]
    cli_json(dealer, "fire", case, "issue", "--as", "zhang", today=ISSUED_ON)
    return case


def audit_of(dealer: Path, case: str) -> list[dict]:
    return cli_json(dealer, "show", case, "--as", "wang")["history"]


@pytest.mark.slow
def test_tick_expires_a_quote_past_its_validity_once(dealer):
    late = quote(dealer, valid_until="2026-11-25")
    valid = quote(dealer, valid_until="2026-11-30")

    # the last valid day: nothing is due
    assert cli_json(dealer, "tick", today="2026-11-25") == []
    assert run_cli("tick", cwd=dealer, today="2026-11-25").stdout == "已执行 0 项定时操作（没有到期的）\n"

    done = cli_json(dealer, "tick", today="2026-11-26")
    assert done == [{"case": late, "workflow": "quote", "trigger": "expire", "state": "expired",
                     "state_label": "已过期", "documents": []}]
    [event] = [e for e in audit_of(dealer, late) if e["trigger"] == "expire"]
    assert event["actor"] == "system" and (event["from"], event["to"]) == ("issued", "expired")
    assert cli_json(dealer, "show", valid, "--as", "wang")["state"] == "issued"

    before = store_state(dealer / "store")
    assert cli_json(dealer, "tick", today="2026-11-26") == []   # idempotent
    assert run_cli("tick", cwd=dealer, today="2026-11-27").stdout == "已执行 0 项定时操作（没有到期的）\n"
    assert store_state(dealer / "store") == before

    out = run_cli("tick", cwd=dealer, today="2026-12-01").stdout
    assert out == f"已执行 1 项定时操作：\n  {valid}  报价过期（expire）→ 已过期\n"
    assert run_cli("verify", cwd=dealer).returncode == 0


def rectification_in_progress(dealer: Path, deadline: str) -> str:
    data = json.loads((ROOT / "examples" / "rectification.json").read_text(encoding="utf-8"))
    data.update(inspection_date="2026-11-20", deadline=deadline)
    day = "2026-11-21"
    item = cli_json(dealer, "new", "rectification", "--as", "sun", data=data, today=day)["id"]
    cli_json(dealer, "fire", item, "submit_plan", "--as", "chen", today=day,
             data={"root_cause": "制度未落实", "corrective_action": "张贴路线图",
                   "verification_method": "现场照片"})
    cli_json(dealer, "fire", item, "approve_plan", "--as", "sun", today=day)
    return item


@pytest.mark.slow
def test_tick_marks_an_overdue_item_once_and_again_after_an_extension(dealer):
    item = rectification_in_progress(dealer, deadline="2026-12-10")

    assert cli_json(dealer, "tick", today="2026-12-10") == []        # the deadline day itself
    # nobody may mark by hand: only the timer fires it
    line = refused(dealer, "fire", item, "mark_overdue", "--as", "chen", today="2026-12-11")
    assert "无权执行「标记逾期」（mark_overdue）" in line and "（无人可执行）" in line

    done = cli_json(dealer, "tick", today="2026-12-11")
    assert [(d["case"], d["trigger"], d["state"]) for d in done] == [
        (item, "mark_overdue", "in_progress")]
    shown = cli_json(dealer, "show", item, "--as", "sun")
    assert shown["data"]["overdue_marked_at"].startswith("2026-12-11T")
    [event] = [e for e in shown["history"] if e["trigger"] == "mark_overdue"]
    assert event["actor"] == "system"
    assert cli_json(dealer, "tick", today="2026-12-12") == []        # once

    # an extension (asked for and granted on the deadline day) re-arms it
    item2 = rectification_in_progress(dealer, deadline="2026-12-20")
    cli_json(dealer, "fire", item2, "request_extension", "--as", "chen", today="2026-12-20",
             data={"requested_deadline": "2026-12-31", "extension_reason": "配件未到"})
    cli_json(dealer, "fire", item2, "approve_extension", "--as", "zhou", today="2026-12-20")
    assert cli_json(dealer, "tick", today="2026-12-31") == []
    done = cli_json(dealer, "tick", today="2027-01-01")
    assert [d["case"] for d in done] == [item2]


WAITING = '''
[workflow]
key = "callback"
title = "回电登记"
case_prefix = "CB"
initial = "waiting"
create_roles = ["sales"]

[fields.customer_name]
type = "string"
label = "客户"
required = true

[fields.promised]
type = "boolean"
label = "已承诺回电"

[states.waiting]
label = "待回电"

[states.lapsed]
label = "超时未回电"
final = true

[states.done]
label = "已回电"
final = true

[[transitions]]
trigger = "call"
label = "已回电"
source = ["waiting"]
dest = "done"
roles = ["sales"]

[[transitions]]
trigger = "lapse"
label = "超时"
source = ["waiting"]
dest = "lapsed"
roles = []

[[timers]]
trigger = "lapse"
after = "2d"
when = "not promised"
requires = []
'''


@pytest.fixture
def callbacks(tmp_path, converter):
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "callback.toml").write_text(WAITING, encoding="utf-8")
    config = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder))
    clock = Clock(datetime(2026, 11, 26, 10, 30, tzinfo=CST))
    engine = Engine(load_config(config), converter=converter, clock=clock)
    yield engine, clock
    engine.close()


def test_after_counts_from_entering_the_state_and_when_must_hold(callbacks):
    engine, clock = callbacks
    engine.create("callback", {"customer_name": "刘晓明"}, actor="zhang")
    engine.create("callback", {"customer_name": "王芳", "promised": True}, actor="zhang")
    clock.advance(days=2, minutes=-1)
    assert engine.tick() == []
    clock.advance(minutes=1)
    assert [(d["case"], d["state"]) for d in engine.tick()] == [("CB-1", "lapsed")]
    assert engine.tick() == []
    assert engine.case("CB-2", actor="zhang")["state"] == "waiting"   # when does not hold


def test_serve_ticks_in_the_background(callbacks):
    from engine.web.cli import tick_in_background

    engine, clock = callbacks
    engine.create("callback", {"customer_name": "刘晓明"}, actor="zhang")
    clock.advance(days=3)
    stop = threading.Event()
    thread = tick_in_background(engine, every=0.05, stop=stop)
    try:
        for _ in range(200):
            if engine.case("CB-1", actor="zhang")["state"] == "lapsed":
                break
            stop.wait(0.05)
        assert engine.case("CB-1", actor="zhang")["state"] == "lapsed"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.parametrize("edit, key, words", [
    (lambda t: t.replace('trigger = "lapse"\nafter', 'trigger = "lapsed"\nafter'),
     "timers[0].trigger", ['"lapsed" 不是本工作流的操作']),
    (lambda t: t.replace('after = "2d"', 'after = "2 days"'), "timers[0].after",
     ['"2 days" 不是时长', "3d（天）"]),
    (lambda t: t.replace('after = "2d"\nwhen = "not promised"\n', ''), "timers[0]",
     ["需要 when", "after"]),
    (lambda t: t.replace('when = "not promised"', 'when = "not promissed"'), "timers[0].when",
     ["promissed"]),
    (lambda t: t.replace('after = "2d"', 'after = "2d"\nstates = ["done"]'),
     "timers[0].states[0]", ['不能从 "done" 执行']),
    (lambda t: t[:t.index("[[timers]]")], "transitions[1].roles", ["只能由 [[timers]] 定时执行"]),
])
def test_mistakes_in_timers_name_their_key(tmp_path, edit, key, words):
    error = definition_error(tmp_path, {"callback.toml": edit(WAITING)})
    assert error.details["key"] == key
    for word in words:
        assert word in error.message, error.message


@pytest.mark.parametrize("text, minutes", [("3d", 4320), ("12h", 720), ("30m", 30),
                                           (" 1d ", 1440)])
def test_durations(text, minutes):
    assert parse_duration(text).total_seconds() == minutes * 60


@pytest.mark.parametrize("text", ["0d", "3", "d", "1.5h", "3w", "-1d"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


class HeldClock:
    """A clock that, once armed, stops the first caller (a tick, holding the ticker) until
    the test lets it go: so the test knows a second tick comes while the first is running."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.armed = False
        self.inside = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> datetime:
        if self.armed:
            self.armed = False
            self.inside.set()
            assert self.release.wait(120), "the test never let the tick go"
        return self.clock()


def test_two_servers_ticking_at_once_fire_each_timer_once(tmp_path, converter, backend,
                                                          caplog):
    """Two engines on one store (two servers, on either backend) tick at the same moment:
    the one that holds the ticker fires every due timer, the other skips its turn and says
    so; then the ticker is free again and nothing is left to fire."""
    import logging

    from helpers import use_database

    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "callback.toml").write_text(WAITING, encoding="utf-8")
    config = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder))
    if backend.kind == "postgresql":
        use_database(config, backend.where)
    clock = Clock(datetime(2026, 11, 26, 10, 30, tzinfo=CST))
    held = HeldClock(clock)
    first = Engine(load_config(config), converter=converter, clock=held)
    second = Engine(load_config(config), converter=converter, clock=clock)
    try:
        for name in ("刘晓明", "王芳", "李强"):
            first.create("callback", {"customer_name": name}, actor="zhang")
        clock.advance(days=3)
        done: list = []
        held.armed = True
        ticking = threading.Thread(target=lambda: done.append(first.tick_alone()))
        ticking.start()
        try:
            assert held.inside.wait(120), "the first tick never started"
            with caplog.at_level(logging.DEBUG, logger="engine.engine"):
                assert second.tick_alone() is None            # skipped: the other is ticking
        finally:
            held.release.set()
            ticking.join(timeout=120)
        assert "another process is ticking" in caplog.text
        [fired] = done
        assert sorted((d["case"], d["state"]) for d in fired) == [
            ("CB-1", "lapsed"), ("CB-2", "lapsed"), ("CB-3", "lapsed")]
        assert second.tick_alone() == [] and first.tick_alone() == []   # free again, all done
        for case in ("CB-1", "CB-2", "CB-3"):
            history = second.case(case, actor="zhang")["history"]
            assert [e["trigger"] for e in history].count("lapse") == 1
    finally:
        first.close()
        second.close()
