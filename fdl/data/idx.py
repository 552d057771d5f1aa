"""The IDX file format of MNIST and Fashion-MNIST, read and written with numpy.

An IDX file is a big-endian header followed by the array in C order::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4 * d       each dimension as a big-endian uint32
    ...         the data

So MNIST images start with the magic number 0x00000803 (2051: uint8, 3-D) and labels with 0x00000801
(2049: uint8, 1-D). Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}

MAGIC_IMAGES = 0x00000803
MAGIC_LABELS = 0x00000801


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array of native byte order.

    Returns an array of the header's shape and element type (uint8 for MNIST).

    Raises:
        ValueError: not IDX (first two bytes not zero), an unknown element type, a truncated header, or a
            body whose length differs from the header's shape.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{what}: not an IDX file (the first two bytes must be zero, got {data[:4]!r})")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{what}: unknown IDX element type 0x{code:02X}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{what}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{what}: IDX header says shape {shape} ({expected} bytes in all) but the file has "
            f"{len(data)} bytes; it is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed when the name ends in ``.gz``); check its magic number if given.

    Raises:
        ValueError: naming ``path``, when a ``.gz`` file is not valid gzip or is cut short, or when the IDX
            content is malformed (wrong magic number, truncated data).
    """
    if str(path).endswith(".gz"):
        try:
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise ValueError(
                f"{path}: the gzip file is corrupt or truncated ({type(err).__name__}: {err}); "
                "download it again, or replace it with the uncompressed file "
                f"({os.path.basename(str(path))[:-3]})"
            ) from None
    else:
        with open(path, "rb") as fh:
            data = fh.read()
    if magic is not None and len(data) >= 4:
        found = struct.unpack(">I", data[:4])[0]
        if found != magic:
            raise ValueError(
                f"{path}: IDX magic number 0x{found:08X}, expected 0x{magic:08X} "
                f"({'images' if magic == MAGIC_IMAGES else 'labels'})"
            )
    return parse_idx(data, what=str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an (uncompressed) IDX file; the inverse of ``parse_idx``.

    Dtypes uint8, int8, int16, int32, float32, float64; each dimension below 2**32.

    Raises:
        ValueError: a dtype IDX cannot store (e.g. int64 or bool).
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"idx_bytes: IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when the name ends in ``.gz``.

    Raises:
        ValueError: a dtype IDX cannot store (see :func:`idx_bytes`).
        OSError: the file cannot be written.
    """
    if str(path).endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:  # reproducible bytes
            fh.write(idx_bytes(array))
    else:
        with open(path, "wb") as fh:
            fh.write(idx_bytes(array))
