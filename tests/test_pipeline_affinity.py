"""CPU isolation (``control/pipeline/affinity.py``) and the demo loop with isolation + cache warm-up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from mevblade.control.pipeline.affinity import (
    AffinityError,
    available_cpus,
    parse_cpus,
    pin,
    split_for_appliance,
)

linux = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")


@pytest.mark.parametrize("spec,want", [("0", {0}), (" 0 ", {0}), ("0-0", {0}), ("0,0", {0})])
def test_parse_cpus(spec, want):
    assert parse_cpus(spec) == want


@pytest.mark.parametrize("spec,msg", [("", "list like"), ("a", "list like"), ("1-0", "ascending"),
                                      ("-1", "list like"), ("4096", "available CPUs")])
def test_parse_cpus_refuses(spec, msg):
    with pytest.raises(AffinityError, match=msg):
        parse_cpus(spec)


def test_parse_cpus_takes_every_available_range():
    cpus = sorted(available_cpus())
    assert parse_cpus(f"{cpus[0]}-{cpus[-1]}") >= set(cpus) & set(range(cpus[0], cpus[-1] + 1))


@linux
def test_pin_reaches_every_thread_of_a_process():
    code = ("import threading, time, sys\n"
            "ev = threading.Event()\n"
            "ts = [threading.Thread(target=ev.wait) for _ in range(3)]\n"
            "[t.start() for t in ts]\n"
            "print('up', flush=True)\n"
            "sys.stdin.read()\n"
            "ev.set()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"up"
        one = {min(available_cpus())}
        n = pin(child.pid, one)
        tids = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        assert n == len(tids) == 4
        assert all(os.sched_getaffinity(t) == one for t in tids)
    finally:
        child.stdin.close()
        child.wait(10)


def test_pin_refuses_an_empty_set():
    with pytest.raises(AffinityError, match="at least one CPU"):
        pin(0, set())


def test_split_needs_a_spare_cpu():
    cpus = available_cpus()
    if len(cpus) < 2:
        with pytest.raises(AffinityError, match="at least 2 CPUs"):
            split_for_appliance()
    else:
        app, dev = split_for_appliance()
        assert app and dev and not app & dev and app | dev == cpus
    with pytest.raises(AffinityError):
        split_for_appliance(len(cpus))


def test_serve_refuses_bad_cpus():
    from typer.testing import CliRunner

    from mevblade.control.cli import app

    r = CliRunner().invoke(app, ["serve", "--cpus", "9999"])
    assert r.exit_code == 2 and "--cpus" in r.output and "available CPUs" in r.output


@linux
@pytest.mark.devnet
@pytest.mark.slow
@pytest.mark.skipif(len(available_cpus()) < 2, reason="isolation needs 2 CPUs")
def test_demo_loop_isolated_and_warm_gives_the_same_run():
    """Same seed, same run: isolation (appliance on one CPU, anvil + relays on the other) and the cache
    warm-up change where and when work runs, never what is decided, signed, submitted or realized."""
    from mevblade.sim.devnet.loop import LoopConfig, run_loop

    before = os.sched_getaffinity(0)
    plain = asyncio.run(run_loop(LoopConfig(blocks=3, seed=5)))
    tuned = asyncio.run(run_loop(LoopConfig(blocks=3, seed=5, isolate=True, warm_path_s=0.0005)))
    assert os.sched_getaffinity(0) == before  # given back
    keys = ("pending_seen", "swaps_decoded", "opportunities", "bundles_submitted", "bundles_included",
            "bundles_reverted_included", "duplicate_submissions", "realized_profit_wei",
            "expected_profit_wei")
    assert {k: tuned[k] for k in keys} == {k: plain[k] for k in keys}
    assert plain["bundles_included"] >= 1 and tuned["isolate"] and tuned["warm_steps"] > 0
