"""Gzip report documents on disk and the presigned-style URLs that serve them."""

import gzip
import hashlib
import hmac
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# Charset names as Amazon writes them in the download's Content-Type, mapped to Python codecs.
CHARSET_CODECS: dict[str, str] = {
    "UTF-8": "utf-8",
    "Cp1252": "cp1252",
    "Windows-31J": "cp932",
}

# The one real US sample of these reports has CRLF line endings.
LINE_TERMINATOR = "\r\n"

AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

DOWNLOAD_CHUNK_BYTES = 64 * 1024


def codec_for_charset(charset: str) -> str:
    """Return the Python codec for an Amazon charset name.

    Raises:
        ValueError: when the charset is not one the emulator serves.
    """
    try:
        return CHARSET_CODECS[charset]
    except KeyError:
        raise ValueError(
            f"Unsupported charset {charset!r}: expected one of {sorted(CHARSET_CODECS)}."
        ) from None


def content_type(charset: str) -> str:
    """Return the download's Content-Type, spelled as Amazon sends it."""
    return f"text/plain;charset={charset}"


def write_flat_file(path: Path, header: list[str], rows: Iterable[list[str]], charset: str) -> int:
    """Write a gzip tab-separated flat file row by row and return the number of data rows.

    Characters the charset cannot encode become `?`, as in Amazon's documents. Rows are
    streamed into the gzip file, so memory use does not grow with the row count.
    """
    row_count = 0
    with (
        gzip.open(path, "wb") as compressed,
        io.TextIOWrapper(
            compressed, encoding=codec_for_charset(charset), errors="replace", newline=""
        ) as text,
    ):
        text.write("\t".join(header) + LINE_TERMINATOR)
        for row in rows:
            text.write("\t".join(row) + LINE_TERMINATOR)
            row_count += 1
    return row_count


def write_text_document(path: Path, text: str, charset: str) -> None:
    """Write `text` gzip-compressed in `charset`, with no header and no final newline."""
    with gzip.open(path, "wb") as compressed:
        compressed.write(text.encode(codec_for_charset(charset), errors="replace"))


def write_error_document(path: Path, error_details: str, charset: str) -> None:
    """Write the JSON error document of a FATAL report, `{"errorDetails": ...}`."""
    write_text_document(path, json.dumps({"errorDetails": error_details}), charset)


@dataclass(frozen=True)
class UrlSigner:
    """Sign and verify document URLs that carry their own issue time and lifetime.

    The query parameters follow S3 presigned URLs: X-Amz-Date (issue time, YYYYMMDDTHHMMSSZ),
    X-Amz-Expires (lifetime in seconds) and X-Amz-Signature (HMAC-SHA256 over the path, those
    two values and the optional `response-content-encoding`).
    """

    key: bytes

    def sign(
        self, path: str, issued: datetime, lifetime_seconds: int, content_encoding: str | None
    ) -> str:
        """Return the query string for `path`, valid `lifetime_seconds` after `issued`."""
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": issued.astimezone(UTC).strftime(AMZ_DATE_FORMAT),
            "X-Amz-Expires": str(lifetime_seconds),
            "X-Amz-SignedHeaders": "host",
        }
        if content_encoding is not None:
            params["response-content-encoding"] = content_encoding
        params["X-Amz-Signature"] = self._signature(path, params)
        return urlencode(params)

    def verify(self, path: str, params: dict[str, str], now: datetime) -> str | None:
        """Check a download request; return None if valid, else `expired` or `signature`."""
        signature = params.get("X-Amz-Signature", "")
        if not hmac.compare_digest(signature, self._signature(path, params)):
            return "signature"
        try:
            issued = datetime.strptime(params["X-Amz-Date"], AMZ_DATE_FORMAT).replace(tzinfo=UTC)
            lifetime = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            return "signature"
        if now > issued + timedelta(seconds=lifetime):
            return "expired"
        return None

    def _signature(self, path: str, params: dict[str, str]) -> str:
        message = "\n".join(
            [
                path,
                params.get("X-Amz-Date", ""),
                params.get("X-Amz-Expires", ""),
                params.get("response-content-encoding", ""),
            ]
        )
        return hmac.new(self.key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def s3_error_xml(code: str, message: str, request_id: str, **extra: str) -> str:
    """Return an S3-style XML error body such as AccessDenied / Request has expired."""
    elements = "".join(f"<{name}>{value}</{name}>" for name, value in extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{elements}"
        f"<RequestId>{request_id}</RequestId></Error>"
    )


class DocumentFileResponse(Response):
    """Stream a document file from disk in chunks, optionally cut short.

    Args:
        path: the gzip document.
        headers: response headers, to which Content-Length is added from `declared_length`.
        send_bytes: how many bytes of the file to send.
        declared_length: the Content-Length to announce.
        complete: False ends the ASGI call without finishing the body, so the server closes
            the connection mid-body.
    """

    def __init__(
        self,
        path: Path,
        headers: dict[str, str],
        *,
        send_bytes: int,
        declared_length: int,
        complete: bool = True,
    ) -> None:
        super().__init__(headers={**headers, "content-length": str(declared_length)})
        self.path = path
        self.send_bytes = send_bytes
        self.complete = complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        remaining = self.send_bytes
        with self.path.open("rb") as file:
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(
                    file.read, min(DOWNLOAD_CHUNK_BYTES, remaining)
                )
                if not chunk:
                    break
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
