"""The process-wide runtime: reset hooks run when the engine is forgotten."""

from __future__ import annotations

from adscore import runtime


def test_reset_hooks_run_once_each_on_reset_engine() -> None:
    calls: list[str] = []

    def forget() -> None:
        calls.append("forget")

    assert runtime.on_reset(forget) is forget
    runtime.on_reset(forget)  # registered twice: kept once
    try:
        runtime.reset_engine()
        assert calls == ["forget"]
        runtime.reset_engine()
        assert calls == ["forget", "forget"]
    finally:
        runtime._reset_hooks.remove(forget)
