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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from amazon_sc_assets.flat_file.columns import (
    LINEAGE_COLUMN_TYPES,
    ORDER_ID_COLUMN,
    POLARS_TYPES,
    ColumnType,
    column_type,
    normalize_header,
    parse_column_types,
)
from amazon_sc_assets.flat_file.decode import DocumentText, UndecodableBytesError, codecs_to_try
from amazon_sc_assets.flat_file.errors import (
    MAX_EXAMPLES,
    CharsetError,
    FieldCountError,
    InvalidColumnValues,
    InvalidValueError,
    ReportDocumentError,
)

logger = logging.getLogger(__name__)

# Characters of a non-report document quoted in ReportDocumentError.
DOCUMENT_TEXT_CHARS = 2_000

# Accepted spellings per type. Values must match the pattern and then parse; anything else is
# an error, never a null, because Polars' own casts round "1.999" to 2.00 and read "1e3".
_VALUE_PATTERNS: dict[ColumnType, str] = {
    ColumnType.INTEGER: r"^[+-]?[0-9]{1,18}$",
    # Decimal(18, 2) leaves 16 digits before the point.
    ColumnType.DECIMAL: r"^[+-]?[0-9]{1,16}(\.[0-9]{1,2})?$",
    ColumnType.TIMESTAMP: (
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
        r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
    ),
    ColumnType.BOOLEAN: r"^(?i)(true|false)$",
}
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"

_LINE = "_line"
_LINE_NUMBER = "_file_line_number"
_ORDER_LINE_NUMBER = "_order_line_number"
_ROWS_SEEN = "_rows_seen"
_KEY = "_key"
_NUMBER_KEY = "_order_id_number"
_TEXT_KEY = "_order_id_text"


@dataclass(frozen=True)
class Lineage:
    """Where a document's rows came from, added to every row as lineage columns.

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
    batch_rows: int = 250_000,
) -> ParsedDocument:
    """Decode, validate and type an order-report flat file, writing it to Parquet in batches.

    Columns are mapped by header name. Documented columns are typed (see
    `columns.DOCUMENTED_COLUMN_TYPES`); other columns are strings. An empty field becomes null
    in every column. The whole document is validated before the call returns, so an invalid
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
        batch_rows: Rows per batch and Parquet file; peak memory grows with this, not with the
            document size.

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
                "Report %s declares no charset and is not UTF-8 (%s); decoded it as %s",
                lineage.report_id,
                failures[0].detail,
                codec,
            )
        return parsed

    attempts = "; ".join(f"as {failure.codec}, {failure.detail}" for failure in failures)
    raise CharsetError(
        f"{path} declares no charset and decodes neither as UTF-8 nor as cp1252 ({attempts}). "
        "Pass the charset the document was written in."
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

    writer = _BatchWriter(names, types, lineage, output_dir)
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
                f"Lineage.{attribute} is {value.isoformat()}, a naive datetime; pass a "
                "timezone-aware datetime such as datetime(..., tzinfo=UTC)."
            )


def _header_fields(header_line: bytes, first_block: bytes) -> list[str]:
    """Split the header row, or raise ReportDocumentError when the document is no report."""
    header = header_line.decode("utf-8")

    # Amazon sometimes completes a report whose document is a sentence ("Date range exceeded.
    # Report can be requested only upto 30 days") or a JSON error instead of a table.
    if "\t" in header and not header.lstrip().startswith(("{", "[", "<")):
        return header.split("\t")

    # The slice may cut a character in two; "ignore" drops only that partial character.
    document_text = first_block[: DOCUMENT_TEXT_CHARS * 4].decode("utf-8", "ignore")
    document_text = document_text[:DOCUMENT_TEXT_CHARS]
    if not document_text.strip():
        raise ReportDocumentError(
            "The report document is empty; an order report has at least a header row. "
            "Request the report again, and check that the data window is at most 30 days.",
            document_text=document_text,
        )
    raise ReportDocumentError(
        "The report document is not a tab-separated order report. It starts with: "
        f"{document_text[:300]!r}. Fix the request that the message describes, then request "
        "the report again.",
        document_text=document_text,
    )


@dataclass(frozen=True)
class _LineBatch:
    """Whole UTF-8 lines of the document; every line but the document's last ends with a
    newline."""

    text: bytes
    line_count: int


def _line_batches(blocks: Iterable[bytes], batch_rows: int) -> Iterator[_LineBatch]:
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
            yield _LineBatch(b"".join(pending), pending_lines)
            pending = []
            pending_lines = 0

    if pending:
        yield _LineBatch(b"".join(pending), pending_lines)


class _BatchWriter:
    """Validate, type and write batches of raw lines to numbered Parquet files.

    After the first invalid batch it only validates, so that the final error can give the
    number of offending lines in the whole document.
    """

    def __init__(
        self,
        names: list[str],
        types: Mapping[str, ColumnType],
        lineage: Lineage,
        output_dir: Path,
    ) -> None:
        self._names = names
        self._types = types
        self._output_dir = output_dir
        self._lineage_values = [
            pl.lit(lineage.report_id, pl.String()).alias("_report_id"),
            _utc_literal(lineage.data_start_time).alias("_data_start_time"),
            _utc_literal(lineage.data_end_time).alias("_data_end_time"),
            _utc_literal(lineage.loaded_at).alias("_loaded_at"),
        ]
        self._order_rows = _OrderRowCounter()
        self._field_count_examples: list[tuple[int, int]] = []
        self._field_count_lines = 0
        self._invalid_values: dict[str, _InvalidValues] = {}
        self.part_paths: list[Path] = []
        self.row_count = 0

    def write(self, batch: _LineBatch, *, first_line_number: int) -> None:
        """Validate and type one batch, and write it unless the document has errors so far."""
        rows = self._read_fields(batch, first_line_number)
        typed = self._type_values(rows)
        if self._field_count_lines or self._invalid_values:
            return

        typed = self._order_rows.number(typed)
        typed = typed.select(
            *self._names,
            *self._lineage_values,
            pl.col(_LINE_NUMBER),
            pl.col(_ORDER_LINE_NUMBER),
        )
        self._write_part(typed)
        self.row_count += typed.height

    def finish(self) -> None:
        """Raise the collected errors, or write an empty part when the document had no rows."""
        if self._field_count_lines:
            raise self._field_count_error()
        if self._invalid_values:
            raise self._invalid_value_error()
        if not self.part_paths:
            self._write_part(pl.DataFrame(schema=self._output_schema()))

    def _read_fields(self, batch: _LineBatch, first_line_number: int) -> pl.DataFrame:
        """Return the batch's lines split into string columns, with their line numbers.

        Lines whose field count differs from the header's are recorded and left out.
        """
        expected_tabs = (len(self._names) - 1) * batch.line_count
        if len(self._names) > 1 and batch.text.count(b"\t") == expected_tabs:
            # With the expected total of tabs, a line with too few fields implies another
            # with too many, which the CSV reader rejects. So if it succeeds, every line has
            # exactly the header's field count. A blank line has too few fields.
            try:
                fields = pl.read_csv(
                    batch.text,
                    has_header=False,
                    separator="\t",
                    quote_char=None,
                    comment_prefix=None,
                    eol_char="\n",
                    schema=dict.fromkeys(self._names, pl.String()),
                )
            except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
                fields = None
            if fields is not None and fields.height == batch.line_count:
                line_numbers = pl.int_range(
                    first_line_number, first_line_number + fields.height, dtype=pl.Int64()
                )
                return fields.select(line_numbers.alias(_LINE_NUMBER), pl.all())

        return self._split_lines(batch, first_line_number)

    def _split_lines(self, batch: _LineBatch, first_line_number: int) -> pl.DataFrame:
        """Split the batch line by line, recording lines with the wrong field count.

        Slower than the CSV reader, so it runs only for a batch that has such lines, or when
        the header has a single column.
        """
        text = batch.text.decode("utf-8").removesuffix("\n")
        lines = pl.Series(_LINE, [text]).str.split("\n").explode().str.strip_suffix("\r")
        line_numbers = pl.int_range(
            first_line_number, first_line_number + lines.len(), dtype=pl.Int64(), eager=True
        )
        lines = pl.DataFrame([line_numbers.alias(_LINE_NUMBER), lines])

        field_counts = pl.col(_LINE).str.count_matches("\t", literal=True) + 1
        lines = lines.with_columns(field_counts.alias("_field_count"))
        bad = lines.filter(pl.col("_field_count") != len(self._names))
        if not bad.is_empty():
            self._field_count_lines += bad.height
            room = MAX_EXAMPLES - len(self._field_count_examples)
            examples = bad.head(room).select(_LINE_NUMBER, "_field_count").rows()
            self._field_count_examples.extend(examples)
            lines = lines.filter(pl.col("_field_count") == len(self._names))

        split = pl.col(_LINE).str.split_exact("\t", len(self._names) - 1)
        return lines.select(
            pl.col(_LINE_NUMBER), split.struct.rename_fields(self._names).alias(_LINE)
        ).unnest(_LINE)

    def _type_values(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Convert each column to its type, recording values that do not parse.

        An empty field is null in every column, whichever way the batch was split.
        """
        conversions: list[pl.Expr] = []
        invalid_flags: list[pl.Expr] = []
        for name in self._names:
            value = pl.col(name)
            present = value.is_not_null() & (value.str.len_bytes() > 0)
            converted = _convert(value, self._types[name])
            conversions.append(pl.when(present).then(converted).alias(name))
            if self._types[name] is not ColumnType.STRING:
                is_valid = value.str.contains(_VALUE_PATTERNS[self._types[name]]) & (
                    converted.is_not_null()
                )
                invalid_flags.append((present & ~is_valid).alias(f"_invalid_{name}"))

        if invalid_flags:
            flags = rows.select(pl.col(_LINE_NUMBER), *self._names, *invalid_flags)
            self._record_invalid_values(flags)
        return rows.select(pl.col(_LINE_NUMBER), *conversions)

    def _record_invalid_values(self, flags: pl.DataFrame) -> None:
        invalid_columns = [name for name in self._names if f"_invalid_{name}" in flags.columns]
        counts = flags.select(pl.col(f"_invalid_{name}").sum() for name in invalid_columns).row(0)
        for name, count in zip(invalid_columns, counts, strict=True):
            if not count:
                continue
            invalid = self._invalid_values.setdefault(name, _InvalidValues())
            invalid.value_count += count
            room = MAX_EXAMPLES - len(invalid.examples)
            rows = flags.filter(pl.col(f"_invalid_{name}")).head(room).select(_LINE_NUMBER, name)
            invalid.examples.extend(rows.rows())

    def _write_part(self, frame: pl.DataFrame) -> None:
        part_path = self._output_dir / f"part-{len(self.part_paths):05d}.parquet"
        # LZ4 because the files are temporary: it writes faster than the default zstd.
        frame.write_parquet(part_path, compression="lz4")
        self.part_paths.append(part_path)

    def _output_schema(self) -> dict[str, pl.DataType]:
        schema = {name: POLARS_TYPES[self._types[name]] for name in self._names}
        return {**schema, **LINEAGE_COLUMN_TYPES}

    def _field_count_error(self) -> FieldCountError:
        expected = len(self._names)
        shown = ", ".join(
            f"line {line_number} has {field_count}"
            for line_number, field_count in self._field_count_examples
        )
        return FieldCountError(
            f"{self._field_count_lines} line(s) do not have the header's {expected} "
            f"tab-separated fields: {shown}. The document is truncated or a value contains a "
            "tab or newline; request the report again, and report the document to Amazon if "
            "the lines stay wrong.",
            expected_fields=expected,
            line_numbers=[line_number for line_number, _ in self._field_count_examples],
            line_count=self._field_count_lines,
        )

    def _invalid_value_error(self) -> InvalidValueError:
        columns = [
            InvalidColumnValues(
                column=name,
                column_type=self._types[name].value,
                examples=tuple(invalid.examples),
                value_count=invalid.value_count,
            )
            for name, invalid in self._invalid_values.items()
        ]
        descriptions = []
        for column in columns:
            shown = ", ".join(f"line {line} {value[:80]!r}" for line, value in column.examples)
            descriptions.append(
                f"column {column.column!r} has {column.value_count} value(s) that are not a "
                f"valid {column.column_type} ({shown})"
            )
        overrides = ", ".join(f"{column.column!r}: 'string'" for column in columns)
        return InvalidValueError(
            "The report has values that do not parse: "
            + "; ".join(descriptions)
            + f". To load such columns as text, pass column_types={{{overrides}}}.",
            columns=columns,
        )


class _OrderRowCounter:
    """Numbers each row among the rows of its amazon_order_id, continuing across batches.

    It keeps the row count of every order id seen so far, so its memory grows with the number
    of distinct orders (about 16 bytes each for ids in Amazon's 3-7-7 digit format, which are
    stored as integers, and the id's length plus about 24 bytes for other ids).
    """

    def __init__(self) -> None:
        self._rows_by_number = pl.DataFrame(schema={_KEY: pl.UInt64(), _ROWS_SEEN: pl.Int64()})
        self._rows_by_text = pl.DataFrame(schema={_KEY: pl.String(), _ROWS_SEEN: pl.Int64()})

    def number(self, typed: pl.DataFrame) -> pl.DataFrame:
        """Return `typed` with the _order_line_number column added."""
        order_id = pl.col(ORDER_ID_COLUMN)
        is_amazon_format = order_id.str.contains(r"^[0-9]{3}-[0-9]{7}-[0-9]{7}$").fill_null(False)
        digits = order_id.str.replace_all("-", "", literal=True).cast(pl.UInt64(), strict=False)
        position_in_batch = pl.int_range(1, pl.len() + 1, dtype=pl.Int64()).over(ORDER_ID_COLUMN)
        typed = typed.with_columns(
            position_in_batch.alias(_ORDER_LINE_NUMBER),
            pl.when(is_amazon_format).then(digits).alias(_NUMBER_KEY),
            # A blank order id is null; "" stands for it, as no field is ever "".
            pl.when(~is_amazon_format).then(order_id.fill_null("")).alias(_TEXT_KEY),
        )

        typed = typed.join(
            self._rows_by_number.rename({_ROWS_SEEN: "_rows_seen_number"}),
            left_on=_NUMBER_KEY,
            right_on=_KEY,
            how="left",
            maintain_order="left",
        ).join(
            self._rows_by_text.rename({_ROWS_SEEN: "_rows_seen_text"}),
            left_on=_TEXT_KEY,
            right_on=_KEY,
            how="left",
            maintain_order="left",
        )
        rows_seen = pl.coalesce("_rows_seen_number", "_rows_seen_text", pl.lit(0, pl.Int64()))
        typed = typed.with_columns(pl.col(_ORDER_LINE_NUMBER) + rows_seen)

        # An order's highest line number in this batch is its row count so far. Replacing
        # those entries costs a hash probe per stored order, far less than regrouping.
        rows_so_far = typed.group_by(_NUMBER_KEY, _TEXT_KEY).agg(
            pl.col(_ORDER_LINE_NUMBER).max().alias(_ROWS_SEEN)
        )
        self._rows_by_number = self._replace(self._rows_by_number, rows_so_far, _NUMBER_KEY)
        self._rows_by_text = self._replace(self._rows_by_text, rows_so_far, _TEXT_KEY)
        return typed.drop(_NUMBER_KEY, _TEXT_KEY, "_rows_seen_number", "_rows_seen_text")

    @staticmethod
    def _replace(table: pl.DataFrame, rows_so_far: pl.DataFrame, key: str) -> pl.DataFrame:
        updates = rows_so_far.filter(pl.col(key).is_not_null()).select(
            pl.col(key).alias(_KEY), pl.col(_ROWS_SEEN)
        )
        unchanged = table.join(updates, on=_KEY, how="anti")
        return pl.concat([unchanged, updates])


@dataclass
class _InvalidValues:
    value_count: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)


def _convert(value: pl.Expr, target: ColumnType) -> pl.Expr:
    """Return `value` (a String expression) converted to `target`, null where it fails."""
    if target is ColumnType.STRING:
        return value
    if target is ColumnType.TIMESTAMP:
        return value.str.to_datetime(_TIMESTAMP_FORMAT, time_unit="us", strict=False)
    if target is ColumnType.BOOLEAN:
        lowered = value.str.to_lowercase()
        return pl.when(lowered == "true").then(True).when(lowered == "false").then(False)
    return value.cast(POLARS_TYPES[target], strict=False)


def _utc_literal(value: datetime) -> pl.Expr:
    return pl.lit(value).cast(pl.Datetime("us", "UTC"))
