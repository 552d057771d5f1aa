"""fdl.data.idx: the IDX format (read, write, round trip) and its errors."""

import numpy as np
import pytest

from fdl.data.idx import idx_bytes, parse_idx, read_idx, write_idx


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.arange(-3, 3, dtype=np.int8),
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
        np.arange(5, dtype=np.int32) * 70000,
        np.array([[1.5, -2.0]]),
    ],
)
def test_idx_round_trip(tmp_path, array):
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        back = read_idx(tmp_path / name)
        assert back.dtype == array.dtype.newbyteorder("=") and back.shape == array.shape
        np.testing.assert_array_equal(back, array)


def test_idx_errors(tmp_path):
    data = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    assert data[:4] == b"\x00\x00\x08\x03"  # MNIST's images magic 2051
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(data[:-1])
    with pytest.raises(ValueError, match="not an IDX"):
        parse_idx(b"PK\x03\x04" + data[4:])
    with pytest.raises(ValueError, match="element type"):
        parse_idx(b"\x00\x00\x07\x01" + data[4:])
    write_idx(tmp_path / "labels", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "labels", magic=0x803)


def test_corrupt_gz_names_the_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: the gzip file is corrupt .*BadGzipFile"):
        read_idx(path)
