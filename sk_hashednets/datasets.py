"""Readers for datasets stored as IDX files (MNIST, Fashion-MNIST).

Nothing is downloaded: the functions read files from a directory you name.
"""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_idx", "read_idx"]

#: IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Environment variable that :func:`load_idx` reads when no directory is given.
DATA_DIR_ENV = "SK_HASHEDNETS_MNIST_DIR"

_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


#: Deflate expands at most about 1032 to 1, which bounds what a gzip file of n bytes can hold.
_DEFLATE_MAX_RATIO = 1032


def _open(path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path):
    """Read one IDX file, gzip-compressed or not, checking its header.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    array : ndarray
        The array the header declares (dimensions and element type), in
        native byte order.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not IDX (bad magic number or type code), is not a
        valid gzip stream, or holds fewer or more bytes than its header
        declares (truncated file). The declared size is checked against the
        file's size before the data is read.

    Examples
    --------
    >>> import gzip, os, struct, tempfile
    >>> from sk_hashednets.datasets import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, 3) + bytes([7, 2, 1]))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    try:
        with _open(path) as f:
            header = f.read(4)
            if len(header) < 4 or header[:2] != b"\x00\x00" or header[2] not in _IDX_DTYPES:
                raise ValueError(
                    f"{path} is not an IDX file: its magic number is {header.hex() or 'missing'}, "
                    "expected 0000 followed by a type code (08 for unsigned bytes) and the "
                    "number of dimensions."
                )
            dtype, ndim = _IDX_DTYPES[header[2]], header[3]
            dims_bytes = f.read(4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise ValueError(f"{path} is truncated: its header ends early.")
            shape = struct.unpack(f">{ndim}I", dims_bytes)
            expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
            _check_declared_size(f, path, 4 + 4 * ndim, expected, shape, dtype)
            data = f.read(expected + 1)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"Cannot read {path} as an IDX file: {exc}") from exc
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header declares"
        raise ValueError(
            f"{path} is {state}: the header declares shape {shape} of {dtype.name} "
            f"({expected} bytes of data), the file holds {len(data)}"
            f"{'' if len(data) <= expected else ' or more'}. Download it again."
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _check_declared_size(f, path, header_bytes, expected, shape, dtype):
    """Refuse a header that declares more data than the file can hold, before reading it.

    The data of an uncompressed file is its size less the header; a gzip file
    holds at most ``_DEFLATE_MAX_RATIO`` times its compressed size.
    """
    size = os.fstat(f.fileno()).st_size
    if isinstance(f, gzip.GzipFile):
        held, at_most = size * _DEFLATE_MAX_RATIO, "at most "
    else:
        held, at_most = size - header_bytes, ""
    if expected > held:
        raise ValueError(
            f"{path} is truncated: the header declares shape {shape} of {dtype.name} "
            f"({expected} bytes of data), the file holds {at_most}{held}. Download it again."
        )


def load_idx(directory=None, *, scale=True):
    """Load MNIST (or a dataset in its format) from the four IDX files in a directory.

    The directory must hold ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally
    gzip-compressed (``.gz``), as distributed for MNIST and Fashion-MNIST.

    Parameters
    ----------
    directory : str or path-like, default=None
        The directory. None reads it from the environment variable
        ``SK_HASHEDNETS_MNIST_DIR``.
    scale : bool, default=True
        Return images as float32 in [0, 1] (pixel / 255), the fast path of
        the estimators; False keeps the stored uint8 pixels.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train`` (n_train, rows * cols), ``y_train`` (n_train,), ``X_test``,
        ``y_test`` and ``image_shape`` (rows, cols). Images are flattened row by
        row; labels are int64.

    Raises
    ------
    FileNotFoundError
        If the directory or one of the files is missing.
    ValueError
        If a file is not a valid IDX file of the expected kind, or images and
        labels disagree in number.

    Examples
    --------
    >>> import os
    >>> from sk_hashednets.datasets import load_idx
    >>> default = os.path.join("..", "shared", "data", "mnist")  # the project's copy
    >>> directory = os.environ.get("SK_HASHEDNETS_MNIST_DIR", default)
    >>> if os.path.isdir(directory):  # MNIST, when present
    ...     mnist = load_idx(directory)
    ...     assert mnist.X_train.shape == (60000, 784) and mnist.y_test.shape == (10000,)
    """
    if directory is None:
        if DATA_DIR_ENV not in os.environ:
            raise ValueError(
                f"No directory given and {DATA_DIR_ENV} is not set: pass the directory that "
                "holds the four IDX files, e.g. load_idx('data/mnist')."
            )
        directory = os.environ[DATA_DIR_ENV]
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory; it should hold the IDX files.")
    arrays = {key: read_idx(_find(directory, name)) for key, name in _FILES.items()}
    data = Bunch()
    shapes = set()
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_file, label_file = _FILES[f"{split}_images"], _FILES[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{image_file} should hold uint8 images of shape (n, rows, cols); it holds "
                f"{images.dtype} of shape {images.shape}."
            )
        if labels.ndim != 1:
            raise ValueError(f"{label_file} should hold one label per image; shape {labels.shape}.")
        if len(images) != len(labels):
            raise ValueError(
                f"{image_file} holds {len(images)} images but {label_file} {len(labels)} labels."
            )
        shapes.add(images.shape[1:])
        X = images.reshape(len(images), -1)
        if scale:
            X = X.astype(np.float32)
            X /= 255
        data[f"X_{split}"] = X
        data[f"y_{split}"] = labels.astype(np.int64)
    if len(shapes) != 1:
        raise ValueError(f"Training and test images differ in shape: {sorted(shapes)}.")
    data["image_shape"] = shapes.pop()
    return data


def _find(directory, name):
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{directory} has no {name}.gz (or {name}): the directory should hold the four "
        f"IDX files {', '.join(_FILES.values())}."
    )
