"""Parse an order-report flat file into typed Polars data, batch by batch, via Parquet.

The format is tab-separated text with no quoting: tab is the only delimiter and newline the only
record separator, so a product name such as `12" ruler` or `"Open quote` keeps its quotes and
never spans lines. A trailing CR of each line is removed.
"""

import itertools
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from amazon_sc_assets.flat_file.batch_writer import BatchWriter, LineBatch
from amazon_sc_assets.flat_file.columns import (
    LINEAGE_COLUMN_TYPES,
    ORDER_ID_COLUMN,
    ColumnType,
    column_type,
    normalize_header,
    parse_column_types,
    to_snake_case,
)
from amazon_sc_assets.flat_file.decode import DocumentText, UndecodableBytesError, codecs_to_try
from amazon_sc_assets.flat_file.errors import (
    CharsetError,
    ReportDocumentError,
)

logger = logging.getLogger(__name__)

# Measured on a 1M-row, 32-column document (2 vCPUs): 100,000-row batches parsed in 3.6 s with
# a 701 MiB peak, 250,000-row batches in 4.1 s with 948 MiB (one run each), so the smaller
# batches win on both.
DEFAULT_BATCH_ROWS = 100_000

# Characters of a non-report document quoted in ReportDocumentError.
DOCUMENT_TEXT_CHARS = 2_000


@dataclass(frozen=True)
class Lineage:
    """Origin of a document's rows, added to every row as lineage columns.

    Attributes:
        report_id: The SP-API reportId.
        data_start_time: The report's dataStartTime (timezone-aware).
        data_end_time: The report's dataEndTime (timezone-aware).
        loaded_at: When this load started (timezone-aware).
    """

    report_id: str
    data_start_time: datetime
    data_end_time: datetime
    loaded_at: datetime


@dataclass(frozen=True)
class ParsedDocument:
    """A parsed report document.

    Attributes:
        frame: A scan of the Parquet file(s) written under work_dir, rows in file order.
        row_count: The number of data rows (the header is not counted).
        columns: The snake_case column names in file order, then the lineage columns.
        charset: The Python codec the document was decoded with, e.g. "utf-8" or "cp1252".
        replacement_characters: The number of U+FFFD characters in the document. A "?" that
            the producer wrote for an unencodable character is indistinguishable from a real
            "?", so it is kept as data and not counted here.
    """

    frame: pl.LazyFrame
    row_count: int
    columns: list[str]
    charset: str
    replacement_characters: int


def parse_report_document(
    path: Path,
    charset: str | None,
    *,
    lineage: Lineage,
    work_dir: Path,
    column_types: Mapping[str, str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> ParsedDocument:
    """Decode, validate and type an order-report flat file, writing it to Parquet in batches.

    Columns are mapped by header name. Documented columns are typed (see
    `columns.DOCUMENTED_COLUMN_TYPES`), and other columns are strings. An empty field becomes
    null in every column. The whole document is validated before the call returns, so an invalid
    value anywhere fails the call and no partial output is left behind.

    Args:
        path: The decompressed report document.
        charset: The Python codec name from the download's Content-Type, or None when none
            was declared (then strict UTF-8 is tried, then cp1252).
        lineage: Report id, data window and load time, added to every row.
        work_dir: Directory for the Parquet files, in a new subdirectory per call. The caller
            deletes it once the frame is consumed.
        column_types: Type overrides by snake_case column name, each one of "string",
            "integer", "decimal", "timestamp" or "boolean", e.g. {"quantity": "string"}.
        batch_rows: Rows per batch and Parquet file. A batch ends at the first 4 MiB read block
            that completes `batch_rows` lines, so it can hold a few thousand more. Peak memory
            grows with this, not with the document size.

    Returns:
        The parsed document, with a lazy scan of its Parquet files.

    Raises:
        CharsetError: The bytes are invalid in the charset.
        ReportDocumentError: The document is empty or is not a tab-separated order report
            (for example Amazon's "Date range exceeded" text or a JSON error).
        HeaderError: The header is localized or has empty or colliding column names.
        FieldCountError: Data lines have a different field count than the header.
        InvalidValueError: Values in typed columns do not parse.
        ValueError: `column_types`, `lineage` or `batch_rows` is invalid.
    """
    overrides = parse_column_types(column_types)
    _validate_lineage(lineage)
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}.")
    work_dir.mkdir(parents=True, exist_ok=True)

    failures: list[UndecodableBytesError] = []
    for codec in codecs_to_try(charset):
        output_dir = Path(tempfile.mkdtemp(prefix="flat-file-", dir=work_dir))
        try:
            parsed = _parse_into(path, codec, lineage, overrides, batch_rows, output_dir)
        except UndecodableBytesError as error:
            shutil.rmtree(output_dir, ignore_errors=True)
            if charset is not None:
                raise
            failures.append(error)
            continue
        except BaseException:
            shutil.rmtree(output_dir, ignore_errors=True)
            raise
        if failures:
            logger.info(
                "Report %s declares no charset and is not UTF-8 (%s), so it was decoded as %s",
                lineage.report_id,
                failures[0].detail,
                codec,
            )
        return parsed

    attempts = "; ".join(f"as {failure.codec}, {failure.detail}" for failure in failures)
    raise CharsetError(
        f"{path} declares no charset and decodes neither as UTF-8 nor as cp1252 ({attempts}). "
        "Set the report asset's run config charset to the codec it was written in, such as "
        "cp932 for a Japanese document."
    )


def _parse_into(
    path: Path,
    codec: str,
    lineage: Lineage,
    overrides: Mapping[str, ColumnType],
    batch_rows: int,
    output_dir: Path,
) -> ParsedDocument:
    text = DocumentText(path, codec)
    blocks = text.utf8_blocks()
    first_block = next(blocks, b"")
    header_line, _, first_data = first_block.partition(b"\n")
    header_fields = _header_fields(header_line.removesuffix(b"\r"), first_block)

    names = normalize_header(header_fields)
    types = {name: column_type(name, overrides) for name in names}
    logger.info("Parsing report %s: %d columns, charset %s", lineage.report_id, len(names), codec)

    writer = BatchWriter(names, types, _lineage_values(lineage), output_dir)
    line_number = 2
    for batch in _line_batches(itertools.chain([first_data], blocks), batch_rows):
        writer.write(batch, first_line_number=line_number)
        line_number += batch.line_count
    writer.finish()

    if text.replacement_characters:
        logger.warning(
            "Report %s contains %d U+FFFD replacement characters",
            lineage.report_id,
            text.replacement_characters,
        )
    logger.info("Parsed report %s: %d rows", lineage.report_id, writer.row_count)

    return ParsedDocument(
        frame=pl.scan_parquet(writer.part_paths),
        row_count=writer.row_count,
        columns=[*names, *LINEAGE_COLUMN_TYPES],
        charset=codec,
        replacement_characters=text.replacement_characters,
    )


def _validate_lineage(lineage: Lineage) -> None:
    for attribute in ("data_start_time", "data_end_time", "loaded_at"):
        value = getattr(lineage, attribute)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"Lineage.{attribute} is {value.isoformat()}, a naive datetime. Pass a "
                "timezone-aware datetime such as datetime(..., tzinfo=UTC)."
            )


def _lineage_values(lineage: Lineage) -> list[pl.Expr]:
    return [
        pl.lit(lineage.report_id, pl.String()).alias("_report_id"),
        _utc_literal(lineage.data_start_time).alias("_data_start_time"),
        _utc_literal(lineage.data_end_time).alias("_data_end_time"),
        _utc_literal(lineage.loaded_at).alias("_loaded_at"),
    ]


def _utc_literal(value: datetime) -> pl.Expr:
    return pl.lit(value).cast(pl.Datetime("us", "UTC"))


def _header_fields(header_line: bytes, first_block: bytes) -> list[str]:
    """Split the header row, or raise ReportDocumentError when the document is no report."""
    header = header_line.decode("utf-8")

    # Amazon sometimes completes a report whose document is a sentence ("Date range exceeded.
    # Report can be requested only upto 30 days") or a JSON error instead of a table.
    is_table = "\t" in header or to_snake_case(header) == ORDER_ID_COLUMN
    if is_table and not header.lstrip().startswith(("{", "[", "<")):
        return header.split("\t")

    # The slice may cut a character in two, and "ignore" drops only that partial character.
    document_text = first_block[: DOCUMENT_TEXT_CHARS * 4].decode("utf-8", "ignore")
    document_text = document_text[:DOCUMENT_TEXT_CHARS]
    if not document_text.strip():
        raise ReportDocumentError(
            "The report document is empty, but an order report has at least a header row. "
            "Request the report again, and check that the data window is at most 30 days.",
            document_text=document_text,
        )
    raise ReportDocumentError(
        "The report document is not a tab-separated order report. It starts with: "
        f"{document_text[:300]!r}. Fix the request that the message describes, then request "
        "the report again.",
        document_text=document_text,
    )


def _line_batches(blocks: Iterable[bytes], batch_rows: int) -> Iterator[LineBatch]:
    """Group blocks of whole lines into batches of at least `batch_rows` lines.

    A batch ends at a block boundary, so it can exceed `batch_rows` by one block's lines.
    """
    pending: list[bytes] = []
    pending_lines = 0
    for block in blocks:
        if not block:
            continue
        pending.append(block)
        # Only the document's last block can end without a newline, after its last line.
        pending_lines += block.count(b"\n") + (not block.endswith(b"\n"))
        if pending_lines >= batch_rows:
            yield LineBatch(b"".join(pending), pending_lines)
            pending = []
            pending_lines = 0

    if pending:
        yield LineBatch(b"".join(pending), pending_lines)
