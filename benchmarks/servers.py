"""The two reference servers, each pinned to the daemon's CPU: the aiohttp floor and nginx behind a token check."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .stack import ROOT, SERVER_CPU, pin, pinned, stop_process


@dataclass
class Server:
    name: str
    port: int
    pid: int

    def url(self, environment: str) -> str:
        return f"http://127.0.0.1:{self.port}/v1/credentials/{environment}"


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def floor(port: int, body: bytes, *, uvloop: bool = False) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="imds-floor-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        process = subprocess.Popen(
            pinned([sys.executable, "-m", "benchmarks.floor", "--port", str(port), "--body-file", str(body_file),
                    *(["--uvloop"] if uvloop else [])], SERVER_CPU),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, process, "the aiohttp floor server")
            pin(process.pid, SERVER_CPU)
            yield Server("floor+uvloop" if uvloop else "floor", port, process.pid)
        finally:
            stop_process(process, grace=10.0)


NGINX_CONF = """\
{user}
worker_processes 1;
worker_cpu_affinity {affinity};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    etag off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {tmp}/www;
        location /v1/credentials/ {{
            if ($http_authorization != "{token}") {{ return 403; }}
            default_type application/json;
            add_header Cache-Control no-store always;
            try_files /credentials.json =404;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(port: int, body: bytes, token: str) -> Iterator[Server]:
    """nginx, one worker on the server CPU, serving the same JSON as a static file behind the same token check."""
    executable = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(tempfile.mkdtemp(prefix="imds-nginx-"))
    try:
        (tmp / "www").mkdir()
        (tmp / "www" / "credentials.json").write_bytes(body)
        affinity = "".join("1" if cpu == SERVER_CPU else "0" for cpu in reversed(range(SERVER_CPU + 1)))
        config = NGINX_CONF.format(
            user="user root root;" if os.geteuid() == 0 else "",
            affinity=affinity if len(os.sched_getaffinity(0)) > 1 else "auto",
            tmp=tmp,
            port=port,
            token=token,
        )
        (tmp / "nginx.conf").write_text(config)
        process = subprocess.Popen(
            [executable, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, process, f"nginx (see {tmp}/error.log)")
            pin(process.pid, SERVER_CPU)
            yield Server("nginx", port, process.pid)
        finally:
            stop_process(process, grace=10.0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def variant(port: int, name: str, body: bytes, token: str) -> Iterator[Server]:
    """The daemon's request path in-process with a proposed fix applied (see benchmarks/variants.py)."""
    with tempfile.TemporaryDirectory(prefix="imds-variant-in-") as tmp:
        body_file, token_file = Path(tmp) / "body.json", Path(tmp) / "token"
        body_file.write_bytes(body)
        token_file.write_text(token)
        process = subprocess.Popen(
            pinned([sys.executable, "-m", "benchmarks.variants", "--port", str(port), "--variant", name,
                    "--body-file", str(body_file), "--token-file", str(token_file)], SERVER_CPU),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, process, f"the {name} variant")
            pin(process.pid, SERVER_CPU)
            yield Server(f"daemon code, {name}", port, process.pid)
        finally:
            stop_process(process, grace=10.0)
