"""Turning an upload (an async stream of byte chunks) into text lines and CSV records, without
ever holding the whole file: memory is bounded by the longest record, whatever the file size."""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterator

from gateway.errors import PayloadTooLarge, ValidationFailed

# Records handed to the csv module at a time: enough to amortise the call, small in memory.
_BATCH_LINES = 512


async def limited(chunks: AsyncIterator[bytes], max_bytes: int | None) -> AsyncIterator[bytes]:
    """The chunks, refusing (413) as soon as more than `max_bytes` arrived."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise PayloadTooLarge(f"the file is over {max_bytes} bytes (imports.max_bytes)")
        yield chunk


async def text_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """UTF-8 lines (ends kept), a leading byte-order mark dropped; 422 when not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    try:
        async for chunk in chunks:
            pending += decoder.decode(chunk)
            # Split on "\n" only (a "\r\n" keeps its "\r" for the csv module); what follows
            # the last "\n" is a line cut in the middle: wait for the rest of it.
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line + "\n"
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValidationFailed.one(
            "file", "is not UTF-8 text: save it as 'CSV UTF-8' (Excel) or download it as CSV"
        ) from None
    if pending:
        yield pending


def sniff_delimiter(header: str) -> str:
    """``;`` or ``,`` (or a tab), whichever splits the header line most (outside quotes)."""
    counts = {d: 0 for d in (",", ";", "\t")}
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


async def csv_records(lines: AsyncIterator[str]) -> AsyncIterator[list[str]]:
    """CSV records (the first is the header), with quoted cells that span lines put together."""
    delimiter: str | None = None
    batch: list[str] = []
    quotes = 0
    async for line in lines:
        if delimiter is None:
            delimiter = sniff_delimiter(line)
        batch.append(line)
        quotes += line.count('"')
        # An even number of quotes so far: the batch ends outside a quoted cell.
        if quotes % 2 == 0 and len(batch) >= _BATCH_LINES:
            for record in csv.reader(batch, delimiter=delimiter, strict=False):
                yield record
            batch, quotes = [], 0
    if batch:
        for record in csv.reader(batch, delimiter=delimiter or ",", strict=False):
            yield record
