"""Validation, typing and Parquet output of report lines, one batch at a time."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from amazon_sc_assets.flat_file.columns import LINEAGE_COLUMN_TYPES, POLARS_TYPES, ColumnType
from amazon_sc_assets.flat_file.errors import (
    MAX_EXAMPLES,
    FieldCountError,
    InvalidColumnValues,
    InvalidValueError,
)
from amazon_sc_assets.flat_file.order_lines import ORDER_LINE_NUMBER_COLUMN, OrderLineNumbers

# Accepted spellings per type. A value must match the pattern and then parse, or it is an
# error and never a null. The patterns are needed because Polars 2.1 casts round "1.999" to
# 2.00 and read "1e3" as 1000.
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
LINE_NUMBER_COLUMN = "_file_line_number"


@dataclass(frozen=True)
class LineBatch:
    """Whole UTF-8 lines of the document.

    Every line ends with a newline, except the document's last line when the document has no
    final newline.
    """

    text: bytes
    line_count: int


class BatchWriter:
    """Validate, type and write batches of raw lines to numbered Parquet files.

    After the first invalid batch it only validates, so that the final error can give the
    number of offending lines in the whole document.
    """

    def __init__(
        self,
        names: list[str],
        types: Mapping[str, ColumnType],
        lineage_values: list[pl.Expr],
        output_dir: Path,
    ) -> None:
        """Prepare a writer.

        Args:
            names: The snake_case column names, in file order.
            types: The type of each column.
            lineage_values: Literal expressions for the lineage columns before
                _file_line_number, named and in LINEAGE_COLUMN_TYPES order.
            output_dir: The directory for the Parquet files.
        """
        self._names = names
        self._types = types
        self._output_dir = output_dir
        self._lineage_values = lineage_values
        self._order_rows = OrderLineNumbers()
        self._field_count_examples: list[tuple[int, int]] = []
        self._field_count_lines = 0
        self._invalid_values: dict[str, _InvalidValues] = {}
        self.part_paths: list[Path] = []
        self.row_count = 0

    def write(self, batch: LineBatch, *, first_line_number: int) -> None:
        """Validate and type one batch, and write it unless the document has errors so far."""
        rows = self._read_fields(batch, first_line_number)
        typed = self._type_values(rows)
        if self._field_count_lines or self._invalid_values:
            return

        typed = self._order_rows.number(typed)
        typed = typed.select(
            *self._names,
            *self._lineage_values,
            pl.col(LINE_NUMBER_COLUMN),
            pl.col(ORDER_LINE_NUMBER_COLUMN),
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

    def _read_fields(self, batch: LineBatch, first_line_number: int) -> pl.DataFrame:
        """Return the batch's lines split into string columns, with their line numbers.

        Lines whose field count differs from the header's are recorded and left out.
        """
        expected_tabs = (len(self._names) - 1) * batch.line_count
        # Polars 2.1's CSV reader drops a CR at the end of any field, not only of the line, so
        # a field ending in CR goes the slower exact way.
        use_csv_reader = len(self._names) > 1 and b"\r\t" not in batch.text
        if use_csv_reader and batch.text.count(b"\t") == expected_tabs:
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
                return fields.select(line_numbers.alias(LINE_NUMBER_COLUMN), pl.all())

        return self._split_lines(batch, first_line_number)

    def _split_lines(self, batch: LineBatch, first_line_number: int) -> pl.DataFrame:
        """Split the batch line by line, recording lines with the wrong field count.

        Slower than the CSV reader, so it runs only for a batch that has such lines or a field
        ending in CR, or when the header has a single column.
        """
        text = batch.text.decode("utf-8").removesuffix("\n")
        lines = pl.Series(_LINE, [text]).str.split("\n").explode().str.strip_suffix("\r")
        line_numbers = pl.int_range(
            first_line_number, first_line_number + lines.len(), dtype=pl.Int64(), eager=True
        )
        lines = pl.DataFrame([line_numbers.alias(LINE_NUMBER_COLUMN), lines])

        field_counts = pl.col(_LINE).str.count_matches("\t", literal=True) + 1
        lines = lines.with_columns(field_counts.alias("_field_count"))
        bad = lines.filter(pl.col("_field_count") != len(self._names))
        if not bad.is_empty():
            self._field_count_lines += bad.height
            room = MAX_EXAMPLES - len(self._field_count_examples)
            examples = bad.head(room).select(LINE_NUMBER_COLUMN, "_field_count").rows()
            self._field_count_examples.extend(examples)
            lines = lines.filter(pl.col("_field_count") == len(self._names))

        split = pl.col(_LINE).str.split_exact("\t", len(self._names) - 1)
        return lines.select(
            pl.col(LINE_NUMBER_COLUMN), split.struct.rename_fields(self._names).alias(_LINE)
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

        # One lazy query, so that common subexpression elimination parses each value once for
        # both the typed column and its validity flag.
        typed = rows.lazy().select(pl.col(LINE_NUMBER_COLUMN), *conversions, *invalid_flags)
        typed = typed.collect()
        if invalid_flags:
            flag_names = [flag.meta.output_name() for flag in invalid_flags]
            flags = pl.concat([rows, typed.select(flag_names)], how="horizontal")
            self._record_invalid_values(flags)
            typed = typed.drop(flag_names)
        return typed

    def _record_invalid_values(self, flags: pl.DataFrame) -> None:
        invalid_columns = [name for name in self._names if f"_invalid_{name}" in flags.columns]
        counts = flags.select(pl.col(f"_invalid_{name}").sum() for name in invalid_columns).row(0)
        for name, count in zip(invalid_columns, counts, strict=True):
            if not count:
                continue
            invalid = self._invalid_values.setdefault(name, _InvalidValues())
            invalid.value_count += count
            room = MAX_EXAMPLES - len(invalid.examples)
            rows = (
                flags.filter(pl.col(f"_invalid_{name}")).head(room).select(LINE_NUMBER_COLUMN, name)
            )
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
        listed_lines = ", ".join(
            f"line {line_number} has {field_count}"
            for line_number, field_count in self._field_count_examples
        )
        return FieldCountError(
            f"{self._field_count_lines} line(s) do not have the header's {expected} "
            f"tab-separated fields: {listed_lines}. The document is truncated or a value "
            "contains a tab or newline. Request the report again, and report the document to "
            "Amazon if the lines stay wrong.",
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
            for name in self._names
            if (invalid := self._invalid_values.get(name)) is not None
        ]
        descriptions = []
        for column in columns:
            listed_values = ", ".join(
                f"line {line} {value[:80]!r}" for line, value in column.examples
            )
            descriptions.append(
                f"column {column.column!r} has {column.value_count} value(s) that are not a "
                f"valid {column.column_type} ({listed_values})"
            )
        overrides = ", ".join(f"{column.column!r}: 'string'" for column in columns)
        return InvalidValueError(
            "The report has values that do not parse: "
            + "; ".join(descriptions)
            + f". To load such columns as text, pass column_types={{{overrides}}}.",
            columns=columns,
        )


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
