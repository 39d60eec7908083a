"""The file of a multipart/form-data upload (a browser form, `curl -F file=@clients.csv`), read
as it arrives with python-multipart's streaming parser: never spooled to a temporary file (as
Starlette's UploadFile does past 1 MB), never held whole in memory.

Only the part named `file` is kept; other fields are skipped without being stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from gateway.errors import ValidationFailed

FIELD = "file"


@dataclass
class _State:
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, bytes] = field(default_factory=dict)
    in_file: bool = False
    found: bool = False  # the file part's headers have been read
    done: bool = False  # the file part has ended
    file_type: str = ""
    data: list[bytes] = field(default_factory=list)


def _parser(boundary: bytes, st: _State) -> MultipartParser:
    def on_part_begin() -> None:
        st.headers = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        st.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        st.header_value += data[start:end]

    def on_header_end() -> None:
        st.headers[bytes(st.header_field).decode("latin-1").lower()] = bytes(st.header_value)
        st.header_field.clear()
        st.header_value.clear()

    def on_headers_finished() -> None:
        _, params = parse_options_header(st.headers.get("content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == FIELD and not st.found:
            st.in_file = st.found = True
            media, _ = parse_options_header(st.headers.get("content-type", b""))
            st.file_type = media.decode("latin-1").lower()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if st.in_file:
            st.data.append(bytes(data[start:end]))

    def on_part_end() -> None:
        if st.in_file:
            st.in_file = False
            st.done = True

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    return MultipartParser(boundary, callbacks)  # type: ignore[arg-type]


@dataclass
class FormFile:
    """The `file` part: the content type it was declared with, and its bytes as they come."""

    content_type: str
    chunks: AsyncIterator[bytes]


async def form_file(chunks: AsyncIterator[bytes], content_type: str) -> FormFile:
    """Read the form up to the headers of its `file` part (422 when there is none, or the body
    is not well-formed multipart); the part's bytes then stream from `FormFile.chunks`."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ValidationFailed.one("Content-Type", "multipart/form-data needs a boundary")
    st = _State()
    parser = _parser(boundary, st)
    source = chunks.__aiter__()

    async def feed() -> bool:
        chunk = await anext(source, None)
        try:
            if chunk is None:
                parser.finalize()
                return False
            parser.write(chunk)
        except MultipartParseError:
            raise ValidationFailed.one(
                "file", "the form (multipart/form-data) is malformed"
            ) from None
        return True

    while not st.found:
        if not await feed():
            raise ValidationFailed.one(FIELD, f"send the file in a form field named {FIELD!r}")

    async def rest() -> AsyncIterator[bytes]:
        while True:
            if st.data:
                piece = b"".join(st.data)
                st.data.clear()
                yield piece
            if st.done:
                return
            if not await feed():
                raise ValidationFailed.one(FIELD, "the form ends in the middle of the file")

    return FormFile(st.file_type, rest())
