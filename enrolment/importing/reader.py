"""Stream a CSV file row by row, checking each line's UTF-8 and each row's column count.

The file is read line by line from its binary handle: memory stays flat whatever its size.
Row numbers are the file's line numbers (the header is row 1), so a person finds them in an
editor or a spreadsheet.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from .spec import MSG_EMPTY, MSG_ENCODING, MSG_NUL, MSG_UTF16, FileRefused, RowError

Row = tuple[int, list[str] | None, str | None]  # (row number, cells, problem found here)


class CsvStream:
    def __init__(self, binary_file):
        self._file = binary_file
        self.bad_lines: set[int] = set()
        self.lineno = 0

    def _lines(self) -> Iterator[str]:
        for raw in self._file:
            self.lineno += 1
            if self.lineno == 1:
                if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise FileRefused([RowError(0, "", MSG_UTF16)])
                if raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
            if b"\x00" in raw:
                raise FileRefused([RowError(self.lineno, "", MSG_NUL)])
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad_lines.add(self.lineno)
                yield raw.decode("utf-8", "replace")

    def open(self) -> tuple[list[str], Iterator[Row]]:
        """The header's cells and an iterator over the data rows."""
        reader = csv.reader(self._lines())
        try:
            header = next(reader)
        except StopIteration:
            raise FileRefused([RowError(0, "", MSG_EMPTY)]) from None
        except csv.Error as exc:
            raise FileRefused([RowError(1, "", f"The header cannot be read as CSV: {exc}.")])
        if self.bad_lines:
            raise FileRefused([RowError(1, "", MSG_ENCODING)])
        return header, self._rows(reader)

    def _rows(self, reader) -> Iterator[Row]:
        last = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                start, last = last + 1, reader.line_num
                yield start, None, f"This row cannot be read as CSV: {exc}."
                continue
            start, last = last + 1, reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue  # blank lines (often at the end of a file) are not rows
            if self.bad_lines and any(n in self.bad_lines for n in range(start, last + 1)):
                yield start, cells, MSG_ENCODING
            else:
                yield start, cells, None
