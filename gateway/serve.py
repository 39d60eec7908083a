"""`calgate serve`: the process roles and the API processes that share one port.

- ``all`` (default): one process serves HTTP and runs the ticks (delivery, sync, jobs).
- ``api``: serves HTTP and plans work (planning happens in the request's own transaction), no
  ticks.
- ``worker``: runs the ticks and does not listen.

``--workers N`` binds the port once and starts N API processes on it (the kernel spreads the
connections), and with role ``all`` one more process for the ticks; the first process only
supervises (restarts a child that dies, passes SIGTERM on). Several processes never double
work: every unit of work is claimed from the database with a lease (gateway/store/leases.py).

The HTTP stack: httptools (HTTP/1.1 parser) and uvloop (event loop) when `server.fast_http` is
on and they are importable, which bench/feeds.py measures against h11 and asyncio, the
pure-Python fallback used otherwise (a platform without their wheels, or the setting off).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal

import uvicorn

from gateway import features, heap, logs, metrics
from gateway.api import metrics as metrics_api
from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.notify.channels import registry as channel_registry
from gateway.scheduler import Ticks
from gateway.store import migrate
from gateway.store.db import Store
from gateway.sync import providers as provider_registry

Role = Literal["api", "worker", "all"]
ROLES: tuple[Role, ...] = ("api", "worker", "all")
log = logging.getLogger("calgate.serve")
_CHILD_POLL_SECONDS = 0.5


class _Server(uvicorn.Server):
    """uvicorn, but a SIGTERM ends with a clean exit 0 instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def open_store(settings: Settings) -> Store:
    """The store of the settings, with the features' change listeners."""
    return features.install(
        Store.from_url(settings.database_url, echo=settings.database_echo, settings=settings)
    )


def http_parser(settings: Settings) -> str:
    """uvicorn's HTTP/1.1 parser: httptools when allowed and importable, else h11."""
    if settings.server_fast_http and importlib.util.find_spec("httptools") is not None:
        return "httptools"
    return "h11"


def _loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if settings.server_fast_http:
        try:
            import uvloop
        except ImportError:
            return None
        return uvloop.new_event_loop
    return None


def run(settings: Settings, main: Coroutine[object, object, None]) -> None:
    """Run `main` to its end on uvloop when allowed and importable, else on asyncio's loop."""
    with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
        runner.run(main)


def uvicorn_config(settings: Settings, app: object, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for our app: our logging, TLS when configured, proxies trusted."""
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        http=http_parser(settings),
        log_config=None,
        access_log=False,
        lifespan="on",
        ssl_certfile=settings.server_tls_cert_file or None,
        ssl_keyfile=settings.server_tls_key_file or None,
        # Client address and scheme from X-Forwarded-* only from these (empty: none).
        proxy_headers=bool(settings.server_forwarded_allow_ips),
        forwarded_allow_ips=settings.server_forwarded_allow_ips or "",
    )


async def _api(
    settings: Settings,
    host: str,
    port: int,
    *,
    run_ticks: bool,
    sock: socket.socket | None = None,
) -> None:
    store = open_store(settings)
    try:
        if sock is None:  # not a child of --workers, whose parent migrated already
            await migrate.upgrade(store)
            metrics_api.serve_port(settings)
        app = create_app(settings, store, run_ticks=run_ticks)
        server = _Server(uvicorn_config(settings, app, host, port))
        heap.settle_after_startup()
        await server.serve(sockets=[sock] if sock is not None else None)
    finally:
        await store.close()


async def _migrate(settings: Settings) -> None:
    store = open_store(settings)
    try:
        await migrate.upgrade(store)
    finally:
        await store.close()


async def _stop_requested() -> None:
    """Wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _worker(settings: Settings, *, serve_metrics: bool = True) -> None:
    """Run the ticks until SIGTERM, without listening (but on metrics.port, if set)."""
    store = open_store(settings)
    try:
        await migrate.upgrade(store)
        provider_registry.install(store, settings)  # the connectors named in the settings
        if serve_metrics:
            metrics_api.serve_port(settings)
        ticks = Ticks(store, settings)
        await ticks.start()
        heap.settle_after_startup()
        try:
            await _stop_requested()
        finally:
            await ticks.stop()
    finally:
        await store.close()


async def _supervisor(settings: Settings, children: list[_Child]) -> None:
    """Start the children, restart any that dies, pass SIGTERM on and wait for them."""
    for child in children:
        child.start()
    metrics_api.serve_port(settings)  # reads every child's metrics from the shared folder
    supervising = asyncio.create_task(_supervise(children))
    try:
        await _stop_requested()
    finally:
        supervising.cancel()
        for child in children:
            child.terminate()
        for child in children:
            await asyncio.to_thread(child.join, settings.server_shutdown_grace_seconds + 5)


class _Child:
    """One process of --workers (an API process, or the one running the ticks)."""

    def __init__(self, role: Role, config_file: Path | None, sock: socket.socket | None) -> None:
        self.role = role
        self.args = (role, config_file, sock)
        self.process: BaseProcess | None = None

    def start(self) -> None:
        # spawn: a fresh interpreter, no event loop or database connection inherited, and the
        # metrics folder variable already set when it imports prometheus-client.
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(target=_child_main, args=self.args, daemon=False)
        self.process.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def terminate(self) -> None:
        if self.alive() and self.process is not None:
            self.process.terminate()  # SIGTERM: each finishes its work in hand, then exits

    def join(self, timeout: float) -> None:
        if self.process is not None:
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()


async def _supervise(children: list[_Child]) -> None:
    while True:
        await asyncio.sleep(_CHILD_POLL_SECONDS)
        for child in children:
            if not child.alive():
                log.warning("a child process ended; starting another", extra={"role": child.role})
                child.start()


def _child_main(role: Role, config_file: Path | None, sock: socket.socket | None) -> None:
    """Entry point of a process of --workers (runs in a spawned interpreter)."""
    settings = load_settings(config_file)
    logs.configure(settings.log_level, settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        if sock is None:
            run(settings, _worker(settings, serve_metrics=False))
        else:
            host, port = sock.getsockname()[:2]
            run(settings, _api(settings, host, port, run_ticks=False, sock=sock))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    settings: Settings,
    *,
    config_file: Path | None,
    role: Role,
    host: str,
    port: int,
    workers: int,
) -> None:
    """Run `calgate serve` in `role` until SIGTERM."""
    # Every role sends notifications or plans them: refuse bad channel settings before any
    # migration or child process (a child failing at start-up would be restarted forever).
    channel_registry.check(settings, config_file)
    if role == "worker":
        run(settings, _worker(settings))
        return
    if workers <= 1:
        run(settings, _api(settings, host, port, run_ticks=role == "all"))
        return
    # Metrics of the children add up in one folder (prometheus-client's multiprocess mode); the
    # variable must be set before a child imports the client, hence spawned children only.
    with contextlib.ExitStack() as stack:
        if not os.environ.get(metrics.MULTIPROC_ENV):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="calgate-metrics-"))
            os.environ[metrics.MULTIPROC_ENV] = folder
        asyncio.run(_migrate(settings))  # once, before any child serves
        sock = stack.enter_context(_bind(host, port))
        children = [_Child("api", config_file, sock) for _ in range(workers)]
        if role == "all":
            children.append(_Child("worker", config_file, None))
        log.info("serving", extra={"workers": workers, "role": role})
        asyncio.run(_supervisor(settings, children))
