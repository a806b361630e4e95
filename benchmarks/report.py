"""Turning a run's results into docs/benchmarks.md (tables, verdicts, the machine) and docs/benchmarks.png."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

NOTES = Path(__file__).with_name("notes.md")
MB = 1_000_000 / 1024  # KiB in one MB (10^6 bytes): the "5 MB"


def _n(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _ms(value: float) -> str:
    return _n(value, 2 if value < 10 else 1)


def _paired(entry: dict[str, Any]) -> str:
    """The median of the per-round ratios, with their range: ``0.52 (0.49–0.55)``."""
    pairs = [value for value in entry.get("rps_ratio_paired", []) if not math.isnan(value)]
    text = f"{entry['rps_ratio_paired_median']:.2f}"
    if len(pairs) > 1:
        text += f" ({min(pairs):.2f}–{max(pairs):.2f})"
    return text


def _cpu(entry: dict[str, Any]) -> str:
    pairs = entry.get("cpu_ratio_paired")
    if not pairs:
        return "–"
    text = f"{entry['cpu_ratio_paired_median']:.2f}"
    if len(pairs) > 1:
        text += f" ({min(pairs):.2f}–{max(pairs):.2f})"
    return text


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("**met**" if ok else "**missed**")


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    rows: list[tuple[str, str, bool | None]] = []
    endpoint = results.get("endpoint")
    if endpoint:
        versus = {key: endpoint["summary"][key]["daemon/floor"] for key in endpoint["loads"]}
        ratios = {key: entry["rps_ratio_paired_median"] for key, entry in versus.items()}
        cpu = {key: entry.get("cpu_ratio_paired_median") for key, entry in versus.items()}
        worst = min(ratios.values())
        text = ", ".join(f"{endpoint['loads'][k]}: {v:.2f}" for k, v in ratios.items())
        if all(value is not None for value in cpu.values()):
            text += "; CPU cost per request, floor ÷ daemon: " + ", ".join(f"{v:.2f}" for v in cpu.values())
        rows.append(("1. throughput daemon/floor ≥ 0.9 (every load)", text, worst >= 0.9))
        p99 = endpoint["summary"]["ka64"]["daemon"]["p99_ms"]
        floor_p99 = endpoint["summary"]["ka64"]["floor"]["p99_ms"]
        rows.append(("1. p99 < 5 ms at 64 connections", f"{_ms(p99)} ms (floor {_ms(floor_p99)} ms)",
                     p99 < 5))
    user = results.get("user_felt")
    if user:
        checks = (
            ("govuk-imds endpoint (env)", "`aws sts get-caller-identity` endpoint/static", 1.02),
            ("credential_process (profile)", "credential_process/static", 1.10),
        )
        fetch = user.get("fetch_ms", {})
        static_fetch = fetch.get("static environment credentials")
        for name, label, limit in checks:
            ratios = user["ratios"][name]
            cpu_text = f", CPU {ratios['cpu_ratio_of_medians']:.3f}" if "cpu_ratio_of_medians" in ratios else ""
            fetch_text = ""
            if static_fetch is not None and name in fetch:
                fetch_text = f"; finding credentials costs {fetch[name] - static_fetch:+.1f} ms more than static"
            legacy = {"govuk-imds endpoint (env)": "endpoint (ContainerProvider)",
                      "credential_process (profile)": "credential_process (ProcessProvider)"}
            if legacy[name] in fetch:
                fetch_text = f"; the fetch itself {fetch[legacy[name]]:.1f} ms"
            rows.append((f"2. {label} ≤ {limit:.2f}",
                         f"wall {ratios['paired_median']:.3f} (paired median){cpu_text}{fetch_text}",
                         ratios["paired_median"] <= limit))
    cli = results.get("light_cli")
    if cli:
        for name in ("govuk-imds env production", "govuk-imds status", "govuk-imds credential-process production",
                     "govuk-imds __complete environments"):
            if name not in cli["summary"]:
                continue
            value = cli["summary"][name]["median"]
            rows.append((f"3. `{name}` < 150 ms", f"{value:.0f} ms (median)", value < 150))
    footprint = results.get("footprint")
    if footprint:
        million = footprint["million"]
        growth = million["growth_from_idle_kib"]
        rows.append((f"4. RSS growth over {million['requests']:,} requests < 5 MB",
                     f"{growth / 1024:+.2f} MiB from idle "
                     f"({million['growth_from_warm_kib'] / 1024:+.2f} MiB after warm-up)",
                     growth < 5 * MB))
    sts = results.get("sts_economy")
    if sts:
        worst_calls = max(item["calls_per_rotation_max"] for item in sts.values())
        rotations = sum(item["rotations"] for item in sts.values())
        rows.append(("5. AssumeRole per rotation with 1,000 concurrent clients = 1",
                     f"at most {worst_calls} in {rotations} rotations", worst_calls == 1 and rotations > 0))
    request_path = results.get("request_path_sts")
    if request_path:
        rows.append(("5. zero STS calls on the request path",
                     f"{request_path['sts_calls']} STS calls during {request_path['daemon_requests']:,} requests",
                     request_path["sts_calls"] == 0))
    return rows


def _notes(results: dict[str, Any]) -> str:
    """The hand-written analysis, but only for the source it was written about: it opens with
    ``<!-- analysis of: commit <sha> -->``; any other run gets a pointer instead of a stale analysis."""
    text = NOTES.read_text().strip()
    first, _, rest = text.partition("\n")
    source = str(results["machine"].get("source", ""))
    marker = first.removeprefix("<!-- analysis of:").removesuffix("-->").strip()
    if not first.startswith("<!-- analysis of:") or source == marker:
        return rest.strip() if first.startswith("<!--") else text
    return ("## Analysis\n\nThe hand-written analysis in `benchmarks/notes.md` was written for "
            f"{marker}; this run measured {source}. Compare the tables with that analysis and update the notes "
            "(and their first line) before relying on them.")


def markdown(results: dict[str, Any], command: str, chart_name: str, profile_name: str | None) -> str:
    machine = results["machine"]
    plan = results["plan"]
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("<!-- Generated by scripts/bench from benchmarks/; edit benchmarks/notes.md or benchmarks/report.py, "
        "not this file. -->")
    add("")
    add("How fast the credential endpoint answers compared with the floor of its own stack (a bare aiohttp handler) "
        "and with the machine's limit (nginx), what a person running the aws CLI feels, how light the everyday "
        "commands are, what the daemon costs while it waits, and how sparingly it calls STS. Every comparison ran "
        "both sides in the same run, alternating (the order rotates each round), and ratios are paired per round "
        "where that applies. No number here is asserted by the test suite.")
    add("")
    if plan["quick"]:
        add("> **Quick mode** (`scripts/bench --quick`): short runs for development. The figures are indicative only.")
        add("")
    add(f"> These figures come from a **shared {machine['cores']}-core virtual machine** on which other engineers were "
        "running test suites at the same time: expect run-to-run noise of 10–30 % in throughput, more in tail "
        "latency. Ratios taken within one round are steadier than the absolute figures.")
    add("")
    add("## How to run")
    add("")
    add("```sh")
    add("scripts/bench            # the full suite (~20 min): writes docs/benchmarks.md, .png and .json")
    add("scripts/bench --quick    # short runs for development: writes build/benchmarks/ instead")
    add("```")
    add("")
    add(f"This run: `{command}`, {results['started']} → {results['finished']}. `scripts/bench` installs what it "
        "needs (Debian `wrk` and `nginx` via apt-get when run as root; the test virtualenv via "
        "`scripts/bootstrap test`; matplotlib, py-spy and uvloop into `.venv`, not as project dependencies), then runs "
        "`python -m benchmarks`. The daemon, moto_server, the MFA-checking STS proxy and a private gnome-keyring are "
        "started the way the end-to-end tests start them, and the real `govuk-imds` CLI drives the real daemon.")
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| CPU | {machine['cpu_model']}{' (virtualised)' if machine['virtualised'] else ''}"
        f"{', ' + str(round(float(machine['cpu_mhz']))) + ' MHz' if machine.get('cpu_mhz') else ''} |")
    add(f"| cores | {machine['cores']}: servers under test pinned to CPU 1, load generators (wrk, py-spy) to CPU 0 |")
    add(f"| memory | {machine['memory_gib']} GiB |")
    add(f"| kernel / OS | Linux {machine['kernel']} / {machine['os']} |")
    add(f"| Python / aiohttp | {machine['python']} / {machine['aiohttp']} (asyncio's default event loop) |")
    add(f"| wrk / nginx | {machine['wrk']} / {machine['nginx']} |")
    add(f"| awscli / botocore / moto / uvloop | {machine.get('awscli')} / {machine.get('botocore')} / "
        f"{machine.get('moto')} / {machine.get('uvloop')} |")
    add(f"| govuk-imds measured | {machine.get('source')} |")
    add(f"| load average | {' '.join(machine['loadavg'])} at the start, "
        f"{' '.join(machine.get('loadavg_end', []))} at the end |")
    add("")
    add("## Targets")
    add("")
    add("| target (issue 8) | this run | verdict |")
    add("|---|---|---|")
    for target, measured, ok in targets(results):
        add(f"| {target} | {measured} | {_verdict(ok)} |")
    add("")
    if NOTES.exists():
        add(_notes(results))
        add("")
    add(f"![Benchmark chart]({chart_name})")
    add("")
    _endpoint(results, add)
    _profile(results, add, profile_name)
    _fixes(results, add)
    _user(results, add)
    _cli(results, add)
    _footprint(results, add)
    _sts(results, add)
    _floods(results, add)
    _auditing(results, add)
    add("## Method notes")
    add("")
    add("- **wrk** (one thread, pinned to CPU 0) drives every server on 127.0.0.1 with the real token in "
        "`Authorization`; its own `Host` header is `127.0.0.1:<port>`, exactly what the daemon requires. Latency "
        "percentiles are wrk's exact ones (a Lua `done` hook prints them), measured from sending a request to "
        "reading its answer; with a new connection per request the connect itself is not included. Runs with "
        "non-2xx answers or socket errors would show them in the tables.")
    add("- wrk is a **closed loop**: each connection sends its next request as soon as the last one is answered, "
        "so at saturation latency is queueing: by Little's law p50 ≈ connections ÷ throughput. A p99 target at 64 "
        "connections is therefore a throughput target in disguise (64 ÷ 5 ms = 12,800 req/s at the very least, in "
        "practice well above that because p99 > p50).")
    add("- The **floor** is `benchmarks/floor.py`: the same Python, aiohttp and event loop, answering the same "
        "status, headers and body bytes as the daemon, with no checks. **nginx** (one worker, pinned like the "
        "others) serves the same JSON as a static file behind `if ($http_authorization != \"<token>\") "
        "{ return 403; }`.")
    add("- Medians over rounds are shown; the `paired` ratios are the median of per-round ratios, the `of medians` "
        "ones divide the medians.")
    add("- Raw figures for every run are in `benchmarks.json` next to this file.")
    add("")
    return "\n".join(lines) + "\n"


def _endpoint(results: dict[str, Any], add: Any) -> None:
    endpoint = results.get("endpoint")
    if not endpoint:
        return
    plan = results["plan"]
    add("## 1. Endpoint throughput and latency")
    add("")
    add(f"wrk for {plan['wrk_seconds']:g} s per run, {plan['rounds']} round(s), servers alternating; medians. "
        "Daemon: all checks on (Host, browser headers, route, method, environment, constant-time token), a real "
        "unlocked environment.")
    add("")
    add("| load | server | req/s | p50 ms | p99 ms | server CPU µs/request | non-2xx / socket errors |")
    add("|---|---|---:|---:|---:|---:|---:|")
    for key, label in endpoint["loads"].items():
        row = endpoint["summary"][key]
        for name in ("daemon", "floor", "nginx"):
            add(f"| {label} | {name} | {_n(row[name]['rps'])} | {_ms(row[name]['p50_ms'])} | "
                f"{_ms(row[name]['p99_ms'])} | {_n(row[name].get('cpu_us_per_request', float('nan')), 1)} | "
                f"{row[name]['non_2xx']} / {row[name]['socket_errors']} |")
    add("")
    add("| load | daemon/floor req/s: paired (range) / of medians | daemon/nginx req/s: paired (range) / of medians | "
        "CPU per request, floor ÷ daemon (paired) | p99 daemon/floor |")
    add("|---|---:|---:|---:|---:|")
    for key, label in endpoint["loads"].items():
        row = endpoint["summary"][key]
        floor, nginx = row["daemon/floor"], row["daemon/nginx"]
        add(f"| {label} | {_paired(floor)} / {floor['rps_ratio_of_medians']:.2f} | "
            f"{_paired(nginx)} / {nginx['rps_ratio_of_medians']:.2f} | {_cpu(floor)} | "
            f"{floor['p99_ratio_of_medians']:.2f} |")
    add("")
    add("Server CPU per request is the server's user + system time during the run (`/proc/<pid>/stat`, nginx's "
        "worker included) divided by the requests wrk completed. Unlike throughput it does not count the time the "
        "server spent waiting for a CPU that another tenant of this shared machine had, so its ratio is the steadier "
        "measure of what our checks cost.")
    add("")


def _profile(results: dict[str, Any], add: Any, profile_name: str | None) -> None:
    prof = results.get("profile")
    if not prof:
        return
    add("### Where the daemon's time goes (py-spy)")
    add("")
    if "error" in prof:
        add(f"py-spy could not sample the daemon: {prof['error']}")
        add("")
        return
    add(f"`py-spy record --rate 250 --nolineno --format raw` on the daemon's pid while wrk drove it at 64 keep-alive "
        f"connections ({prof['samples']:,} samples of the event-loop thread, {_n(prof['rps_while_sampled'])} req/s "
        "while sampled: sampling pauses the process, so this rate is below the table's). Share of the event loop's "
        "busy time spent inside each function, callees included:")
    add("")
    add("| part of the request path | share of CPU |")
    add("|---|---:|")
    for label, share in prof["watched"].items():
        add(f"| {label} | {share:.1f} % |")
    add("")
    add("<details><summary>Top functions, inclusive and self</summary>")
    add("")
    add("| function (inclusive) | % |")
    add("|---|---:|")
    for name, share in prof["top_inclusive"]:
        add(f"| `{name}` | {share:.1f} |")
    add("")
    add("| function (self) | % |")
    add("|---|---:|")
    for name, share in prof["top_self"]:
        add(f"| `{name}` | {share:.1f} |")
    add("")
    if profile_name:
        add(f"Collapsed stacks (for any flame-graph tool): `{profile_name}`.")
        add("")
    add("</details>")
    add("")


def _fixes(results: dict[str, Any], add: Any) -> None:
    fixes = results.get("fixes")
    if not fixes:
        return
    add("### The proposed fixes, measured")
    add("")
    add(f"`benchmarks/variants.py` runs the daemon's own request path (`govuk_imds.web.create_app` with a real "
        f"`Service` and `TokenStore`, STS replaced by the credentials the daemon served, same token, same bytes) "
        f"with each proposed change patched into its process — `src/` is untouched. {fixes['load']}, alternating "
        "with the real daemon and the floor:")
    add("")
    add("| server | req/s | p50 ms | p99 ms | req/s ÷ floor, paired (range over rounds) | CPU µs/request | "
        "CPU per request, floor ÷ this (paired) |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    summary = fixes["summary"]
    labels = {
        "daemon": "the real daemon",
        "as-is": "daemon code as it is (replica check)",
        "dict": "+ plain dict instead of aiocache on the request path",
        "dict+uvloop": "+ plain dict, on uvloop (reference)",
        "floor": "floor",
        "floor+uvloop": "floor on uvloop (reference)",
    }
    for name, label in labels.items():
        if name not in summary:
            continue
        row = summary[name]
        if name == "floor":
            share = cpu_share = "1.00"
        else:
            entry = summary["daemon/floor" if name == "daemon" else f"{name}/floor"]
            share, cpu_share = _paired(entry), _cpu(entry)
        add(f"| {label} | {_n(row['rps'])} | {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {share} | "
            f"{_n(row.get('cpu_us_per_request', float('nan')), 1)} | {cpu_share} |")
    add("")


def _user(results: dict[str, Any], add: Any) -> None:
    user = results.get("user_felt")
    if not user:
        return
    add("## 2. What a user feels")
    add("")
    add(f"`{user['command']}` (the aws CLI v1 from the venv; STS is moto behind the proxy), "
        f"{results['plan']['aws_runs']} runs per path, alternating, wall time. All paths use the same role "
        f"credentials and got the same identity: {'yes' if user['same_identity'] else '**no**'}.")
    add("")
    add("| credentials from | wall median ms | min ms | p90 ms | wall ratio to static (paired / of medians) | "
        "CPU median ms | CPU ratio |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in user["summary"].items():
        ratios = user["ratios"].get(name)
        ratio_text = (f"{ratios['paired_median']:.3f} / {ratios['ratio_of_medians']:.3f}" if ratios else "1")
        cpu_row = user.get("cpu_summary", {}).get(name)
        cpu_text = f"{cpu_row['median']:.0f}" if cpu_row else "–"
        cpu_ratio = f"{ratios['cpu_ratio_of_medians']:.3f}" if ratios and "cpu_ratio_of_medians" in ratios else "1"
        add(f"| {name} | {row['median']:.0f} | {row['min']:.0f} | {row['p90']:.0f} | {ratio_text} | "
            f"{cpu_text} | {cpu_ratio} |")
    add("")
    add("CPU is user + system time of `aws` and everything it ran (a `credential_process` helper included), from "
        "`getrusage(RUSAGE_CHILDREN)`; the daemon's own share (well under a millisecond per request) is not in it.")
    add("")
    fetch = user.get("fetch_ms")
    if fetch and any("Provider)" in name for name in fetch):  # results from before the whole-chain measurement
        add("What each path adds inside one aws run, measured directly: botocore's own credential provider, built "
            "fresh each time (a fresh connection, as in a new aws process), timed in the benchmark process; median "
            "ms, and the wall ratio that adding it to the static path's median predicts:")
        add("")
        add("| provider | ms per fetch | predicted wall ratio |")
        add("|---|---:|---:|")
        static_wall = user["summary"]["static environment credentials"]["median"]
        for name, value in fetch.items():
            add(f"| {name} | {value:.1f} | {(static_wall + value) / static_wall:.3f} |")
        add("")
    elif fetch:
        add("What finding the credentials costs inside one aws run, measured directly: a fresh session of the aws "
            "CLI's own botocore resolves and freezes credentials through its whole provider chain, with each "
            "path's environment, in the benchmark process (imports already warm; median ms):")
        add("")
        add("| credentials from | ms to resolve | more than static | predicted wall ratio |")
        add("|---|---:|---:|---:|")
        static_wall = user["summary"]["static environment credentials"]["median"]
        static_fetch = next(iter(fetch.values()))
        for name, value in fetch.items():
            extra = value - static_fetch
            add(f"| {name} | {value:.1f} | {extra:+.1f} | {(static_wall + extra) / static_wall:.3f} |")
        add("")
        add("The predicted ratio adds that difference to the static path's median wall time. The wall-time ratios "
            "above also carry the machine's noise, about ±2 % here even with alternation.")
        add("")


def _cli(results: dict[str, Any], add: Any) -> None:
    cli = results.get("light_cli")
    if not cli:
        return
    add("## 3. The light CLI")
    add("")
    add(f"Wall time of the installed `govuk-imds` entry point, daemon running with one environment unlocked, "
        f"{results['plan']['cli_runs']} runs each, alternating with a bare interpreter start of the same venv.")
    add("")
    add("| command | wall median ms | min ms | p90 ms | CPU median ms |")
    add("|---|---:|---:|---:|---:|")
    for name, row in cli["summary"].items():
        cpu_row = cli.get("cpu_summary", {}).get(name)
        add(f"| `{name}` | {row['median']:.0f} | {row['min']:.0f} | {row['p90']:.0f} | "
            f"{cpu_row['median'] if cpu_row else float('nan'):.0f} |")
    add("")
    for command, data in cli["importtime"].items():
        heavy = ", ".join(data["heavy_imported"]) or "none"
        add(f"`python -X importtime govuk-imds {command}{'' if command == 'status' else ' production'}` "
            f"(median of {results['plan']['importtime_runs']}): {data['total_ms']:.0f} ms importing "
            f"{data['modules']} modules; heavy libraries imported: {heavy}.")
        add("")
        add("| module (top level) | cumulative ms |")
        add("|---|---:|")
        for name, cumulative in data["top_level"][:8]:
            add(f"| `{name}` | {cumulative:.1f} |")
        add("")
        add("<details><summary>Top 15 by cumulative time, any depth</summary>")
        add("")
        add("| module | cumulative ms | self ms |")
        add("|---|---:|---:|")
        for name, cumulative, self_ms in data["top_cumulative"]:
            add(f"| `{name}` | {cumulative:.1f} | {self_ms:.1f} |")
        add("")
        add("</details>")
        add("")


def _footprint(results: dict[str, Any], add: Any) -> None:
    cold = results.get("cold_start")
    footprint = results.get("footprint")
    if not cold and not footprint:
        return
    add("## 4. Footprint")
    add("")
    add("| measure | value |")
    add("|---|---:|")
    if cold:
        row = cold["summary"]
        add(f"| cold start: `govuk-imds start` until READY ({row['n']:.0f} starts) | median {row['median']:.0f} ms "
            f"(min {row['min']:.0f}, max {row['max']:.0f}) |")
    if footprint:
        add(f"| idle RSS, daemon started, nothing unlocked ({footprint['environments_configured']} environments "
            f"configured) | {footprint['rss_idle_0_kib'] / 1024:.1f} MiB |")
        add(f"| idle RSS, 1 environment unlocked | {footprint['rss_idle_1_kib'] / 1024:.1f} MiB |")
        add(f"| idle RSS, {footprint['environments_configured']} environments unlocked | "
            f"{footprint['rss_idle_all_kib'] / 1024:.1f} MiB |")
        million = footprint["million"]
        add(f"| RSS before / after {million['requests']:,} requests (idle 2 s after) | "
            f"{million['rss_before_kib'] / 1024:.1f} / {million['rss_after_idle_kib'] / 1024:.1f} MiB |")
        add(f"| growth from idle / from after the first chunk / peak | "
            f"{million['growth_from_idle_kib'] / 1024:+.2f} / {million['growth_from_warm_kib'] / 1024:+.2f} MiB / "
            f"{million['rss_peak_kib'] / 1024:.1f} MiB |")
        add(f"| errors during those requests | {million['errors']} |")
        for key, label in (("wakeups_1", "1 environment unlocked"),
                           ("wakeups_all", f"{footprint['environments_configured']} unlocked")):
            wake = footprint[key]
            add(f"| idle CPU wake-ups per minute, {label} ({wake['threads']} threads, over {wake['seconds']:.0f} s) | "
                f"{wake['wakeups_per_min']:.1f} (voluntary switches {wake['voluntary_per_min']:.1f}, "
                f"involuntary {wake['involuntary_per_min']:.1f}) |")
        add("")
        add("RSS is `VmRSS` from `/proc/<pid>/status`. The million requests alternate 15 s of keep-alive at 64 "
            "connections with 5 s of a new connection per request at 16 (SDKs open a connection per fetch), "
            "RSS sampled after each chunk (see the chart).")
        add("")
        add("**Wake-ups, method.** For every thread of the idle daemon, `/proc/<pid>/task/<tid>/schedstat` gives "
            "the number of times the thread was put on a CPU (its third field); the sum of its increase over the "
            "window, scaled to a minute, is the wake-ups per minute. The voluntary / involuntary context-switch "
            "counters from `/proc/<pid>/task/<tid>/status` are shown as a cross-check (a thread that blocks and is "
            "woken again counts one voluntary switch). No traffic reaches the daemon during the window; the "
            "maintenance loop sleeps at most 30 s by design (laptop-sleep safety).")
        add("")


def _sts(results: dict[str, Any], add: Any) -> None:
    sts = results.get("sts_economy")
    request_path = results.get("request_path_sts")
    if not sts and not request_path:
        return
    add("## 5. STS economy")
    add("")
    if sts:
        add("1,000 concurrent keep-alive clients (wrk -c1000) hammer one environment while the STS proxy hands out "
            "short-lived role credentials (`StsProxy.role_lifetime`) so that rotations come every few seconds; the "
            "proxy counts AssumeRole calls, and calls less than 1 s apart are counted as one rotation.")
        add("")
        add("| regime | requests | non-2xx | p99 ms | rotations | AssumeRole calls | per rotation (max / mean) |")
        add("|---|---:|---:|---:|---:|---:|---:|")
        for label, row in sts.items():
            add(f"| {label} | {row['requests']:,} | {row['non_2xx']:,} | {_ms(row['p99_ms'])} | {row['rotations']} | "
                f"{row['assume_role_calls']} | "
                f"{row['calls_per_rotation_max']} / {row['calls_per_rotation_mean']:.2f} |")
        add("")
        add("In the empty-cache regime the credentials stop being servable (under 15 minutes left) about a second "
            "before the 5-second minimum between renewals allows the next one, so the non-2xx answers there are the "
            "designed 503 (\"retrying automatically\") of that artificial gap, not failures.")
        add("")
    if request_path:
        add(f"Request path: {request_path['sts_calls']} STS calls ({', '.join(request_path['actions']) or 'none'}) "
            f"while the daemon answered {request_path['daemon_requests']:,} requests over "
            f"{request_path['seconds']:.0f} s (sections 1 and 6, between rotations).")
        add("")


def _floods(results: dict[str, Any], add: Any) -> None:
    floods = results.get("floods")
    if not floods:
        return
    add("## 6. Floods")
    add("")
    add(f"A valid client ({floods['valid_client']}, the real token) measured alone and while a second wrk sends "
        "requests with a wrong token of the same length, alternating; medians.")
    add("")
    add("| condition | valid req/s | valid p50 ms | valid p99 ms | p99 ÷ alone (paired) | bad-token req/s refused |")
    add("|---|---:|---:|---:|---:|---:|")
    for name, row in floods["summary"].items():
        add(f"| {name} | {_n(row['valid_rps'])} | {_ms(row['valid_p50_ms'])} | {_ms(row['valid_p99_ms'])} | "
            f"{row['p99_vs_alone_paired_median']:.1f} | {_n(row.get('bad_rps', float('nan')))} |")
    add("")


def _auditing(results: dict[str, Any], add: Any) -> None:
    auditing = results.get("auditing")
    if not auditing:
        return
    add("## 7. Auditing: what finding the caller and recording it cost")
    add("")
    add("Three daemons side by side, alternating: auditing off (`[audit] enabled = false`), on (the default: the "
        "caller looked up once per connection, one record per answer), and on with `deny_callers` for the "
        "environment (the answer always waits for the lookup). wrk is one long-lived process, so with a new "
        "connection per request each request pays the lookup of a caller seen before; with keep-alive only the "
        "first request of a connection does, and every request pays its record.")
    add("")
    add("| load | daemon | req/s | p50 ms | p99 ms | CPU µs/req | req/s ÷ off (paired) | CPU µs/req over off |")
    add("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, label in auditing["loads"].items():
        row = auditing["summary"][key]
        off_cpu = row["audit off"].get("cpu_us_per_request")
        for name in ("audit off", "audit on", "audit on, deny_callers"):
            entry = row[name]
            versus = {"audit on": row.get("audit on/audit off"), "audit on, deny_callers": row.get("deny/off")}
            paired = _paired(versus[name]) if versus.get(name) else "–"
            cpu = entry.get("cpu_us_per_request")
            extra = f"{cpu - off_cpu:+.1f}" if cpu is not None and off_cpu is not None and name != "audit off" else "–"
            add(f"| {label} | {name} | {_n(entry['rps'])} | {_ms(entry['p50_ms'])} | {_ms(entry['p99_ms'])} | "
                f"{_n(cpu or float('nan'), 1)} | {paired} | {extra} |")
    add("")
    lookup = auditing["lookup"]
    add(f"The lookup's own steps, timed in the benchmark process with the daemon's code against real client "
        f"processes ({lookup['us']['socket table (netlink)']['n']} clients, {lookup['processes_on_machine']} "
        f"processes on the machine, chains of {lookup['chain_length']:.0f} processes):")
    add("")
    add("| step | where it runs | median µs | p90 µs | max µs |")
    add("|---|---|---:|---:|---:|")
    where = {"socket table (netlink)": "event loop"}
    for name, row in lookup["us"].items():
        add(f"| {name} | {where.get(name, 'worker thread')} | {_n(row['median'])} | {_n(row['p90'])} | "
            f"{_n(row['max'])} |")
    add("")
    sizes = [f"{name}: {row['bytes_per_record']:,.0f} bytes per record" for name, row in auditing["audit_bytes"].items()
             if row["records"]]
    if sizes:
        add(f"Records written during the run: {'; '.join(sizes)}.")
        add("")


def chart(results: dict[str, Any], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    colours = {"daemon": "#1d70b8", "floor": "#00703c", "nginx": "#6f777b"}
    endpoint = results.get("endpoint")
    if endpoint:
        keys = list(endpoint["loads"])
        labels = [endpoint["loads"][k].replace("new connection per request", "new conn.") for k in keys]
        width = 0.27
        for offset, name in enumerate(("daemon", "floor", "nginx")):
            xs = [i + (offset - 1) * width for i in range(len(keys))]
            axes[0][0].bar(xs, [endpoint["summary"][k][name]["rps"] for k in keys], width, label=name,
                           color=colours[name])
            axes[0][1].bar(xs, [endpoint["summary"][k][name]["p99_ms"] for k in keys], width, label=name,
                           color=colours[name])
        for ax, title in ((axes[0][0], "requests/s (median)"), (axes[0][1], "p99 latency, ms (log)")):
            ax.set_xticks(range(len(keys)), labels, fontsize=8)
            ax.set_title(title)
            ax.legend()
        axes[0][1].set_yscale("log")
        axes[0][1].axhline(5, color="#d4351c", linestyle="--", linewidth=1)
        axes[0][1].text(-0.4, 5.3, "target at c=64: 5 ms", color="#d4351c", fontsize=8)
    fixes = results.get("fixes")
    ax = axes[0][2]
    if fixes:
        shown = {"daemon": "daemon", "as-is": "code\nas-is", "dict": "+dict\ncache", "dict+uvloop": "+dict\nuvloop",
                 "floor+uvloop": "floor\nuvloop"}
        names = [name for name in shown if name == "daemon" or f"{name}/floor" in fixes["summary"]]
        values = [fixes["summary"]["daemon/floor" if n == "daemon" else f"{n}/floor"]["rps_ratio_paired_median"]
                  for n in names]
        palette = {"daemon": "#1d70b8", "as-is": "#5694ca", "dict": "#f47738", "dict+uvloop": "#85994b",
                   "floor+uvloop": "#6f777b"}
        ax.bar(range(len(names)), values, color=[palette[n] for n in names])
        ax.set_xticks(range(len(names)), [shown[n] for n in names], fontsize=8)
        ax.axhline(0.9, color="#d4351c", linestyle="--", linewidth=1)
        ax.set_ylim(0, max(1.1, max(values) * 1.1))
        ax.set_title("throughput ÷ floor at 64 keep-alive connections\n(proposed fixes, target 0.9)")
    else:
        ax.axis("off")
    user = results.get("user_felt")
    ax = axes[1][0]
    if user:
        names = list(user["times_ms"])
        ax.boxplot([user["times_ms"][n] for n in names], showfliers=True)
        wrapped = [n.replace(" credentials", "\ncredentials").replace(", ", ",\n").replace(" (", "\n(") for n in names]
        ax.set_xticks(range(1, len(names) + 1), wrapped, fontsize=7)
        ax.set_title("aws sts get-caller-identity, wall ms")
    else:
        ax.axis("off")
    footprint = results.get("footprint")
    ax = axes[1][1]
    if footprint:
        samples = footprint["million"]["samples"]
        ax.plot([s[0] / 1000 for s in samples], [s[1] / 1024 for s in samples], marker="o", markersize=3,
                color="#1d70b8")
        ax.set_xlabel("requests served (thousands)")
        ax.set_ylabel("RSS MiB")
        ax.set_title("daemon RSS through the million requests")
        ax.set_ylim(0, max(s[1] for s in samples) / 1024 * 1.2)
    else:
        ax.axis("off")
    floods = results.get("floods")
    ax = axes[1][2]
    if floods:
        names = list(floods["summary"])
        ax.bar(range(len(names)), [floods["summary"][n]["valid_p99_ms"] for n in names],
               color=["#00703c", "#d4351c", "#f47738"])
        ax.set_xticks(range(len(names)), [n.replace("bad-token flood, ", "flood:\n") for n in names], fontsize=8)
        ax.set_title("valid client p99 ms under a bad-token flood")
    else:
        ax.axis("off")
    machine = results["machine"]
    fig.suptitle(f"govuk-imds benchmarks — {machine['cpu_model']}, {machine['cores']} cores (shared), "
                 f"Python {machine['python']}, aiohttp {machine['aiohttp']}"
                 f"{' — QUICK MODE' if results['plan']['quick'] else ''}")
    fig.tight_layout()
    fig.savefig(output, dpi=90)
    plt.close(fig)
