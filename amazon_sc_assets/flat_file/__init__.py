"""Decoding, validating and typing order-report flat files into Polars.

`parse_report_document` turns a decompressed report document into a lazy scan of Parquet files
with snake_case columns, documented columns typed and lineage columns appended.
"""

from amazon_sc_assets.flat_file.columns import (
    DOCUMENTED_COLUMN_TYPES,
    LINEAGE_COLUMN_TYPES,
    ColumnType,
    to_snake_case,
)
from amazon_sc_assets.flat_file.decode import (
    DocumentText,
    UndecodableBytesError,
    codecs_to_try,
    resolve_codec,
)
from amazon_sc_assets.flat_file.errors import (
    CharsetError,
    FieldCountError,
    FlatFileError,
    HeaderError,
    InvalidColumnValues,
    InvalidValueError,
    ReportDocumentError,
)
from amazon_sc_assets.flat_file.parse import Lineage, ParsedDocument, parse_report_document

__all__ = [
    "DOCUMENTED_COLUMN_TYPES",
    "LINEAGE_COLUMN_TYPES",
    "CharsetError",
    "ColumnType",
    "DocumentText",
    "FieldCountError",
    "FlatFileError",
    "HeaderError",
    "InvalidColumnValues",
    "InvalidValueError",
    "Lineage",
    "ParsedDocument",
    "ReportDocumentError",
    "UndecodableBytesError",
    "codecs_to_try",
    "parse_report_document",
    "resolve_codec",
    "to_snake_case",
]
