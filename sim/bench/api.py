"""Benchmark ``api``: REST latency at a fixed request rate and WebSocket fan-out latency.

Three processes on loopback: the **server** (the real FastAPI app over a seeded SQLite store,
uvicorn, one worker — what ``mevblade serve`` runs), a separate **load process** and the
benchmark driver. Both loads are bounded in count and time and stop by themselves.

* REST: ``GET /api/v1/mev/opportunities`` (50 per page, 10,000 rows in the store, bearer JWT)
  sent **open-loop** at a fixed rate (default 1,000 rps for 30 s) over 64 keep-alive
  connections; latency is measured from each request's *scheduled* send time (so a stalled
  server cannot hide behind a slowed-down client: no coordinated omission) and also from the
  actual send. p50/p95/p99/max, achieved rate, errors.
* WebSocket: N clients (default 1,000) subscribe to ``opportunities``; the server publishes
  30 events 0.5 s apart (one fan-out at a time, so this is fan-out latency, not a saturation
  test) through the same :class:`Hub` the pipeline uses; each client
  records ``receive time − publish time`` (same host clock). p50/p95/p99/max over every
  (event, client) pair, plus drops; and the server side alone: how long ``Hub.publish`` takes to
  hand one event to all N sockets (``server_fanout``).

``quick=true`` is a smoke run (200 rps × 3 s, 100 WS clients × 10 events). The 1-minute load
average before and after is recorded: on a shared 2-core machine it explains most of the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mevblade.sim.bench import benchmark
from mevblade.sim.redis_server import RedisServer

__all__ = ["bench_api"]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(_pct(ms, 50), 3), "p95_ms": round(_pct(ms, 95), 3),
            "p99_ms": round(_pct(ms, 99), 3), "max_ms": round(max(ms), 3) if ms else float("nan"),
            "samples": len(ms)}


# ----------------------------------------------------------------------------------------------- server


def _server_main(args: argparse.Namespace) -> None:
    import uvicorn

    from mevblade.control.api import build_context, create_app
    from mevblade.control.config import load_settings
    from mevblade.control.storage import open_store
    from mevblade.control.storage.models import utcnow

    db = Path(args.dir) / "bench.db"
    settings = load_settings(database_url=f"sqlite:///{db}", jwt_secret="bench-only-secret",
                             redis_url=args.redis_url, rate_limit_requests=10**9, ws_queue_size=1024,
                             ws_max_drops=10**6, password_hash_time_cost=1, password_hash_memory_kib=1024,
                             log_level="WARNING")
    store = open_store(settings.database_url)
    if not store.list_opportunities(limit=1).items:
        import datetime as dt

        now = utcnow()
        with store.engine.begin() as conn:
            from mevblade.control.storage.models import Opportunity

            rows = [dict(id=f"bench{i:06d}", chain="ethereum" if i % 3 else "arbitrum",
                         strategy="backrun_arb", type="backrun", victim_tx_hash="0x" + f"{i:064x}",
                         pools=["0x" + "33" * 20], tokens=["0x" + "11" * 20, "0x" + "22" * 20],
                         direction="0->1", amount_in=10**18, profit_estimate=10**16 + i, gas_cost=10**15,
                         net_profit=9 * 10**15 + i, net_profit_eth=(9 * 10**15 + i) / 1e18, confidence=0.9,
                         flagged=False, expires_at=now + dt.timedelta(minutes=5),
                         created_at=now - dt.timedelta(seconds=i), status="detected",
                         details={}) for i in range(args.rows)]
            conn.execute(Opportunity.__table__.insert(), rows)
    ctx = build_context(settings, store=store)
    if store.get_user_by_name("bench") is None:
        ctx.auth.create_user("bench", "bench-password", "viewer")
    token = ctx.auth.login("bench", "bench-password").access_token
    app = create_app(ctx, analytics_interval=None, fast_path=not args.no_fast_path)

    publish_ms: list[float] = []
    publish_cpu_us: list[float] = []
    direct: list[int] = []

    async def publisher() -> None:
        # publishes events at a fixed interval once the driver says every client is subscribed
        direct.append(ctx.hub.stats()["direct"])
        for i in range(args.ws_events):
            t, c = time.perf_counter(), time.process_time()
            ctx.hub.publish("opportunities", {"id": f"ev{i}", "chain": "ethereum", "strategy": "backrun_arb",
                                              "tokens": [], "profit_estimate": "0.01", "confidence": 0.9,
                                              "expires_in": 60}, chain="ethereum")
            publish_cpu_us.append((time.process_time() - c) * 1e6)
            publish_ms.append((time.perf_counter() - t) * 1e3)
            await asyncio.sleep(args.ws_interval)

    async def main() -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                access_log=False, backlog=4096,
                                ws_per_message_deflate=settings.ws_compression)
        server = uvicorn.Server(config)
        cluster = sockets = None
        if args.workers > 1:  # what `mevblade serve --workers N` runs: replicas on the same port
            from mevblade.control.api.workers import Cluster, reuseport_socket

            sock = reuseport_socket("127.0.0.1", 0)
            sockets = [sock]
            cluster = Cluster(settings, args.workers, "127.0.0.1", loop=args.loop)
            await cluster.start(ctx, app, sock.getsockname()[1])
        task = asyncio.create_task(server.serve(sockets=sockets))
        while not server.started:
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        from mevblade.control.cli.serve import freeze_heap

        freeze_heap()  # as `serve` does
        print(json.dumps({"port": port, "token": token}), flush=True)
        # stdin: "publish" starts the WS events; end of input (the driver closed it) stops the server
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        pub = None
        deadline = loop.time() + args.max_seconds
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=max(0.1, deadline - loop.time()))
            except TimeoutError:
                break
            if not line:
                break
            if line.strip() == b"publish" and pub is None:
                pub = asyncio.create_task(publisher())
        if pub is not None:
            pub.cancel()
        server.should_exit = True
        await task
        if cluster is not None:
            await cluster.stop()
        print(json.dumps({"publish": _summary(publish_ms),
                          "publish_cpu_us": {k.replace("_ms", "_us"): v
                                             for k, v in _summary(publish_cpu_us).items()},
                          "direct": direct[0] if direct else 0}), flush=True)

    from mevblade.control.cli.serve import run_loop

    run_loop(main(), args.loop)  # the event loop `mevblade serve` runs on


# -------------------------------------------------------------------------------------------- REST load


def _rest_main(args: argparse.Namespace) -> None:
    import aiohttp

    url = f"http://127.0.0.1:{args.port}/api/v1/mev/opportunities?limit=50"
    headers = {"Authorization": f"Bearer {args.token}"}
    n = int(args.rate * args.duration)
    sched_ms: list[float] = []
    service_ms: list[float] = []
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession, t_sched: float) -> None:
        t_send = time.perf_counter()
        try:
            async with session.get(url, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors[str(r.status)] = errors.get(str(r.status), 0) + 1
                    return
        except Exception as exc:  # noqa: BLE001 - counted, not fatal
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        t_done = time.perf_counter()
        sched_ms.append((t_done - t_sched) * 1e3)
        service_ms.append((t_done - t_send) * 1e3)

    async def main() -> None:
        conn = aiohttp.TCPConnector(limit=args.connections, force_close=False)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            # warm-up: open the connections and fill the server's cache
            await asyncio.gather(*(one(session, time.perf_counter()) for _ in range(args.connections)))
            sched_ms.clear()
            service_ms.clear()
            errors.clear()
            t0 = time.perf_counter() + 0.05
            tasks = []
            for i in range(n):
                t_sched = t0 + i / args.rate
                delay = t_sched - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(session, t_sched)))
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - t0
        print(json.dumps({"requests": n, "elapsed_s": round(elapsed, 3),
                          "achieved_rps": round(n / elapsed, 1), "errors": errors,
                          "from_schedule": _summary(sched_ms), "service": _summary(service_ms)}),
              flush=True)

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- WS load


def _ws_main(args: argparse.Namespace) -> None:
    import websockets

    url = f"ws://127.0.0.1:{args.port}/ws"
    lat_ms: list[float] = []
    received = [0]
    closed: dict[str, int] = {}

    async def client(i: int, ready: asyncio.Event, counter: list[int]) -> None:
        try:
            async with websockets.connect(url, max_queue=None, open_timeout=60, ping_interval=None) as ws:
                await ws.send(json.dumps({"type": "subscribe", "channels": ["opportunities"],
                                          "auth_token": f"Bearer {args.token}"}))
                await ws.recv()  # subscribed
                counter[0] += 1
                if counter[0] == args.clients:
                    ready.set()
                    print(f"READY {counter[0]}", file=sys.stderr, flush=True)
                got = 0
                while got < args.events:
                    msg = await asyncio.wait_for(ws.recv(), timeout=args.max_seconds)
                    now = time.time()
                    ev = json.loads(msg)
                    if ev.get("type") == "opportunity":
                        lat_ms.append((now - ev["ts"]) * 1e3)
                        got += 1
                received[0] += got
        except Exception as exc:  # noqa: BLE001 - counted
            closed[type(exc).__name__] = closed.get(type(exc).__name__, 0) + 1

    async def main() -> None:
        ready = asyncio.Event()
        counter = [0]
        tasks = []
        for i in range(args.clients):
            tasks.append(asyncio.create_task(client(i, ready, counter)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # do not flood the accept queue
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.max_seconds)
        expected = args.clients * args.events
        print(json.dumps({"clients": args.clients, "events": args.events, "expected": expected,
                          "received": received[0], "lost": expected - received[0], "errors": closed,
                          "latency": _summary(lat_ms)}), flush=True)

    asyncio.run(main())


# ------------------------------------------------------------------------------------------------ driver


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc): contention-independent cost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _cpu_tree_s(pid: int) -> float:
    """CPU seconds of a server process and its children (the API replicas of ``--workers N``)."""
    return _cpu_s(pid) + sum(_cpu_s(c) for c in _children(pid))


def _spawn(role: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mevblade.sim.bench.api", role, *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float) -> None:
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Redis(RedisServer):
    """A private redis-server on a free loopback port (rate limits in Redis, as with ``REDIS_URL``)."""

    def cpu_s(self) -> float:
        return _cpu_s(self.proc.pid)


def _server_info(server: subprocess.Popen) -> dict[str, Any]:
    info = json.loads(server.stdout.readline() or "{}")
    if "port" not in info:
        raise RuntimeError(f"bench server did not start: {server.stderr.read()[-800:]}")
    return info


def _rest_load(client: str, exe: Path | None, info: dict[str, Any], rate: float, duration: float,
               connections: int) -> dict[str, Any]:
    """One open-loop run: C load generator, or the aiohttp client (``client="python"``)."""
    if client == "c":
        from mevblade.sim.bench.loadgen import rest_command

        assert exe is not None
        cmd = rest_command(exe, info["port"], info["token"], rate=rate, duration=duration,
                           connections=connections)
    else:
        cmd = [sys.executable, "-m", "mevblade.sim.bench.api", "rest", "--port", str(info["port"]), "--token",
               info["token"], "--rate", str(rate), "--duration", str(duration), "--connections",
               str(connections)]
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 3 + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if load.returncode != 0:
        raise RuntimeError(f"REST load failed: {load.stderr[-500:]}")
    out = json.loads(load.stdout.strip().splitlines()[-1])
    # the load generator's own CPU (user + system), to show it is not the bottleneck
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out["client_cpu_ms_per_request"] = round(
        client_cpu * 1e3 / max(1, out.get("sent", out.get("requests", 1))), 4)
    if client != "c":  # same keys as the C client
        out["answered_200"] = out["from_schedule"]["samples"] + connections  # + the warm-up requests
        out["requests"] += connections
    return out


@benchmark("api", "REST GET opportunities p50/p95/p99 at a fixed rate; WebSocket fan-out p99 to N clients")
def bench_api(quick: bool = False, rate: float | None = None, duration: float | None = None,
              ws_clients: int | None = None, ws_events: int | None = None, rows: int = 10_000,
              connections: int = 64, sweep: list[float] | None = None, loop: str = "auto", workers: int = 1,
              client: str = "c", rest: bool = True, ws: bool = True,
              use_redis: bool = False) -> dict[str, Any]:
    """``workers``: API processes on the port (``serve --workers N``: rate limits in the shared memory-mapped
    table); ``use_redis``: start a private redis-server and keep the rate limits there (``REDIS_URL``);
    ``client``: ``c`` (epoll load generator compiled here, default) or ``python`` (aiohttp / websockets)."""
    rate = rate or (200.0 if quick else 1000.0)
    duration = duration or (3.0 if quick else 30.0)
    ws_clients = ws_clients if ws_clients is not None else (100 if quick else 1000)
    ws_events = ws_events or (10 if quick else 30)
    sweep = list(sweep) if sweep is not None else ([50.0] if quick else [100.0, 250.0, 500.0])
    sweep_duration = 2.0 if quick else 10.0
    ws_interval = 0.2 if quick else 0.5
    if rate * duration > 200_000 or ws_clients > 5000:
        raise ValueError("rate*duration must be <= 200000 requests and ws_clients <= 5000 (bounded load)")
    if client not in ("c", "python"):
        raise ValueError(f"client must be 'c' or 'python', not {client!r}")
    if not isinstance(workers, int) or not 1 <= workers <= 16:
        raise ValueError(f"workers must be an integer from 1 to 16, not {workers!r}")
    exe = None
    fallback = None
    if client == "c":
        from mevblade.sim.bench.loadgen import LoadgenUnavailable, build

        try:
            exe = build()
        # no C compiler: the Python clients (they saturate near 700 rps here)
        except LoadgenUnavailable as exc:
            client, fallback = "python", str(exc)
    result: dict[str, Any] = {"config": {"rate_rps": rate, "duration_s": duration, "rows": rows,
                                         "connections": connections, "ws_clients": ws_clients,
                                         "ws_events": ws_events, "ws_interval_s": ws_interval, "quick": quick,
                                         "loop": loop, "workers": workers, "client": client,
                                         "rate_limits": "redis" if use_redis else
                                         ("shared_file" if workers > 1 else "in_process")},
              "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    if fallback:
        result["client_fallback"] = fallback
    with tempfile.TemporaryDirectory(prefix="mevblade-bench-api-") as tmp:
        redis = _Redis(tmp) if use_redis else None
        common = ["--dir", tmp, "--rows", str(rows), "--loop", loop, "--workers", str(workers)]
        if redis is not None:
            common += ["--redis-url", redis.url]
        try:
            if rest:
                # REST: a short sweep of lower rates (the capacity curve), then the target rate
                server = _spawn("server", *common, "--ws-clients", "0", "--max-seconds",
                                str(int(duration * 3 + 120 + sum(10 * 3 for _ in sweep))))
                try:
                    info = _server_info(server)

                    def run_rate(r: float, d: float) -> dict[str, Any]:
                        cpu0 = _cpu_tree_s(server.pid)
                        rcpu0 = redis.cpu_s() if redis else 0.0
                        out = _rest_load(client, exe, info, r, d, connections)
                        answered = max(1, out["answered_200"])
                        out["server_cpu_ms_per_request"] = round(
                            (_cpu_tree_s(server.pid) - cpu0) * 1e3 / answered, 3)
                        if redis is not None:
                            out["redis_cpu_ms_per_request"] = round(
                                (redis.cpu_s() - rcpu0) * 1e3 / answered, 3)
                        return out

                    result["rest_sweep"] = {}
                    for r in sweep:
                        one = run_rate(r, sweep_duration)
                        result["rest_sweep"][f"{r:g}_rps"] = {
                            "achieved_rps": one["achieved_rps"], "errors": sum(one["errors"].values()),
                            "server_cpu_ms_per_request": one["server_cpu_ms_per_request"],
                            **{k: one["from_schedule"][k] for k in ("p50_ms", "p95_ms", "p99_ms")}}
                    result["rest"] = run_rate(rate, duration)
                finally:
                    _finish(server, 60)
            if ws:
                result["ws"] = _ws_phase(client, exe, common, ws_clients, ws_events, ws_interval)
                if exe is not None:
                    from mevblade.sim.bench.loadgen import send_floor

                    # the kernel's part alone: one ~200-byte send to each of ws_clients sockets (C, no Python)
                    result["ws"]["kernel_send_floor"] = send_floor(exe, ws_clients, 30, 200)
        finally:
            if redis is not None:
                redis.close()
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    targets: dict[str, Any] = {"rest_p99_ms": 20.0, "ws_p99_ms": 5.0}
    if "rest" in result:  # met = p99 within the target with every request answered at the offered rate
        r = result["rest"]
        targets["rest_met"] = bool(r["answered_200"] == r["requests"]
                                   and r["from_schedule"]["p99_ms"] is not None
                                   and r["from_schedule"]["p99_ms"] <= targets["rest_p99_ms"])
    if "ws" in result:
        w = result["ws"]
        targets["ws_met"] = bool(w["lost"] == 0 and w["latency"]["p99_ms"] is not None
                                 and w["latency"]["p99_ms"] <= targets["ws_p99_ms"])
    result["targets"] = targets
    return result


def _ws_phase(client: str, exe: Path | None, common: list[str], clients: int, events: int,
              interval: float) -> dict[str, Any]:
    """Fresh server; the receiver subscribes every client, says READY, then the server publishes the
    events."""
    limit = int(events * interval + 240)
    server = _spawn("server", *common, "--ws-clients", str(clients), "--ws-events", str(events),
                    "--ws-interval", str(interval), "--max-seconds", str(limit))
    try:
        info = _server_info(server)
        if client == "c":
            from mevblade.sim.bench.loadgen import ws_command

            assert exe is not None
            cmd = ws_command(exe, info["port"], info["token"], clients=clients, events=events, timeout=limit)
        else:
            cmd = [sys.executable, "-m", "mevblade.sim.bench.api", "ws", "--port", str(info["port"]),
                   "--token", info["token"], "--clients", str(clients), "--events", str(events),
                   "--max-seconds", str(limit)]
        cpu0 = _cpu_tree_s(server.pid)
        recv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            said = ""
            for line in recv.stderr:  # type: ignore[union-attr]
                if line.startswith("READY"):
                    said = line
                    break
            if not said:
                raise RuntimeError("WS receiver ended before every client subscribed")
            cpu_sub = _cpu_tree_s(server.pid)
            server.stdin.write("publish\n")  # type: ignore[union-attr]
            server.stdin.flush()  # type: ignore[union-attr]
            out, err = recv.communicate(timeout=limit + 30)
        finally:
            if recv.poll() is None:
                recv.kill()
                recv.wait()
        if recv.returncode != 0:
            raise RuntimeError(f"WS load failed: {err[-500:]}")
        res = json.loads(out.strip().splitlines()[-1])
        delivered = max(1, res["received"])
        cpu_end = _cpu_tree_s(server.pid)
        # server CPU (all workers) for the fan-out phase only, per delivered message; and for
        # connect+subscribe
        res["server_cpu_us_per_message"] = round((cpu_end - cpu_sub) * 1e6 / delivered, 1)
        res["server_cpu_ms_per_subscribe"] = round(
            (cpu_sub - cpu0) * 1e3 / max(1, res.get("subscribed", clients)), 3)
    finally:
        _finish(server, 60)
    try:
        tail = json.loads((server.stdout.read() or "").strip().splitlines()[-1])
        # the primary's Hub.publish: its own subscribers' socket writes + one line per replica
        res["server_fanout"] = tail["publish"]
        res["server_publish_cpu"] = tail["publish_cpu_us"]
        res["direct_writers_primary"] = tail["direct"]
    except (ValueError, IndexError, KeyError, OSError):
        pass
    return res


@benchmark("api_ab", "REST server CPU/request and latency, alternating rounds: FastAPI path vs fast path vs "
           "fast path on uvloop (same load, same machine state)", default=False)
def bench_api_ab(rate: float = 150.0, duration: float = 5.0, rounds: int = 4, rows: int = 10_000,
                 connections: int = 16,
                 configs: str = "fastapi_asyncio,fastpath_asyncio,fastpath_uvloop") -> dict[str, Any]:
    """Each round runs the same open-loop load against each configuration in turn, so slow phases of a shared
    machine hit every configuration alike; server CPU per request (from /proc) is the robust figure."""
    if rate * duration * rounds * 3 > 60_000:
        raise ValueError("rate*duration*rounds*3 must be <= 60000 requests (bounded load)")
    known = {"fastapi_asyncio": ["--loop", "asyncio", "--no-fast-path"],
             "fastapi_uvloop": ["--loop", "uvloop", "--no-fast-path"],
             "fastpath_asyncio": ["--loop", "asyncio"],
             "fastpath_uvloop": ["--loop", "uvloop"]}
    names = [c.strip() for c in (configs.split(",") if isinstance(configs, str) else configs) if c.strip()]
    bad = [n for n in names if n not in known]
    if bad or len(names) < 2:
        raise ValueError(f"configs must name at least two of {sorted(known)}, not {names!r}")
    configs = {n: known[n] for n in names}  # type: ignore[assignment]
    out: dict[str, Any] = {"config": {"rate_rps": rate, "duration_s": duration, "rounds": rounds,
                                      "rows": rows, "connections": connections},
                           "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="mevblade-bench-api-ab-") as tmp:
        servers: dict[str, tuple[subprocess.Popen, dict[str, Any]]] = {}
        try:
            for name, extra in configs.items():  # one after the other: the first seeds the database
                proc = _spawn("server", "--dir", tmp, "--rows", str(rows), "--ws-clients", "0",
                              "--max-seconds", str(int(rounds * len(configs) * (duration + 10) + 120)),
                              *extra)
                info = json.loads(proc.stdout.readline() or "{}")
                if "port" not in info:
                    raise RuntimeError(f"bench server {name} did not start: {proc.stderr.read()[-500:]}")
                servers[name] = (proc, info)
            per: dict[str, dict[str, list[float]]] = {
                n: {"cpu_ms": [], "p50_ms": [], "p99_ms": [], "errors": []} for n in configs}
            for _ in range(rounds):
                for name, (proc, info) in servers.items():
                    cpu0 = _cpu_s(proc.pid)
                    load = subprocess.run([sys.executable, "-m", "mevblade.sim.bench.api", "rest", "--port",
                                           str(info["port"]), "--token", info["token"], "--rate", str(rate),
                                           "--duration", str(duration), "--connections", str(connections)],
                                          capture_output=True, text=True, timeout=duration * 3 + 120)
                    if load.returncode != 0:
                        raise RuntimeError(f"REST load failed: {load.stderr[-500:]}")
                    r = json.loads(load.stdout.strip().splitlines()[-1])
                    answered = r["from_schedule"]["samples"] + connections
                    per[name]["cpu_ms"].append(round((_cpu_s(proc.pid) - cpu0) * 1e3 / max(1, answered), 3))
                    per[name]["p50_ms"].append(r["from_schedule"]["p50_ms"])
                    per[name]["p99_ms"].append(r["from_schedule"]["p99_ms"])
                    per[name]["errors"].append(sum(r["errors"].values()))
        finally:
            for proc, _ in servers.values():
                _finish(proc, 30)
    import statistics

    out["results"] = {n: {**v, "median_cpu_ms_per_request": statistics.median(v["cpu_ms"]),
                          "median_p50_ms": statistics.median(v["p50_ms"]),
                          "median_p99_ms": statistics.median(v["p99_ms"])} for n, v in per.items()}
    first = names[0]
    base = out["results"][first]["median_cpu_ms_per_request"]
    out[f"cpu_ratio_vs_{first}"] = {n: round(base / v["median_cpu_ms_per_request"], 2)
                                    for n, v in out["results"].items() if v["median_cpu_ms_per_request"]}
    out["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return out


def _main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m mevblade.sim.bench.api")
    sub = ap.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("--dir", required=True)
    s.add_argument("--rows", type=int, default=10_000)
    s.add_argument("--ws-clients", type=int, default=0)
    s.add_argument("--ws-events", type=int, default=100)
    s.add_argument("--ws-interval", type=float, default=0.05)
    s.add_argument("--max-seconds", type=float, default=300)
    s.add_argument("--loop", default="auto", choices=["auto", "uvloop", "asyncio"])
    s.add_argument("--no-fast-path", action="store_true")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--redis-url", default=None)
    r = sub.add_parser("rest")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--token", required=True)
    r.add_argument("--rate", type=float, default=1000)
    r.add_argument("--duration", type=float, default=30)
    r.add_argument("--connections", type=int, default=64)
    w = sub.add_parser("ws")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--token", required=True)
    w.add_argument("--clients", type=int, default=1000)
    w.add_argument("--events", type=int, default=100)
    w.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    {"server": _server_main, "rest": _rest_main, "ws": _ws_main}[args.role](args)


if __name__ == "__main__":
    _main()
