"""The `calgate` command: serve, migrate, account, key, export, import, secrets, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select

from gateway import cli_data, heap, logs
from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.demo import create_demo, next_steps
from gateway.domain import accounts
from gateway.errors import CalgateError, ConfigError
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.models import Account


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


@contextlib.asynccontextmanager
async def _migrated_store(settings: Settings) -> AsyncIterator[Store]:
    """The store of the settings, migrated to the newest schema, closed afterwards."""
    store = Store.from_url(settings.database_url, echo=settings.database_echo, settings=settings)
    try:
        await migrate.upgrade(store)
        yield store
    finally:
        await store.close()


async def _serve(settings: Settings, host: str, port: int) -> None:
    async with _migrated_store(settings) as store:
        app = create_app(settings, store)
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
        )
        heap.settle_after_startup()
        await _Server(config).serve()


async def _migrate(settings: Settings) -> None:
    async with _migrated_store(settings):
        print("database schema is current")


async def _account_create(
    settings: Settings, name: str, zone: str | None, country: str | None
) -> None:
    async with _migrated_store(settings) as store, store.transaction() as session:
        account, issued = await accounts.create_account(
            session,
            name,
            timezone=zone or settings.default_timezone,
            country=country or settings.default_country,
        )
    print(f"account {account.id} created; its API key (shown once) is on the next line")
    print(issued.secret)


async def _account_list(settings: Settings) -> None:
    async with _migrated_store(settings) as store, store.transaction() as session:
        for acc in (await session.scalars(select(Account).order_by(Account.id))).all():
            print(f"{acc.id}\t{acc.timezone}\t{acc.country}\t{acc.name}")


async def _key_create(settings: Settings, account_id: str, name: str) -> None:
    async with _migrated_store(settings) as store, store.transaction() as session:
        account = await accounts.get_account(session, account_id)
        issued = await accounts.issue_key(session, account, name)
    print(f"key {issued.key.id} created; the key (shown once) is on the next line")
    print(issued.secret)


async def _with_store(
    settings: Settings, command: Callable[[Store, Settings, Any], Awaitable[None]], args: Any
) -> None:
    async with _migrated_store(settings) as store:
        await command(store, settings, args)


async def _demo(settings: Settings) -> None:
    async with _migrated_store(settings) as store, store.transaction() as session:
        account_id, secret = await create_demo(session)
    base = f"http://{settings.server_host}:{settings.server_port}"
    print(f"demo account {account_id} created with 3 practitioners, 3 clients, 9 appointments")
    print(next_steps(base, secret))
    print("API key (shown once):")
    print(secret)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; `calgate --help` lists every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, help="TOML settings file (default: config/calgate.toml if present)"
    )
    parser = argparse.ArgumentParser(
        prog="calgate",
        description="Calendar feeds, sync and notifications for booking products.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="migrate, then run the API and ticks")
    serve.add_argument("--host", help="listen address (default: server.host of the settings)")
    serve.add_argument(
        "--port", type=int, help="listen port (default: server.port of the settings)"
    )

    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date")

    account = sub.add_parser("account", parents=[common], help="manage accounts (tenants)")
    account_sub = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    create = account_sub.add_parser(
        "create", parents=[common], help="create an account; prints its API key on the last line"
    )
    create.add_argument("name")
    create.add_argument("--timezone", help="IANA zone (default: default_timezone setting)")
    create.add_argument("--country", help="ISO country code (default: default_country setting)")
    account_sub.add_parser("list", parents=[common], help="list accounts")
    cli_data.add_account_states(account_sub, common)

    key = sub.add_parser("key", parents=[common], help="manage API keys")
    key_sub = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    key_create = key_sub.add_parser(
        "create", parents=[common], help="create an API key; prints it on the last line"
    )
    key_create.add_argument("account_id")
    key_create.add_argument("--name", default="cli")

    cli_data.add_commands(sub, common)
    sub.add_parser(
        "demo", parents=[common], help="create a demo account and print curl commands to try"
    )
    return parser


def run(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        logs.configure(settings.log_level, settings.log_format)
        if args.command == "serve":
            asyncio.run(
                _serve(
                    settings, args.host or settings.server_host, args.port or settings.server_port
                )
            )
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "account" and args.account_command == "create":
            asyncio.run(_account_create(settings, args.name, args.timezone, args.country))
        elif args.command == "account" and args.account_command == "list":
            asyncio.run(_account_list(settings))
        elif args.command in cli_data.COMMANDS or args.command == "account":
            asyncio.run(_with_store(settings, cli_data.run, args))
        elif args.command == "key":
            asyncio.run(_key_create(settings, args.account_id, args.name))
        elif args.command == "demo":
            asyncio.run(_demo(settings))
    except ConfigError as exc:
        print(f"calgate: {exc.message}", file=sys.stderr)
        return 2
    except CalgateError as exc:
        print(f"calgate: {exc.message}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
