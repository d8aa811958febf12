"""Parsers for the two file formats the data sets come in: IDX and CSV.

Both take the verified bytes of a file and the name to put in error messages.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from hml.exceptions import DatasetFormatError

__all__ = ["parse_csv", "parse_idx"]

# IDX type codes (the third byte of the magic number) -> big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(content: bytes, name: str) -> np.ndarray:
    """An IDX file as an array: magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 sizes, the payload.

    Returns a writable array in native byte order (uint8 for MNIST).
    """
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES or content[3] == 0:
        raise DatasetFormatError(
            f"{name}: not an IDX file (magic number {content[:4].hex(' ') or 'missing'}; "
            f"expected 00 00 <type {'/'.join(f'{t:02x}' for t in _IDX_DTYPES)}> <number of dimensions>)"
        )
    dtype = np.dtype(_IDX_DTYPES[content[2]])
    ndim = content[3]
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DatasetFormatError(
            f"{name}: IDX header promises {ndim} dimensions but the file ends after {len(content)} bytes"
        )
    shape = tuple(int(n) for n in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected = header + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(content) != expected:
        raise DatasetFormatError(
            f"{name}: IDX header says shape {shape} ({expected} bytes in all) but the file has {len(content)} bytes"
        )
    array = np.frombuffer(content, dtype, offset=header).reshape(shape)
    # frombuffer over bytes is read-only; users expect to be able to write their copy.
    return array.astype(dtype.newbyteorder("="), copy=True)


def parse_csv(content: bytes, name: str, columns: dict[str, type]) -> dict[str, np.ndarray]:
    """The named columns of a CSV with a header row, each as an array of the given type.

    ``columns`` maps a column name to ``float``, ``int`` (as ``np.intp``) or ``str``. A missing column or a
    cell that does not parse raises :class:`DatasetFormatError` naming the file and the column.
    """
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    header, body = rows[0], [row for row in rows[1:] if row]
    missing = [column for column in columns if column not in header]
    if missing:
        raise DatasetFormatError(f"{name}: no column(s) {missing}; the header is {header}")
    result = {}
    for column, kind in columns.items():
        position = header.index(column)
        cells = [row[position] for row in body]
        try:
            result[column] = np.asarray(cells, dtype=np.str_ if kind is str else np.float64)
            if kind is int:  # class codes: NumPy's index type (int32 on WebAssembly), so bincount takes them
                result[column] = result[column].astype(np.intp)
        except ValueError as exc:
            raise DatasetFormatError(f"{name}: column {column!r} does not parse as {kind.__name__}: {exc}") from None
    return result
