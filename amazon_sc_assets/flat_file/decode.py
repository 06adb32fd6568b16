"""Charset handling: strict, streaming decoding of a report document into text blocks.

Amazon writes order reports in the charset that the download's Content-Type names: UTF-8 in most
marketplaces, cp1252 ("Cp1252") in some EU ones, cp932 ("windows-31j") in Japan. Polars reads
only UTF-8, so the parser decodes the document here, block by block, and hands Polars the text.
The document is read with plain reads, not memory-mapped, so resident memory stays bounded by
the block and batch sizes.
"""

import codecs
from collections.abc import Iterator
from pathlib import Path

from amazon_sc_assets.flat_file.errors import CharsetError

# Bytes read from the document per step, so memory use does not depend on the document size.
READ_BLOCK_BYTES = 4 * 1024 * 1024

# Tried in this order when the download declares no charset.
FALLBACK_CHARSETS = ("utf-8", "cp1252")

REPLACEMENT_CHARACTER = "\ufffd"
UTF8_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


def resolve_codec(charset: str) -> str:
    """Return the canonical Python codec name for a charset name, e.g. "utf8" gives "utf-8".

    Raises:
        CharsetError: Python has no such codec, or the codec does not encode tab, newline
            and ASCII letters as single ASCII bytes (UTF-16 and UTF-32, for example).
    """
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        raise CharsetError(
            f"Unknown charset {charset!r}. Pass a Python codec name such as 'utf-8', 'cp1252' "
            "or 'cp932' (Java's 'Cp1252' and 'windows-31j' map to 'cp1252' and 'cp932')."
        ) from None

    sample = "amazon-order-id\t\r\n"
    try:
        ascii_compatible = sample.encode(codec) == sample.encode("ascii")
    except (UnicodeError, LookupError):
        ascii_compatible = False
    if not ascii_compatible:
        raise CharsetError(
            f"Charset {charset!r} does not encode ASCII text as ASCII bytes, so the document "
            "cannot be a tab-separated order report in it. Check the charset in the "
            "download's Content-Type."
        )
    return codec


def codecs_to_try(charset: str | None) -> tuple[str, ...]:
    """Return the codecs to decode a document with, in order.

    A declared charset is the only candidate. Without one, strict UTF-8 comes first and cp1252
    second. cp1252 text with non-ASCII letters is almost never valid UTF-8, but UTF-8 text is
    nearly always valid cp1252, so the reverse order would silently produce mojibake.
    """
    if charset is None:
        return FALLBACK_CHARSETS
    return (resolve_codec(charset),)


class UndecodableBytesError(CharsetError):
    """Bytes that a codec cannot decode.

    Attributes:
        codec: The Python codec name.
        byte_offset: The 0-based offset of the first invalid byte in the document.
        line_number: The 1-based line that contains it.
        detail: The invalid bytes, their offset and line, and the codec's reason.
    """

    def __init__(
        self, message: str, *, codec: str, byte_offset: int, line_number: int, detail: str
    ) -> None:
        super().__init__(message)
        self.codec = codec
        self.byte_offset = byte_offset
        self.line_number = line_number
        self.detail = detail


class DocumentText:
    """Strict, streaming decoder of a report document into UTF-8 blocks of whole lines.

    Each block ends with a newline, except the last block when the document has no final
    newline. A UTF-8 byte order mark at the start is dropped. Iterate `utf8_blocks` once.

    Attributes:
        codec: The Python codec name the document is decoded with.
        replacement_characters: The number of U+FFFD characters decoded so far.
    """

    def __init__(self, path: Path, codec: str) -> None:
        self.path = path
        self.codec = codec
        self.replacement_characters = 0

    def utf8_blocks(self) -> Iterator[bytes]:
        """Yield the document as UTF-8 in blocks of whole lines.

        UTF-8 documents are validated and passed through unchanged, and others are transcoded.

        Raises:
            UndecodableBytesError: The document is invalid in the codec.
        """
        decoder = codecs.getincrementaldecoder(self.codec)("strict")
        transcode = self.codec != "utf-8"
        block_offset = 0
        newlines_before_block = 0
        unfinished_line = b""

        with self.path.open("rb") as source:
            while True:
                block = source.read(READ_BLOCK_BYTES)
                final = not block
                try:
                    text = decoder.decode(block, final=final)
                except UnicodeDecodeError as error:
                    raise self._undecodable(
                        error, block, block_offset, newlines_before_block
                    ) from None

                # U+FFFD marks text the producer could not represent. A "?" that replaced an
                # unencodable character (cp1252 documents contain these) is indistinguishable
                # from a real "?", so it is kept as data and not counted.
                self.replacement_characters += text.count(REPLACEMENT_CHARACTER)

                # Splitting the raw bytes at b"\n" is safe because the codec is
                # ASCII-compatible, so a newline byte is never part of another character.
                utf8 = text.encode("utf-8") if transcode else block
                if block_offset == 0:
                    utf8 = utf8.removeprefix(UTF8_BYTE_ORDER_MARK)
                utf8 = unfinished_line + utf8
                if final:
                    if utf8:
                        yield utf8
                    return
                end_of_last_line = utf8.rfind(b"\n") + 1
                unfinished_line = utf8[end_of_last_line:]
                if end_of_last_line:
                    yield utf8[:end_of_last_line]
                block_offset += len(block)
                newlines_before_block += block.count(b"\n")

    def _undecodable(
        self,
        error: UnicodeDecodeError,
        block: bytes,
        block_offset: int,
        newlines_before_block: int,
    ) -> UndecodableBytesError:
        # error.object ends with `block` but may start with the bytes of an incomplete
        # character left over from the previous block. Those never contain a newline, because
        # the codec is ASCII-compatible, so the line count stays correct.
        object_offset = block_offset + len(block) - len(error.object)
        byte_offset = object_offset + error.start
        newlines_in_block = block[: max(0, byte_offset - block_offset)].count(b"\n")
        line_number = newlines_before_block + newlines_in_block + 1
        invalid_bytes = " ".join(f"0x{byte:02X}" for byte in error.object[error.start : error.end])
        detail = (
            f"byte(s) {invalid_bytes} at byte offset {byte_offset} (line {line_number}) cannot "
            f"be decoded ({error.reason})"
        )
        return UndecodableBytesError(
            f"{self.path} is not valid {self.codec}: {detail}. Check the charset in the "
            "download's Content-Type and pass the charset the document was written in.",
            codec=self.codec,
            byte_offset=byte_offset,
            line_number=line_number,
            detail=detail,
        )
