"""Two real server processes on one data directory, as when Claude Desktop and Cursor both start the server: a live
run in one is seen as running by the other, resumed or cancelled from it as it should be, and taken over only once
its server is dead, without paying again for what was done."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from ..fakes.openrouter import FakeOpenRouter
from ..support import wait_until
from .raw import RawServer

LEASE_S = "2"  # a dead server's runs read as interrupted this soon (the default is 15 s)
PLAN = {
    "sub_questions": [{"question": f"How do honeybees {w}?", "rationale": "r"} for w in ("dance", "swarm", "sting")]
}


def structured(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("isError"), result
    data: dict[str, Any] = result["structuredContent"]
    return data


def researched(fake: FakeOpenRouter, answered_only: bool = True) -> list[str]:
    """The sub-question of every researcher request the fake answered (or received)."""
    return [
        r.body["messages"][-1]["content"].split("\n")[0]
        for r in fake.chat_requests()
        if r.body.get("tools") and (r.answered or not answered_only)
    ]


def server(tmp_path: Path, fake: FakeOpenRouter, name: str) -> RawServer:
    return RawServer(
        tmp_path,
        OPENROUTER_BASE_URL=fake.base_url,
        OPENROUTER_JOB_LEASE_S=LEASE_S,
        OPENROUTER_RESEARCH_CONCURRENCY="1",  # one researcher at a time: the kill lands between two
        OPENROUTER_CACHE_DIR=str(tmp_path / f"cache-{name}"),
        stderr_name=f"stderr-{name}.log",
    )


def test_e2e_two_servers_share_runs_and_take_over_a_dead_ones_without_paying_twice(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake = fake_openrouter
    fake.structured_answers["research_plan"] = PLAN
    fake.structured_answers["research_gaps"] = {"gaps": [], "follow_up_questions": []}
    with server(tmp_path, fake, "a") as a, server(tmp_path, fake, "b") as b:
        a.initialize()
        b.initialize()
        fake.release.clear()
        started = structured(
            a.call("deep_research", {"question": "How do honeybees live?", "depth": 1, "background": True})
        )
        research_id = started["research_id"]
        seen = structured(b.call("get_research", {"research_id": research_id}))
        assert seen["status"] == "running"  # alive in A: B leaves it alone
        refused = b.call("deep_research", {"resume": research_id})
        assert refused["isError"] and "already running in another process (pid " in refused["content"][0]["text"]
        # Let A finish planning and one researcher, and hold the next: A dies between two paid steps.
        fake.pass_only(2)
        wait_until(lambda: len(researched(fake)) >= 1, timeout=30, what="a first researcher answered")
        wait_until(
            lambda: structured(b.call("get_research", {"research_id": research_id}))["sources"],
            what="B seeing A's saved progress",
        )
        paid_before = set(researched(fake))
        billed_before = list(fake.billed)
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        interrupted = wait_until(
            lambda: (
                (d := structured(b.call("get_research", {"research_id": research_id})))["status"] == "interrupted" and d
            ),
            timeout=30,
            what="the dead server's lease expiring",
        )
        assert interrupted["status"] == "interrupted"
        fake.release.set()
        resumed = structured(b.call("deep_research", {"resume": research_id}, seconds=120))
    assert resumed["status"] == "done" and resumed["research_id"] == research_id
    everything = researched(fake)
    again = everything[len(paid_before) :]
    assert len(paid_before) == 1 and not set(again) & paid_before  # nothing A was paid for is asked again
    assert sorted(everything) == sorted(set(everything))  # every sub-question was researched, and paid, once
    assert len(everything) == len(PLAN["sub_questions"]) and fake.billed[: len(billed_before)] == billed_before


def test_e2e_a_cancel_from_the_other_server_stops_the_run_where_it_runs(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake = fake_openrouter
    fake.structured_answers["research_plan"] = PLAN
    with server(tmp_path, fake, "a") as a, server(tmp_path, fake, "b") as b:
        a.initialize()
        b.initialize()
        fake.release.clear()
        started = structured(
            a.call("deep_research", {"question": "How do honeybees live?", "depth": 1, "background": True})
        )
        sent = time.monotonic()
        cancelled = structured(b.call("cancel_research", {"research_id": started["research_id"]}))
        waited = time.monotonic() - sent
        fake.release.set()
        assert cancelled["status"] == "cancelled" and cancelled["report"]
        assert waited < 10  # the holder noticed the stored cancel (it looks twice a second)
        polled = structured(a.call("get_research", {"research_id": started["research_id"]}))
        assert polled["status"] == "cancelled"


def test_e2e_twenty_concurrent_resumes_start_one(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake = fake_openrouter
    fake.structured_answers["research_plan"] = PLAN
    with server(tmp_path, fake, "a") as a:
        a.initialize()
        fake.release.clear()
        begun = structured(
            a.call("deep_research", {"question": "How do honeybees live?", "depth": 1, "background": True})
        )
        stopped = structured(a.call("cancel_research", {"research_id": begun["research_id"]}))  # resumable
        assert stopped["status"] == "cancelled"  # the one that starts stays running while the others ask
        ids = [a.start_call("deep_research", {"resume": stopped["research_id"], "background": True}) for _ in range(20)]
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < 20:
            message = a.read(30)
            if message.get("id") in ids:
                answers[message["id"]] = message["result"]
        fake.release.set()
    started = [r for r in answers.values() if not r.get("isError")]
    refused = [r for r in answers.values() if r.get("isError")]
    assert len(started) == 1 and len(refused) == 19
    assert all("already running" in r["content"][0]["text"] for r in refused)


def test_e2e_twenty_concurrent_resumes_split_across_two_servers_start_one(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake = fake_openrouter
    fake.structured_answers["research_plan"] = PLAN
    fake.structured_answers["research_gaps"] = {"gaps": [], "follow_up_questions": []}
    with server(tmp_path, fake, "a") as a, server(tmp_path, fake, "b") as b:
        a.initialize()
        b.initialize()
        fake.release.clear()  # the one that starts stays running while the others ask
        begun = structured(
            a.call("deep_research", {"question": "How do honeybees live?", "depth": 1, "background": True})
        )
        research_id = begun["research_id"]
        assert structured(b.call("cancel_research", {"research_id": research_id}))["status"] == "cancelled"
        resume = {"resume": research_id, "background": True}
        sent: dict[RawServer, list[int]] = {a: [], b: []}
        for i in range(20):  # ten to each, interleaved: the two processes race for one lease in one database
            one = (a, b)[i % 2]
            sent[one].append(one.start_call("deep_research", resume))
        answers: dict[RawServer, list[dict[str, Any]]] = {a: [], b: []}
        for one, ids in sent.items():
            waiting = set(ids)
            while waiting:
                message = one.read(30)
                if message.get("id") in waiting:
                    waiting.discard(message["id"])
                    answers[one].append(message["result"])
        [winner] = [one for one, results in answers.items() if any(not r.get("isError") for r in results)]
        loser = b if winner is a else a
        assert sum(not r.get("isError") for r in answers[winner]) == 1  # exactly one of the twenty started
        assert winner.proc is not None
        refused = {
            one: [r["content"][0]["text"] for r in results if r.get("isError")] for one, results in answers.items()
        }
        assert len(refused[winner]) == 9 and len(refused[loser]) == 10
        assert all(f"{research_id} is already running in this server" in text for text in refused[winner])
        there = f"{research_id} is already running in another process (pid {winner.proc.pid} on host "
        assert all(there in text for text in refused[loser]), refused[loser]
        fake.release.set()
        done = wait_until(
            lambda: (
                (d := structured(loser.call("get_research", {"research_id": research_id})))["status"] == "done" and d
            ),
            timeout=60,
            what="the one resumed run ending",
        )
    assert done["report"]
    everything = researched(fake)  # one engine ran it: every sub-question researched, and paid for, once
    assert sorted(everything) == sorted(set(everything)) and len(everything) == len(PLAN["sub_questions"]), everything


def test_e2e_a_killed_servers_benchmark_is_interrupted_then_cancellable_or_resumable(
    fake_openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    fake = fake_openrouter
    args = {"prompts": ["Is 17 prime?", "Name a prime."], "models": ["openai/gpt-4o-mini", "openai/gpt-4o"]}
    with server(tmp_path, fake, "a") as a, server(tmp_path, fake, "b") as b:
        a.initialize()
        b.initialize()
        fake.pass_only(1)  # one call answered, the rest held when the server dies
        started = structured(a.call("benchmark_models", {**args, "background": True}))
        wait_until(  # as another process reads it: saved
            lambda: structured(b.call("get_benchmark", {"benchmark_id": started["benchmark_id"]}))["calls"] >= 1,
            what="a first benchmark call, saved",
        )
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
    fake.release.set()
    bench_id = started["benchmark_id"]
    with server(tmp_path, fake, "c") as c:  # the server started again (or another host's)
        c.initialize()
        stopped = wait_until(
            lambda: (
                (d := structured(c.call("get_benchmark", {"benchmark_id": bench_id})))["status"] == "interrupted" and d
            ),
            timeout=30,
            what="the benchmark of the killed server reading as interrupted",
        )
        assert stopped["calls"] == 1  # the call made before the kill is kept
        fake.clear()
        resumed = structured(c.call("benchmark_models", {"resume": bench_id}))
        assert resumed["status"] == "done" and resumed["calls"] == 4
        assert fake.count("/chat/completions") == 3  # only the missing calls were made
        again = structured(c.call("cancel_benchmark", {"benchmark_id": bench_id}))
        assert again["status"] == "done"  # a finished benchmark is returned as it is


def test_e2e_cancel_benchmark_after_its_server_died(fake_openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    fake = fake_openrouter
    with server(tmp_path, fake, "a") as a:
        a.initialize()
        fake.release.clear()
        started = structured(
            a.call(
                "benchmark_models",
                {"prompts": ["Is 17 prime?"], "models": ["openai/gpt-4o-mini", "openai/gpt-4o"], "background": True},
            )
        )
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
    fake.release.set()
    with server(tmp_path, fake, "c") as c:
        c.initialize()
        wait_until(
            lambda: (
                structured(c.call("get_benchmark", {"benchmark_id": started["benchmark_id"]}))["status"]
                == "interrupted"
            ),
            timeout=30,
            what="the lease expiring",
        )
        cancelled = structured(c.call("cancel_benchmark", {"benchmark_id": started["benchmark_id"]}))
        assert cancelled["status"] == "cancelled"
        again = structured(c.call("get_benchmark", {"benchmark_id": started["benchmark_id"]}))
        assert again["status"] == "cancelled"
