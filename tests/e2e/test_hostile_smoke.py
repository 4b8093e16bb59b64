"""The hostile suite (bench/hostile.py) in miniature, so it keeps working between full runs:
one SIGKILL mid-ingest, a few crafted files through the bot, two users searching."""

from __future__ import annotations

from bench import hostile


async def test_hostile_suite_in_miniature() -> None:
    args = hostile.parse_args(
        [
            "--scenario", "kill,fuzz,crowd",
            "--kills", "1",
            "--fuzz-cases", "8",
            "--users", "2",
            "--minutes", "0.2",
            "--think-min-s", "1",
            "--think-max-s", "2",
        ]
    )  # fmt: skip
    results = await hostile.main_async(args)
    kill, fuzz, crowd = results["kill"], results["fuzz"], results["crowd"]
    assert kill["acknowledged_lost"] == 0 and kill["untyped_escapes"] == 0, kill
    assert fuzz["cases"] == 8 and fuzz["untyped_escapes"] == 0 and fuzz["no_answer"] == 0, fuzz
    assert crowd["queries"] > 0 and crowd["unanswered"] == 0, crowd
    assert crowd["cross_user_leaks"] == 0 and crowd["untyped_escapes"] == 0, crowd
