"""The `calgate` commands about an account's data: account states, export, import, secrets.

Each takes an open, migrated store (gateway/cli.py opens it) and calls the same services as
the API.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gateway import secrets_rotation
from gateway.config import Settings
from gateway.domain import account_states, accounts
from gateway.errors import UserError
from gateway.imports import service as imports
from gateway.privacy import export
from gateway.store.db import Store

COMMANDS = {"export", "import", "secrets"}
_READ = 256 * 1024


def add_account_states(account_sub: Any, common: argparse.ArgumentParser) -> None:
    """`calgate account suspend|resume|delete|expire ID`."""
    for action, text in (
        ("suspend", "suspend (payment failed): no reminders, feeds 410, syncs paused, API 402"),
        ("resume", "make active again, cancelling a scheduled deletion"),
        ("delete", "schedule deletion after accounts.deletion_grace_days (cancellation)"),
        ("expire", "schedule deletion after accounts.deletion_grace_days (trial or plan ended)"),
    ):
        state = account_sub.add_parser(action, parents=[common], help=text)
        state.add_argument("account_id")
        state.add_argument("--reason", default="", help="shown to the account's API callers")


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """`calgate export`, `calgate import`, `calgate secrets rotate`."""
    export_cmd = sub.add_parser(
        "export", parents=[common], help="write the account's data as JSON to standard output"
    )
    export_cmd.add_argument("account_id")

    import_cmd = sub.add_parser(
        "import", parents=[common], help="import clients (.csv) or appointments (.ics)"
    )
    import_cmd.add_argument("account_id")
    import_cmd.add_argument("file", type=Path)
    import_cmd.add_argument("--user", help="the practitioner of imported appointments (.ics)")
    import_cmd.add_argument(
        "--kind", choices=["clients", "appointments"], help="default: from the file's extension"
    )
    import_cmd.add_argument(
        "--notify",
        choices=["reminders", "none", "all"],
        default="reminders",
        help="imported appointments: reminders only (default: the old system confirmed them), "
        "none, or a confirmation too",
    )

    secrets_cmd = sub.add_parser("secrets", parents=[common], help="secrets stored at rest")
    secrets_sub = secrets_cmd.add_subparsers(dest="secrets_command", required=True)
    rotate = secrets_sub.add_parser(
        "rotate", parents=[common], help="re-encrypt every stored secret under the current key"
    )
    rotate.add_argument(
        "--new-key", action="store_true", help="first put a new key at the top of the key file"
    )
    rotate.add_argument(
        "--drop-old", action="store_true", help="afterwards remove old keys from the key file"
    )
    rotate.add_argument("--batch", type=int, default=200, help="rows per transaction")


async def run(store: Store, settings: Settings, args: Any) -> None:
    """Run the parsed command."""
    if args.command == "account":
        await _account_state(store, settings, args.account_command, args.account_id, args.reason)
    elif args.command == "export":
        await _export(store, args.account_id)
    elif args.command == "import":
        await _import(store, args)
    else:
        await _rotate(store, settings, args)


async def _account_state(
    store: Store, settings: Settings, action: str, account_id: str, reason: str
) -> None:
    async with store.transaction() as session:
        account = await accounts.get_account(session, account_id)
        if action == "suspend":
            await account_states.suspend(session, account, reason or "payment failed")
        elif action == "resume":
            await account_states.resume(session, account)
        else:
            due = await account_states.schedule_deletion(
                session,
                account,
                reason=reason or ("expired" if action == "expire" else "deletion requested"),
                grace_days=settings.accounts_deletion_grace_days,
            )
            print(f"account {account.id} will be deleted at {due.isoformat()}")
        print(f"account {account.id} is {account.status}")


async def _export(store: Store, account_id: str) -> None:
    async with store.transaction() as session:
        await accounts.get_account(session, account_id)
    out = sys.stdout.buffer
    async for chunk in export.account_export(store, account_id):
        out.write(chunk)
    out.flush()


async def _chunks(path: Path, bar: tqdm[Any]) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_READ):
            bar.update(len(chunk))
            yield chunk


def _size_of(path: Path) -> int:
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    return path.stat().st_size


async def _import(store: Store, args: Any) -> None:
    path: Path = args.file
    size = _size_of(path)
    kind = args.kind or ("appointments" if path.suffix.lower() == ".ics" else "clients")
    if kind == "appointments" and not args.user:
        raise UserError("importing appointments needs --user USER_ID (their practitioner)")
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="import", file=sys.stderr)
    try:
        async with store.transaction() as session:
            account = await accounts.get_account(session, args.account_id)
            report = await imports.run_import(
                session, account, kind, _chunks(path, bar), user_id=args.user, notify=args.notify
            )
    finally:
        bar.close()
    print(json.dumps(report.as_dict(), indent=2))


async def _rotate(store: Store, settings: Settings, args: Any) -> None:
    if args.new_key:
        secrets_rotation.add_new_key(settings)
        print("a new key is at the top of the key file; the old ones still decrypt")
    bar = tqdm(total=await secrets_rotation.count(store), unit="row", file=sys.stderr)
    try:
        report = await secrets_rotation.rotate(
            store, settings, batch=args.batch, progress=bar.update
        )
    finally:
        bar.close()
    print(
        f"{report.rotated} re-encrypted, {report.current} already under the current key, "
        f"{report.unreadable} unreadable with every key"
    )
    if args.drop_old:
        dropped = await secrets_rotation.drop_old_keys(store, settings)
        print(f"{dropped} old key(s) removed from the key file")
