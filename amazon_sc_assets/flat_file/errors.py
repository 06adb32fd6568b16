"""Exceptions raised while decoding, validating and typing an order-report flat file."""

from dataclasses import dataclass

# How many offending lines or values an error message shows before it gives only the count.
MAX_EXAMPLES = 5


class FlatFileError(Exception):
    """Base class of every error that a report document's content causes."""


class CharsetError(FlatFileError):
    """The document cannot be decoded with its charset, or the charset is unusable."""


class ReportDocumentError(FlatFileError):
    """The document is not an order report, for example Amazon's text of an error.

    Attributes:
        document_text: The start of the document (at most 2,000 characters), which is usually
            Amazon's explanation, such as "Date range exceeded. Report can be requested only
            upto 30 days".
    """

    def __init__(self, message: str, *, document_text: str) -> None:
        super().__init__(message)
        self.document_text = document_text


class HeaderError(FlatFileError):
    """The header row has unexpected, localized, empty or colliding column names."""


class FieldCountError(FlatFileError):
    """Data lines have a different number of tab-separated fields than the header.

    Attributes:
        expected_fields: The number of fields in the header row.
        line_numbers: The first offending line numbers (line 1 is the header).
        line_count: The number of offending lines in the whole document.
    """

    def __init__(
        self, message: str, *, expected_fields: int, line_numbers: list[int], line_count: int
    ) -> None:
        super().__init__(message)
        self.expected_fields = expected_fields
        self.line_numbers = line_numbers
        self.line_count = line_count


@dataclass(frozen=True)
class InvalidColumnValues:
    """Values of one typed column that do not parse as the column's type.

    Attributes:
        column: The snake_case column name.
        column_type: The type the values failed to parse as, e.g. "decimal".
        examples: The first offending values as (line number, value) pairs.
        value_count: The number of offending values in the whole document.
    """

    column: str
    column_type: str
    examples: tuple[tuple[int, str], ...]
    value_count: int


class InvalidValueError(FlatFileError):
    """Values in typed columns that do not parse. Nothing is converted to null or rescaled.

    Attributes:
        columns: One entry per column that has invalid values, in file column order.
    """

    def __init__(self, message: str, *, columns: list[InvalidColumnValues]) -> None:
        super().__init__(message)
        self.columns = columns
