"""The measurements of issue 8, one function per section. Each returns plain data (JSON-able) for the report.

Every comparison is run side by side in the same run: in each round every side is measured once, in an order
that rotates from round to round, and ratios are taken per round (paired) as well as of the medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import profile, servers, stack, wrk
from .stack import BIN, Daemon, StsProxy
from .stats import median, paired_ratios, ratio, rotations, summary

ENVIRONMENT = "production"
LOADS = (wrk.Load(1), wrk.Load(64), wrk.Load(256), wrk.Load(16, keepalive=False))


@dataclass(frozen=True)
class Plan:
    """How long and how often: the full run, or a quick one for development."""

    quick: bool
    wrk_seconds: float
    rounds: int
    aws_runs: int
    cli_runs: int
    importtime_runs: int
    cold_starts: int
    idle_seconds: float
    million: int
    million_cap_seconds: float
    sts_seconds: float
    profile_seconds: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        # Many short alternating rounds beat a few long ones on a shared machine: a burst of someone else's work
        # then spoils one short run of each side rather than one long run of one side.
        if quick:
            return cls(True, 1, 2, 4, 5, 2, 2, 10, 60_000, 60, 10, 3)
        return cls(False, 3, 8, 60, 30, 5, 10, 60, 1_000_000, 900, 30, 8)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    from tests.support.world import free_port as free

    return free()


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command to completion: (wall ms, CPU ms of it and its descendants, user + system). CPU time is far
    less disturbed by other work on a shared machine than wall time, so it is reported next to it."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-1000:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


# -- 1. endpoint throughput and latency --------------------------------------------------------------------------


def endpoint(plan: Plan, daemon: Daemon, body: bytes) -> dict[str, Any]:
    token = daemon.token(ENVIRONMENT)
    headers = {"Authorization": token}
    with servers.floor(free_port(), body) as floor, servers.nginx(free_port(), body, token) as nginx:
        urls = {"daemon": daemon.url(ENVIRONMENT), "floor": floor.url(ENVIRONMENT), "nginx": nginx.url(ENVIRONMENT)}
        pids = {"daemon": daemon.pid, "floor": floor.pid, "nginx": nginx.pid}
        results: dict[str, dict[str, list[dict[str, Any]]]] = {load.key: {name: [] for name in urls} for load in LOADS}
        for round_index in range(plan.rounds):
            for load in LOADS:
                for name in rotations(list(urls), round_index):
                    result = wrk.run(urls[name], load, plan.wrk_seconds, headers, pids[name])
                    results[load.key][name].append(result.as_dict())
                    log(f"endpoint round {round_index + 1}/{plan.rounds} {load.label:32} {name:7} "
                        f"{result.rps:9.0f} req/s  p50 {result.p50_us / 1000:6.2f} ms  "
                        f"p99 {result.p99_us / 1000:6.2f} ms  CPU {result.cpu_us_per_request or 0:5.1f} us/req"
                        f"  non-2xx {result.status_errors}  socket errors {result.socket_errors}")
    return {"loads": {load.key: load.label for load in LOADS}, "runs": results,
            "summary": {load.key: _compare(results[load.key], "daemon", ("floor", "nginx")) for load in LOADS}}


def _compare(runs: dict[str, list[dict[str, Any]]], subject: str, references: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, items in runs.items():
        out[name] = {
            "rps": median([item["rps"] for item in items]),
            "p50_ms": median([item["p50_us"] / 1000 for item in items]),
            "p99_ms": median([item["p99_us"] / 1000 for item in items]),
            "non_2xx": sum(item["status_errors"] for item in items),
            "socket_errors": sum(item["connect_errors"] + item["read_errors"] + item["write_errors"]
                                 + item["timeouts"] for item in items),
            "requests": sum(item["requests"] for item in items),
        }
        cpu = [item["cpu_us_per_request"] for item in items if item.get("cpu_us_per_request")]
        if cpu:
            out[name]["cpu_us_per_request"] = median(cpu)
    for reference in references:
        out[f"{subject}/{reference}"] = _ratios(runs[subject], runs[reference])
    return out


def _ratios(subject: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, Any]:
    """Subject ÷ reference, round by round: throughput, p99, and the CPU-cost view (reference µs per request ÷
    subject µs per request, so that 1.0 means "costs the same" and 0.5 "costs twice as much")."""
    pairs = paired_ratios([item["rps"] for item in subject], [item["rps"] for item in reference])
    out: dict[str, Any] = {
        "rps_ratio_of_medians": ratio(median([i["rps"] for i in subject]), median([i["rps"] for i in reference])),
        "rps_ratio_paired_median": median(pairs),
        "rps_ratio_paired": pairs,
        "p99_ratio_of_medians": ratio(median([i["p99_us"] for i in subject]), median([i["p99_us"] for i in reference])),
    }
    if all(item.get("cpu_us_per_request") for item in subject + reference):
        cpu_pairs = paired_ratios([item["cpu_us_per_request"] for item in reference],
                                  [item["cpu_us_per_request"] for item in subject])
        out["cpu_ratio_paired_median"] = median(cpu_pairs)
        out["cpu_ratio_paired"] = cpu_pairs
    return out


#: The parts of the request path the report shows (label: the function frame whose inclusive share is counted).
WATCHED = {
    "request handler (govuk_imds/daemon/web.py handle)": "handle (govuk_imds/daemon/web.py)",
    "Service.serve": "Service.serve (govuk_imds/daemon/service.py)",
    "  of which aiocache SimpleMemoryCache.get": "_enabled (aiocache/base.py)",
    "  of which the wall-clock expiry check": "still_servable (govuk_imds/core/session.py)",
    "  of which reading the clock": "SystemClock.now (govuk_imds/core/clock.py)",
    "response headers (web._json)": "_json (govuk_imds/daemon/web.py)",
    "aiohttp: writing the response (finish_response)": "RequestHandler.finish_response (aiohttp/web_protocol.py)",
    "  of which the socket write system call": "_SelectorSocketTransport.write (asyncio/selector_events.py)",
    "aiohttp: reading and parsing requests": "_SelectorSocketTransport._read_ready (asyncio/selector_events.py)",
    "aiohttp: routing (UrlDispatcher.resolve)": "UrlDispatcher.resolve (aiohttp/web_urldispatcher.py)",
}


def endpoint_profile(plan: Plan, daemon: Daemon, output: Path) -> dict[str, Any]:
    """py-spy on the daemon while wrk drives it at 64 keep-alive connections."""
    sampler = profile.start(daemon.pid, plan.profile_seconds, output)
    result = wrk.run(daemon.url(ENVIRONMENT), wrk.Load(64), plan.profile_seconds + 2,
                     {"Authorization": daemon.token(ENVIRONMENT)})
    _, err = sampler.communicate(timeout=plan.profile_seconds + 60)
    if sampler.returncode != 0 or not output.exists():
        return {"error": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
    parsed = profile.parse(output.read_text())
    watched = {label: parsed.share(marker) for label, marker in WATCHED.items()}
    return {
        "samples": parsed.samples,
        "rps_while_sampled": result.rps,
        "watched": watched,
        "top_inclusive": [item for item in parsed.top(parsed.inclusive, 40) if item[1] < 99.5][:25],
        "top_self": parsed.top(parsed.self_time, 15),
    }


def fixes(plan: Plan, daemon: Daemon, body: bytes) -> dict[str, Any]:
    """The real daemon, the floor, and the daemon's request path with each proposed fix, alternating at c=64."""
    token = daemon.token(ENVIRONMENT)
    load = wrk.Load(64)
    with contextlib.ExitStack() as stack_:
        floor = stack_.enter_context(servers.floor(free_port(), body))
        urls = {"daemon": daemon.url(ENVIRONMENT), "floor": floor.url(ENVIRONMENT)}
        pids = {"daemon": daemon.pid, "floor": floor.pid}
        if have_uvloop():
            fast_floor = stack_.enter_context(servers.floor(free_port(), body, uvloop=True))
            urls["floor+uvloop"], pids["floor+uvloop"] = fast_floor.url(ENVIRONMENT), fast_floor.pid
        from .variants import VARIANTS

        for name in VARIANTS:
            if "uvloop" in name and not have_uvloop():
                continue
            server = stack_.enter_context(servers.variant(free_port(), name, body, token))
            urls[name], pids[name] = server.url(ENVIRONMENT), server.pid
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
        for round_index in range(plan.rounds):
            for name in rotations(list(urls), round_index):
                result = wrk.run(urls[name], load, plan.wrk_seconds, {"Authorization": token}, pids[name])
                runs[name].append(result.as_dict())
                log(f"fixes round {round_index + 1}/{plan.rounds} {name:17} {result.rps:9.0f} req/s "
                    f"p99 {result.p99_us / 1000:6.2f} ms CPU {result.cpu_us_per_request or 0:5.1f} us/req "
                    f"non-2xx {result.status_errors}")
    compared = _compare(runs, "daemon", ("floor",))
    for name in [name for name in runs if name not in ("daemon", "floor")]:
        compared[f"{name}/floor"] = _ratios(runs[name], runs["floor"])
    return {"load": load.label, "runs": runs, "summary": compared}


def have_uvloop() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


# -- 2. what a user feels ------------------------------------------------------------------------------------------


def user_felt(plan: Plan, daemon: Daemon, proxy: StsProxy) -> dict[str, Any]:
    world = daemon.world
    base = {
        "PATH": world.environment["PATH"],
        "HOME": str(world.home),
        "LANG": "C.UTF-8",
        "GOVUK_IMDS_RUNTIME_DIR": world.environment["GOVUK_IMDS_RUNTIME_DIR"],
        "XDG_CONFIG_HOME": world.environment["XDG_CONFIG_HOME"],
    }
    printed = daemon.cli("env", ENVIRONMENT, "--json")
    if printed.returncode != 0:
        raise RuntimeError(printed.stderr)
    endpoint_vars = {str(k): str(v) for k, v in json.loads(printed.stdout)["set"].items()}
    credentials = daemon.credentials(ENVIRONMENT)  # once, from the daemon: the same role credentials
    static_vars = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["Token"],
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    profile_block = daemon.cli("profile", ENVIRONMENT)
    if profile_block.returncode != 0:
        raise RuntimeError(profile_block.stderr)
    lean = Path(__file__).with_name("lean_credential_process.py")
    with world.aws_config_file.open("a") as config:
        config.write("\n" + profile_block.stdout)
        config.write(f"\n[profile lean-{ENVIRONMENT}]\ncredential_process = {sys.executable} {lean} {ENVIRONMENT}\n"
                     "region = eu-west-1\n")
    profile_name = re.search(r"\[profile ([^\]]+)\]", profile_block.stdout)
    assert profile_name is not None
    paths = {
        "static environment credentials": {**base, **static_vars},
        "govuk-imds endpoint (env)": {**base, **endpoint_vars},
        "credential_process (profile)": {**base, "AWS_PROFILE": profile_name.group(1)},
        "credential_process, lean helper (reference)": {**base, "AWS_PROFILE": f"lean-{ENVIRONMENT}"},
    }
    argv = [str(BIN / "aws"), "sts", "get-caller-identity", "--endpoint-url", proxy.url, "--output", "json"]
    identities = {}
    for name, environment in paths.items():  # one untimed run each: warm caches, prove each path works
        done = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"aws via {name} failed: {done.stderr[-1000:]}")
        identities[name] = json.loads(done.stdout)["Arn"]
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for round_index in range(plan.aws_runs):
        for name in rotations(list(paths), round_index):
            wall_ms, cpu_ms = run_timed(argv, paths[name])
            times[name].append(wall_ms)
            cpu[name].append(cpu_ms)
    log("user-felt: " + ", ".join(f"{name} {median(values):.0f} ms" for name, values in times.items()))
    static = "static environment credentials"
    fetch = fetch_costs(plan, paths)
    return {
        "fetch_ms": fetch,
        "cpu_ms": cpu,
        "cpu_summary": {name: summary(values) for name, values in cpu.items()},
        "command": "aws sts get-caller-identity --endpoint-url <StsProxy> --output json",
        "same_identity": len(set(identities.values())) == 1,
        "identity": next(iter(identities.values())),
        "times_ms": times,
        "summary": {name: summary(values) for name, values in times.items()},
        "ratios": {
            name: {"ratio_of_medians": ratio(median(times[name]), median(times[static])),
                   "paired_median": median(paired_ratios(times[name], times[static])),
                   "cpu_ratio_of_medians": ratio(median(cpu[name]), median(cpu[static]))}
            for name in paths if name != static
        },
    }


def fetch_costs(plan: Plan, paths: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What finding credentials costs inside one aws run, per path, measured directly: a fresh session of the aws
    CLI's own botocore (awscli 1.x vendors one) resolves and freezes credentials through its whole provider chain,
    in this process with the path's environment (warm imports, so only the run-time cost is counted; a fresh
    session makes a fresh connection, as a new aws process does; a credential_process helper is really spawned)."""
    try:
        from awscli.botocore.session import Session
    except ImportError:  # an aws CLI that uses the shared botocore
        from botocore.session import Session

    saved = dict(os.environ)
    out: dict[str, float] = {}
    try:
        for name, environment in paths.items():
            os.environ.clear()
            os.environ.update(environment)
            times = []
            for _ in range(max(5, plan.aws_runs // 2)):
                began = time.perf_counter()
                credentials = Session().get_credentials()
                if credentials is None or not credentials.get_frozen_credentials().access_key:
                    raise RuntimeError(f"no credentials via {name}")
                times.append((time.perf_counter() - began) * 1000)
            out[name] = median(times)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    log("credential resolution: " + ", ".join(f"{name} {value:.1f} ms" for name, value in out.items()))
    return out


# -- 3. the light CLI ----------------------------------------------------------------------------------------------


def light_cli(plan: Plan, daemon: Daemon) -> dict[str, Any]:
    env = daemon.world.environment
    python = str(Path(sys.executable))
    commands = {
        "govuk-imds env production": [str(BIN / "govuk-imds"), "env", ENVIRONMENT],
        "govuk-imds status": [str(BIN / "govuk-imds"), "status"],
        "govuk-imds credential-process production": [str(BIN / "govuk-imds"), "credential-process", ENVIRONMENT],
        # What a completion script runs on every TAB that completes an environment's name.
        "govuk-imds __complete environments": [str(BIN / "govuk-imds"), "__complete", "environments"],
        "lean credential_process helper (reference)": [
            python, str(Path(__file__).with_name("lean_credential_process.py")), ENVIRONMENT],
        "python -c pass (interpreter start, same venv)": [python, "-c", "pass"],
    }
    for name, argv in commands.items():
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed: {done.stderr}")
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for round_index in range(plan.cli_runs):
        for name in rotations(list(commands), round_index):
            wall_ms, cpu_ms = run_timed(commands[name], env)
            times[name].append(wall_ms)
            cpu[name].append(cpu_ms)
    log("light CLI: " + ", ".join(f"{name} {median(values):.0f} ms" for name, values in times.items()))
    return {
        "times_ms": times,
        "summary": {name: summary(values) for name, values in times.items()},
        "cpu_summary": {name: summary(values) for name, values in cpu.items()},
        "importtime": {
            "env": importtime(plan, [python, "-X", "importtime", str(BIN / "govuk-imds"), "env", ENVIRONMENT], env),
            "status": importtime(plan, [python, "-X", "importtime", str(BIN / "govuk-imds"), "status"], env),
            "credential-process": importtime(plan, [python, "-X", "importtime", str(BIN / "govuk-imds"),
                                                    "credential-process", ENVIRONMENT], env),
        },
    }


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")
HEAVY = ("boto3", "botocore", "aiohttp", "keyring", "aiocache", "secretstorage")


def importtime(plan: Plan, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """``python -X importtime``: median over a few runs of each module's self and cumulative time."""
    runs: list[dict[str, tuple[int, int, int]]] = []
    for _ in range(plan.importtime_runs):
        done = subprocess.run(argv, env={**env, "PYTHONDONTWRITEBYTECODE": ""}, capture_output=True, text=True,
                              timeout=30, check=False)
        modules: dict[str, tuple[int, int, int]] = {}
        for line in done.stderr.splitlines():
            match = _IMPORT_LINE.match(line)
            if match:
                depth = (len(match.group(3)) - 1) // 2
                modules[match.group(4)] = (int(match.group(1)), int(match.group(2)), depth)
        runs.append(modules)
    names = set().union(*runs) if runs else set()
    table = {}
    for name in names:
        present = [run[name] for run in runs if name in run]
        table[name] = {"self_ms": median([p[0] for p in present]) / 1000,
                       "cumulative_ms": median([p[1] for p in present]) / 1000, "depth": present[0][2]}
    total = median([sum(entry[0] for entry in run.values()) / 1000 for run in runs]) if runs else 0.0
    top_level = sorted((item for item in table.items() if item[1]["depth"] == 0),
                       key=lambda item: -item[1]["cumulative_ms"])
    by_cumulative = sorted(table.items(), key=lambda item: -item[1]["cumulative_ms"])
    return {
        "total_ms": total,
        "modules": len(table),
        "top_level": [(name, data["cumulative_ms"]) for name, data in top_level[:10]],
        "top_cumulative": [(name, data["cumulative_ms"], data["self_ms"]) for name, data in by_cumulative[:15]],
        "top_self": [(name, data["self_ms"]) for name, data in sorted(table.items(),
                                                                      key=lambda item: -item[1]["self_ms"])[:10]],
        "heavy_imported": sorted(name for name in names if name.split(".")[0] in HEAVY and "." not in name),
    }


# -- 4. footprint --------------------------------------------------------------------------------------------------


def cold_start(plan: Plan, daemon: Daemon) -> dict[str, Any]:
    times = []
    for _ in range(plan.cold_starts):
        times.append(daemon.start() * 1000)
        daemon.stop()
    log(f"cold start to READY: median {median(times):.0f} ms")
    return {"times_ms": times, "summary": summary(times)}


def wakeups(pid: int, seconds: float) -> dict[str, Any]:
    """Scheduler activity of an idle process, summed over its threads (see the method in the report)."""

    def snapshot() -> dict[int, tuple[int, int, int]]:
        out = {}
        for tid in stack.threads_of(pid):
            try:
                status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
                schedstat = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
            except FileNotFoundError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            out[tid] = (int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"]),
                        int(schedstat[2]))
        return out

    before = snapshot()
    time.sleep(seconds)
    after = snapshot()
    per_minute = 60.0 / seconds
    voluntary = sum(after[t][0] - before[t][0] for t in after if t in before)
    involuntary = sum(after[t][1] - before[t][1] for t in after if t in before)
    timeslices = sum(after[t][2] - before[t][2] for t in after if t in before)
    by_thread = {str(t): (after[t][2] - before[t][2]) * per_minute for t in after if t in before}
    return {
        "seconds": seconds,
        "threads": len(after),
        "voluntary_per_min": voluntary * per_minute,
        "involuntary_per_min": involuntary * per_minute,
        "wakeups_per_min": timeslices * per_minute,
        "by_thread_per_min": by_thread,
    }


def footprint(plan: Plan, daemon: Daemon, names: list[str]) -> dict[str, Any]:
    """Idle RSS with 0, 1 and all environments unlocked, idle wake-ups, then RSS through ~1M requests."""
    out: dict[str, Any] = {"environments_configured": len(names)}
    daemon.start()
    time.sleep(2)
    out["rss_idle_0_kib"] = stack.rss_kib(daemon.pid)
    daemon.unlock(names[0])
    time.sleep(2)
    out["rss_idle_1_kib"] = stack.rss_kib(daemon.pid)
    out["wakeups_1"] = wakeups(daemon.pid, plan.idle_seconds)
    daemon.unlock(*names[1:])
    time.sleep(2)
    out["rss_idle_all_kib"] = stack.rss_kib(daemon.pid)
    out["wakeups_all"] = wakeups(daemon.pid, plan.idle_seconds)
    log(f"idle RSS: 0 unlocked {out['rss_idle_0_kib'] / 1024:.1f} MiB, 1 {out['rss_idle_1_kib'] / 1024:.1f} MiB, "
        f"{len(names)} {out['rss_idle_all_kib'] / 1024:.1f} MiB; wake-ups/min "
        f"{out['wakeups_1']['wakeups_per_min']:.0f} (1), {out['wakeups_all']['wakeups_per_min']:.0f} ({len(names)})")
    out["million"] = million(plan, daemon, names[0])
    return out


def million(plan: Plan, daemon: Daemon, name: str) -> dict[str, Any]:
    """Drive the daemon to ``plan.million`` requests: 15 s keep-alive c=64, then 5 s new connections c=16, repeated
    (SDKs open a connection per fetch, so per-connection state gets its share); RSS sampled after every chunk."""
    url, headers = daemon.url(name), {"Authorization": daemon.token(name)}
    pid = daemon.pid
    samples = [(0, stack.rss_kib(pid))]
    total = errors = 0
    began = time.monotonic()
    chunks = [(wrk.Load(64), 3 if plan.quick else 15), (wrk.Load(16, keepalive=False), 1 if plan.quick else 5)]
    index = 0
    while total < plan.million and time.monotonic() - began < plan.million_cap_seconds:
        load, seconds = chunks[index % len(chunks)]
        index += 1
        result = wrk.run(url, load, seconds, headers)
        total += result.requests
        errors += result.status_errors + result.socket_errors
        samples.append((total, stack.rss_kib(pid)))
    time.sleep(2)
    idle_after = stack.rss_kib(pid)
    warm = samples[1][1] if len(samples) > 1 else samples[0][1]
    log(f"{total} requests in {time.monotonic() - began:.0f} s: RSS {samples[0][1] / 1024:.1f} -> "
        f"{idle_after / 1024:.1f} MiB")
    return {
        "requests": total,
        "errors": errors,
        "seconds": time.monotonic() - began,
        "samples": samples,
        "rss_before_kib": samples[0][1],
        "rss_after_first_chunk_kib": warm,
        "rss_peak_kib": max(rss for _, rss in samples),
        "rss_after_idle_kib": idle_after,
        "growth_from_idle_kib": idle_after - samples[0][1],
        "growth_from_warm_kib": idle_after - warm,
    }


# -- 5. STS economy ------------------------------------------------------------------------------------------------


def _clusters(times: list[float], gap: float = 1.0) -> list[int]:
    """Sizes of groups of AssumeRole calls that arrive less than ``gap`` seconds apart: one group per rotation."""
    sizes: list[int] = []
    last = None
    for moment in sorted(times):
        if last is None or moment - last >= gap:
            sizes.append(0)
        sizes[-1] += 1
        last = moment
    return sizes


def sts_economy(plan: Plan, daemon: Daemon, proxy: StsProxy) -> dict[str, Any]:
    """1,000 keep-alive clients hammering while the proxy's short role lifetimes force a rotation every few
    seconds. Two regimes: background rotation (credentials still valid when renewal starts: the realistic one) and
    an empty cache (credentials stop being servable before the next renewal may start, as after a laptop sleep:
    the requests themselves find nothing valid and wait on the one renewal)."""
    regimes = {
        "background rotation (16 min 6 s credentials, 16 min margin: renewal every ~6 s)": 16 * 60 + 6,
        "empty cache (15 min 4 s credentials: nothing servable for ~1 s before each renewal)": 15 * 60 + 4,
    }
    url, headers = daemon.url(ENVIRONMENT), {"Authorization": daemon.token(ENVIRONMENT)}
    out: dict[str, Any] = {}
    for label, lifetime in regimes.items():
        proxy.role_lifetime = lifetime
        time.sleep(7)  # let one renewal with the new lifetime happen
        proxy.reset_calls()
        result = wrk.run(url, wrk.Load(1000), plan.sts_seconds, headers)
        calls = proxy.calls
        assume = [call.time for call in calls if call.action == "AssumeRole"]
        sizes = _clusters(assume)
        out[label] = {
            "clients": 1000,
            "seconds": plan.sts_seconds,
            "requests": result.requests,
            "rps": result.rps,
            "non_2xx": result.status_errors,
            "socket_errors": result.socket_errors,
            "p99_ms": result.p99_us / 1000,
            "max_ms": result.max_us / 1000,
            "assume_role_calls": len(assume),
            "other_sts_calls": len(calls) - len(assume),
            "rotations": len(sizes),
            "calls_per_rotation_max": max(sizes, default=0),
            "calls_per_rotation_mean": (len(assume) / len(sizes)) if sizes else 0.0,
        }
        log(f"STS economy, {label}: {len(assume)} AssumeRole in {len(sizes)} rotations, "
            f"{result.requests} requests, non-2xx {result.status_errors}")
    proxy.role_lifetime = None
    return out


# -- 6. floods -----------------------------------------------------------------------------------------------------


def floods(plan: Plan, daemon: Daemon) -> dict[str, Any]:
    url = daemon.url(ENVIRONMENT)
    good = {"Authorization": daemon.token(ENVIRONMENT)}
    bad = {"Authorization": "x" * len(good["Authorization"])}
    conditions: dict[str, wrk.Load | None] = {
        "alone": None,
        "bad-token flood, keep-alive c=64": wrk.Load(64),
        "bad-token flood, new connection per request c=16": wrk.Load(16, keepalive=False),
    }
    valid_load = wrk.Load(1)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in conditions}
    flood_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in conditions if conditions[name]}
    for round_index in range(plan.rounds):
        for name in rotations(list(conditions), round_index):
            flood_load = conditions[name]
            flood = None
            if flood_load is not None:
                flood = wrk.start(url, flood_load, plan.wrk_seconds + 2, bad)
                time.sleep(1)
            result = wrk.run(url, valid_load, plan.wrk_seconds, good)
            runs[name].append(result.as_dict())
            if flood is not None:
                flooded = wrk.finish(*flood, plan.wrk_seconds + 2)
                flood_runs[name].append(flooded.as_dict())
            log(f"floods round {round_index + 1}/{plan.rounds} {name:50} valid p99 {result.p99_us / 1000:6.2f} ms")
    summary_: dict[str, Any] = {}
    for name, items in runs.items():
        summary_[name] = {
            "valid_rps": median([item["rps"] for item in items]),
            "valid_p50_ms": median([item["p50_us"] / 1000 for item in items]),
            "valid_p99_ms": median([item["p99_us"] / 1000 for item in items]),
            "valid_non_2xx": sum(item["status_errors"] for item in items),
            "p99_vs_alone_paired_median": median(paired_ratios([i["p99_us"] for i in items],
                                                               [i["p99_us"] for i in runs["alone"]])),
        }
        if name in flood_runs:
            summary_[name]["bad_rps"] = median([item["rps"] for item in flood_runs[name]])
            summary_[name]["bad_refused"] = sum(item["status_errors"] for item in flood_runs[name])
            summary_[name]["bad_requests"] = sum(item["requests"] for item in flood_runs[name])
    return {"valid_client": valid_load.label, "runs": runs, "flood_runs": flood_runs, "summary": summary_}


# -- 7. auditing ---------------------------------------------------------------------------------------------------

#: The daemon with auditing off (the baseline), on (the default), and on with deny_callers for the environment.
AUDIT_VARIANTS = {
    "audit off": "[audit]\nenabled = false\n",
    "audit on": "",
    "audit on, deny_callers": f"[environments.{ENVIRONMENT}]\n"
                              'deny_callers = ["npm", "npx", "yarn", "pnpm", "pip", "uv", "poetry", "gem", "bundle", '
                              '"cargo", "go"]\n',
}
AUDIT_LOADS = (wrk.Load(1), wrk.Load(64), wrk.Load(16, keepalive=False))


def auditing(plan: Plan, moto: stack.MotoServer, proxy: StsProxy) -> dict[str, Any]:
    """What finding the caller and writing the audit record cost: the same endpoint with auditing off, on, and on
    with deny_callers (which always waits for the lookup), side by side. With a new connection per request every
    request pays the lookup (wrk is then a caller seen before: the cheap path); with keep-alive only the record."""
    with contextlib.ExitStack() as stack_:
        daemons: dict[str, Daemon] = {}
        for name, settings in AUDIT_VARIANTS.items():
            daemon = stack_.enter_context(stack.bench_world(moto, proxy, settings=settings))
            daemon.start()
            daemon.unlock(ENVIRONMENT)
            daemons[name] = daemon
        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            load.key: {name: [] for name in daemons} for load in AUDIT_LOADS}
        for round_index in range(plan.rounds):
            for load in AUDIT_LOADS:
                for name in rotations(list(daemons), round_index):
                    daemon = daemons[name]
                    result = wrk.run(daemon.url(ENVIRONMENT), load, plan.wrk_seconds,
                                     {"Authorization": daemon.token(ENVIRONMENT)}, daemon.pid)
                    results[load.key][name].append(result.as_dict())
                    log(f"auditing round {round_index + 1}/{plan.rounds} {load.label:32} {name:24} "
                        f"{result.rps:9.0f} req/s  p99 {result.p99_us / 1000:6.2f} ms  "
                        f"CPU {result.cpu_us_per_request or 0:5.1f} us/req  non-2xx {result.status_errors}")
        files = {name: _audit_bytes(daemon) for name, daemon in daemons.items()}
    return {
        "loads": {load.key: load.label for load in AUDIT_LOADS},
        "runs": results,
        "summary": {load.key: _compare(results[load.key], "audit on", ("audit off",))
                    | {"deny/off": _ratios(results[load.key]["audit on, deny_callers"], results[load.key]["audit off"])}
                    for load in AUDIT_LOADS},
        "audit_bytes": files,
        "lookup": lookup_costs(plan),
    }


def _audit_bytes(daemon: Daemon) -> dict[str, float]:
    """How big the record grew: total bytes and bytes per record, over the live file and its rotated copies."""
    directory = daemon.world.home / ".local" / "state" / "govuk-imds"
    files = sorted(directory.glob("audit.jsonl*")) if directory.exists() else []
    size = sum(file.stat().st_size for file in files)
    lines = sum(file.read_bytes().count(b"\n") for file in files)
    return {"bytes": size, "records": lines, "bytes_per_record": size / lines if lines else float("nan")}


def lookup_costs(plan: Plan) -> dict[str, Any]:
    """The lookup's own steps, timed in this process with the daemon's code against real client processes: the
    socket table (on the event loop), then the pid and parents of a client never seen before (the worker's
    usual case, a command started a moment ago) and of one seen before (a long-lived program reconnecting)."""
    import socket

    from govuk_imds.core.callers import ClientSocket
    from govuk_imds.daemon.peers_linux import LinuxPeers

    holder = "import socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1]))); sys.stdin.read()"
    peers = LinuxPeers()
    timings: dict[str, list[float]] = {"socket table (netlink)": [], "new caller: pid and parents": [],
                                       "known caller: pid and parents": []}
    chain_lengths: list[int] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        for _ in range(plan.cli_runs * 2):
            client = subprocess.Popen([sys.executable, "-c", holder, str(listener.getsockname()[1])],
                                      stdin=subprocess.PIPE)
            accepted, peer = listener.accept()
            with accepted:
                began = time.perf_counter()
                located = peers.locate(peer, accepted.getsockname())
                timings["socket table (netlink)"].append((time.perf_counter() - began) * 1e6)
                assert isinstance(located, ClientSocket)
                began = time.perf_counter()
                caller = peers.identify(located, ())
                timings["new caller: pid and parents"].append((time.perf_counter() - began) * 1e6)
                began = time.perf_counter()
                peers.identify(located, (client.pid,))
                timings["known caller: pid and parents"].append((time.perf_counter() - began) * 1e6)
                chain_lengths.append(len(caller.chain))
                assert caller.pid == client.pid, caller
            assert client.stdin is not None
            client.stdin.close()
            client.wait(10)
    peers.close()
    processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
    return {"us": {name: summary(values) for name, values in timings.items()},
            "chain_length": median(chain_lengths), "processes_on_machine": processes}


# -- the whole run -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def timed(results: dict[str, Any], name: str) -> Iterator[None]:
    began = time.monotonic()
    log(f"--- {name}")
    try:
        yield
    finally:
        results.setdefault("section_seconds", {})[name] = round(time.monotonic() - began, 1)


def run_all(plan: Plan, profile_output: Path, only: set[str] | None = None,
            progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    from .machine import describe

    def wanted(section: str) -> bool:
        return only is None or section in only

    results: dict[str, Any] = {"plan": plan.__dict__, "machine": describe(),
                               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    with stack.moto_and_proxy() as (moto, proxy):
        # World A: the usual three environments, production unlocked; most sections run against it.
        with stack.bench_world(moto, proxy) as daemon:
            if wanted("footprint"):
                with timed(results, "cold start"):
                    results["cold_start"] = cold_start(plan, daemon)
            daemon.start()
            daemon.unlock(ENVIRONMENT)
            status, _, body = daemon.fetch(ENVIRONMENT)
            if status != 200:
                raise RuntimeError(f"the daemon answered {status}")
            sts_before = len(proxy.calls)
            daemon_requests = 0
            window_began = time.monotonic()
            if wanted("endpoint"):
                with timed(results, "endpoint"):
                    results["endpoint"] = endpoint(plan, daemon, body)
                    daemon_requests += sum(r["requests"] for runs in results["endpoint"]["runs"].values()
                                           for r in runs["daemon"])
                with timed(results, "profile"):
                    results["profile"] = endpoint_profile(plan, daemon, profile_output)
                with timed(results, "fixes"):
                    results["fixes"] = fixes(plan, daemon, body)
                    daemon_requests += sum(r["requests"] for r in results["fixes"]["runs"]["daemon"])
            if wanted("floods"):
                with timed(results, "floods"):
                    results["floods"] = floods(plan, daemon)
                    daemon_requests += sum(r["requests"] for runs in results["floods"]["runs"].values() for r in runs)
            if wanted("endpoint") or wanted("floods"):
                calls = proxy.calls[sts_before:]
                results["request_path_sts"] = {
                    "daemon_requests": daemon_requests,
                    "seconds": time.monotonic() - window_began,
                    "sts_calls": len(calls),
                    "actions": sorted({call.action for call in calls}),
                }
            if progress:
                progress(results)
            if wanted("user"):
                with timed(results, "user-felt"):
                    results["user_felt"] = user_felt(plan, daemon, proxy)
            if wanted("cli"):
                with timed(results, "light CLI"):
                    results["light_cli"] = light_cli(plan, daemon)
            if progress:
                progress(results)
        # World B: ten environments, for idle RSS with 1 and 10 unlocked, idle wake-ups, then ~1M requests.
        if wanted("footprint"):
            accounts = stack.environment_names(10)
            with stack.bench_world(moto, proxy, accounts=accounts) as daemon, timed(results, "footprint"):
                results["footprint"] = footprint(plan, daemon, list(accounts))
            if progress:
                progress(results)
        # Worlds D: auditing off, on, and on with deny_callers, side by side.
        if wanted("audit"):
            with timed(results, "auditing"):
                results["auditing"] = auditing(plan, moto, proxy)
            if progress:
                progress(results)
        # World C: its own proxy (so its calls are counted alone) and a 16-minute margin for fast rotations.
        if wanted("sts"):
            with stack.StsProxy(moto.url) as own_proxy, stack.bench_world(
                moto, own_proxy, settings='rotation_margin = "16m"'
            ) as daemon, timed(results, "STS economy"):
                own_proxy.role_lifetime = 16 * 60 + 6
                daemon.start()
                daemon.unlock(ENVIRONMENT)
                results["sts_economy"] = sts_economy(plan, daemon, own_proxy)
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return results


__all__ = ["Plan", "run_all"]
