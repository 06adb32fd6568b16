"""An order source that replays flat files downloaded from Seller Central.

Every `*.tsv` and `*.txt` file in the directory is one flat file of either report type: a
header line, then one tab-separated line per order item, with CRLF or LF line endings and
possibly no final newline. Files are read again on every report, line by line, so replaying
large files does not hold them in memory.
"""

import logging
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

from amazon_sc_assets.marketplaces import MARKETPLACES
from amazon_sc_assets.report_types import ReportType

logger = logging.getLogger(__name__)

REPLAY_SUFFIXES = (".tsv", ".txt")

# Real sample files shipped with the package. The emulator replays them when the order history
# generator is not installed.
SAMPLES_DIR = Path(__file__).parent / "samples"

_MARKETPLACE_BY_SALES_CHANNEL = {
    m.sales_channel.lower(): m.marketplace_id for m in MARKETPLACES.values()
}


def decode_line(raw: bytes) -> str:
    """Decode one line as UTF-8, or as cp1252 when it is not valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _split_line(raw: bytes) -> list[str]:
    return decode_line(raw.rstrip(b"\r\n")).split("\t")


def _parse_report_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class ReplayOrderSource:
    """Serve the rows of downloaded flat files, selected as Amazon selects them.

    LAST_UPDATE reports select rows by `last-updated-date`, ORDER_DATE reports by
    `purchase-date`, both with an inclusive range. A marketplace filter keeps rows whose
    `sales-channel` (`Amazon.com`, `Amazon.it`, ...) belongs to one of the requested marketplace
    ids. The header is the union of the files' headers in order of first appearance, and each
    row is rearranged into it, with empty strings for columns its file lacks.

    Args:
        directory: folder containing the flat files.

    Raises:
        ValueError: when the directory contains no `.tsv` or `.txt` file or a file is empty.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.files = sorted(
            path
            for path in self.directory.iterdir()
            if path.is_file() and path.suffix.lower() in REPLAY_SUFFIXES
        )
        if not self.files:
            raise ValueError(
                f"No flat files found in replay directory {self.directory}: expected one or "
                f"more files ending in {' or '.join(REPLAY_SUFFIXES)}."
            )
        self._header: list[str] = []
        for path in self.files:
            for column in self._read_header(path):
                if column not in self._header:
                    self._header.append(column)

    def header(self, report_type: ReportType) -> list[str]:
        """Return the union header of the replayed files; it is the same for both types."""
        return list(self._header)

    def iter_rows(
        self,
        report_type: ReportType,
        start: datetime,
        end: datetime,
        *,
        marketplace_ids: Collection[str] | None,
        as_of: datetime,
    ) -> Iterator[list[str]]:
        """Yield the rows whose report-type date column lies in [start, end].

        Args:
            report_type: selects the date column (`last-updated-date` or `purchase-date`).
            start: first instant of the range, inclusive.
            end: last instant of the range, inclusive.
            marketplace_ids: keep only rows whose sales channel belongs to one of these ids,
                or every row when None.
            as_of: rows last updated after this instant are not visible yet.
        """
        requested_ids = None if marketplace_ids is None else set(marketplace_ids)
        for path in self.files:
            yield from self._iter_file(path, report_type, start, end, requested_ids, as_of)

    def _read_header(self, path: Path) -> list[str]:
        with path.open("rb") as file:
            first_line = file.readline()
        if not first_line.strip():
            raise ValueError(f"Replay file {path} is empty: expected a header line first.")
        return _split_line(first_line)

    def _iter_file(
        self,
        path: Path,
        report_type: ReportType,
        start: datetime,
        end: datetime,
        requested_ids: set[str] | None,
        as_of: datetime,
    ) -> Iterator[list[str]]:
        skipped = 0
        malformed = 0
        with path.open("rb") as file:
            file_header = _split_line(file.readline())
            positions = {column: index for index, column in enumerate(file_header)}
            date_index = positions.get(report_type.date_column)
            updated_index = positions.get("last-updated-date")
            channel_index = positions.get("sales-channel")
            if date_index is None:
                logger.warning(
                    "Replay file %s has no %s column; it contributes no rows to %s reports",
                    path,
                    report_type.date_column,
                    report_type.value,
                )
                return
            for raw in file:
                if not raw.strip(b"\r\n"):
                    continue
                line_values = _split_line(raw)
                values = line_values + [""] * (len(file_header) - len(line_values))
                selected_time = _parse_report_time(values[date_index])
                if selected_time is None:
                    skipped += 1
                    continue
                if not start <= selected_time <= end:
                    continue
                if updated_index is not None:
                    updated_time = _parse_report_time(values[updated_index])
                    if updated_time is not None and updated_time > as_of:
                        continue
                if requested_ids is not None:
                    channel = values[channel_index] if channel_index is not None else ""
                    if _MARKETPLACE_BY_SALES_CHANNEL.get(channel.lower()) not in requested_ids:
                        continue
                if len(line_values) != len(file_header):
                    # Served as it is, as Amazon would, so the client's parser reports the line.
                    malformed += 1
                    yield line_values
                    continue
                yield [
                    values[positions[column]] if column in positions else ""
                    for column in self._header
                ]
        if malformed:
            logger.warning(
                "Serving %d lines of replay file %s unchanged although their field count "
                "differs from the header's %d",
                malformed,
                path,
                len(file_header),
            )
        if skipped:
            logger.warning(
                "Skipped %d rows of replay file %s whose %s is not an ISO 8601 time",
                skipped,
                path,
                report_type.date_column,
            )
