"""Waiting for what a test can see (a process gone, a pool answering) instead of sleeping: the
deadlines only turn a hang into a clear failure."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.warm import WarmConverter


def wait_for(condition, what: str, seconds: float = 120) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does. The deadline
    only turns a hang into a clear failure: nothing here assumes how long anything takes."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened in {seconds:g} s: {what}")
        time.sleep(0.1)


def state(pid: int) -> str:
    """The process's state letter from /proc (R, S, T for stopped, Z …), "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return ""


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    return state(pid) not in ("", "Z", "X")


def ready(pool: WarmConverter) -> WarmConverter:
    """``pool`` once every instance answers (a test before may have killed or replaced one)."""
    def answering() -> bool:
        instances = pool._load()
        silent = [inst for inst in instances if not pool._alive(inst)]
        if not instances or (silent and not any(running(i["pid"]) for i in silent)):
            pool.start()  # none, or the silent ones are dead: start() replaces them
            return False
        return not silent  # the silent ones are still starting

    wait_for(answering, f"every instance of the warm pool in {pool.state_dir} answering")
    return pool
