"""`calgate serve`'s HTTP stack: httptools and uvloop (dependencies), h11 and asyncio when
`server.fast_http` is off (the pure-Python fallback, also used when they are not installed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway import serve
from tests.conftest import make_settings


async def _app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not called")


def _loop_kind(settings: object) -> str:
    seen: list[str] = []

    async def which() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    serve.run(settings, which())  # type: ignore[arg-type]
    return seen[0]


def test_fast_stack_by_default_and_pure_python_when_off(tmp_path: Path):
    fast = make_settings(tmp_path)
    off = make_settings(tmp_path, server_fast_http=False)
    assert serve.uvicorn_config(fast, _app, "127.0.0.1", 8400).http == "httptools"
    assert _loop_kind(fast).startswith("uvloop")
    assert serve.uvicorn_config(off, _app, "127.0.0.1", 8400).http == "h11"
    assert _loop_kind(off).startswith("asyncio")
