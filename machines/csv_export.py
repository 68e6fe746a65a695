"""CSV export cells, following OWASP's CSV-injection guidance in full. Pure: no Django import.

Machine names, OS facts, agent versions and tags come from agents and users; a spreadsheet that opens the export
must never run one as a formula. So:

* every cell is quoted (``csv.QUOTE_ALL``; embedded double quotes doubled), so a separator inside a value never
  starts a new cell for a reader that honours quotes;
* a cell gets a leading single quote (shown as text by spreadsheets) when a formula could start anywhere in it: at
  its start — ``= + - @``, tab, carriage return, or their full-width forms ``＝ ＋ － ＠`` — or right after a field
  separator (``,`` ``;``), a quote (``"`` ``'``) or a line break, optionally after white space, where a reader that
  splits on another separator, or ignores quotes, would start a new cell.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable

FORMULA_START = "=+-@\t\r＝＋－＠"
CELL_BREAKS = ",;\"'\n\r"
_DANGEROUS = re.compile(rf"(?:^|[{re.escape(CELL_BREAKS)}])\s*[{re.escape(FORMULA_START)}]")


def csv_cell(value: str) -> str:
    """``value``, with a leading ``'`` when a spreadsheet could read a formula in it."""
    return f"'{value}" if _DANGEROUS.search(value) else value


class _Echo:
    def write(self, value: str) -> str:
        return value


_WRITER = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)


def csv_line(cells: Iterable[object]) -> str:
    """One CSV line (``\\r\\n``-terminated): every cell guarded with ``csv_cell`` and quoted."""
    return _WRITER.writerow([csv_cell(str(cell)) for cell in cells])
