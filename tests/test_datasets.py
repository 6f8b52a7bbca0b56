"""The IDX reader: exact round trips, and clear errors for wrong or truncated files."""

import gzip
import struct

import numpy as np
import pytest
from _mnist import MNIST

from sk_hashednets.datasets import DATA_DIR_ENV, load_idx, read_idx

TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def _idx_bytes(array, type_code=None):
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.type] if type_code is None else type_code
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, payload, compress=True):
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_of_every_idx_type(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = _write(tmp_path / "a-idx3", _idx_bytes(array), compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"", "magic number is missing"),
        (b"\x01\x02\x08\x01", "not an IDX file"),
        (b"\x00\x00\x07\x01", "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "header ends early"),
        (_idx_bytes(np.arange(10, dtype=np.uint8))[:-1], r"truncated.*\(10,\).*holds 9"),
        (_idx_bytes(np.arange(10, dtype=np.uint8)) + b"\x00", "longer than its header"),
    ],
)
@pytest.mark.parametrize("compress", [True, False])
def test_bad_files_are_refused_with_the_reason(tmp_path, payload, match, compress):
    path = _write(tmp_path / "bad-idx1-ubyte", payload, compress)
    with pytest.raises(ValueError, match=match):
        read_idx(path)


def test_broken_gzip_stream_is_a_value_error(tmp_path):
    path = _write(tmp_path / "x.gz", _idx_bytes(np.arange(1000, dtype=np.uint8)))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="Cannot read .* as an IDX file"):
        read_idx(path)


def _dataset(directory, n_train=6, n_test=4, test_labels=None, compress=True):
    rng = np.random.default_rng(1)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 2, 3), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 2, 3), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8)
        if test_labels is None
        else test_labels,
    }
    for name, array in files.items():
        _write(directory / (name + (".gz" if compress else "")), _idx_bytes(array), compress)
    return files


@pytest.mark.parametrize("compress", [True, False])
def test_load_idx_reads_the_four_files(tmp_path, compress):
    files = _dataset(tmp_path, compress=compress)
    data = load_idx(tmp_path)
    assert data.image_shape == (2, 3)
    assert data.X_train.dtype == np.float32 and data.X_train.shape == (6, 6)
    np.testing.assert_array_equal(
        data.X_train, files["train-images-idx3-ubyte"].reshape(6, 6) / np.float32(255)
    )
    np.testing.assert_array_equal(data.y_test, files["t10k-labels-idx1-ubyte"])
    assert data.y_test.dtype == np.int64
    raw = load_idx(str(tmp_path), scale=False)
    np.testing.assert_array_equal(raw.X_test, files["t10k-images-idx3-ubyte"].reshape(4, 6))


def test_load_idx_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match=DATA_DIR_ENV):
        load_idx()
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_idx(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte.gz"):
        load_idx(tmp_path)
    _dataset(tmp_path, test_labels=np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="holds 4 images but t10k-labels-idx1-ubyte 5 labels"):
        load_idx(tmp_path)
    _dataset(tmp_path, test_labels=np.zeros((4, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="one label per image"):
        load_idx(tmp_path)
    _write(tmp_path / "train-images-idx3-ubyte.gz", _idx_bytes(np.zeros((6, 2, 3), np.float32)))
    with pytest.raises(ValueError, match="should hold uint8 images"):
        load_idx(tmp_path)
    _dataset(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert load_idx().X_train.shape == (6, 6)


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}")
def test_real_mnist_matches_its_published_description():
    data = load_idx(MNIST, scale=False)
    assert data.X_train.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert data.image_shape == (28, 28)
    # Label histograms from ../shared/data/README.md.
    assert np.bincount(data.y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(data.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_corrupt_gzip_stream_is_a_value_error(tmp_path):
    """Issue 19 item 7: a bad deflate block is zlib.error inside gzip; it must be ValueError."""
    data = bytearray(gzip.compress(_idx_bytes(np.arange(1000, dtype=np.uint8))))
    data[10] = 0xFF  # after the 10-byte gzip header: a deflate block of reserved type 3
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="Cannot read .* as an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("shape", [(100_000, 100_000, 100_000), (2**32 - 1, 2**32 - 1, 2**32 - 1)])
def test_huge_declared_shape_is_refused_before_reading(tmp_path, compress, shape):
    """A 16-byte file that declares 10**15 entries (or a count past 2**63) is truncated."""
    header = struct.pack(">BBBB3I", 0, 0, 0x08, 3, *shape)
    path = _write(tmp_path / "huge-idx3-ubyte", header, compress)
    expected = shape[0] * shape[1] * shape[2]
    with pytest.raises(ValueError, match=rf"truncated.*\({expected} bytes of data\)"):
        read_idx(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent-idx1-ubyte"):
        read_idx(tmp_path / "absent-idx1-ubyte")
