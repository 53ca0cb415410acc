"""Full MNIST and USPS for real users: downloaded on request, checksummed, cached.

Nothing here runs at import, and nothing in transferkit's default path (tests,
``transferkit reproduce``) calls it: those use the digit sets bundled with our
dependencies. Files land in :func:`data_dir` (``$TRANSFERKIT_DATA``, else
``$XDG_DATA_HOME/transferkit``, else ``~/.local/share/transferkit``). A download is written
to a temporary file, verified against its MD5 and only then renamed into place, so a bad
or interrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np
import torch

from .._io import atomic_write
from .domain import Domain

MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
USPS_MIRROR = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"
USPS_FILES = {
    "usps.bz2": "ec16c51db3855ca6c91edd34d0e9b197",
    "usps.t.bz2": "8ea070ee2aca1ac39742fdd1ef5ed118",
}


class ChecksumError(OSError):
    """A downloaded or cached file does not have the expected checksum.

    Examples
    --------
    >>> issubclass(ChecksumError, OSError)         # what fetch raises on corrupt bytes
    True
    """


def data_dir() -> Path:
    """Where downloaded data sets are cached (created on first use, not here).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"TRANSFERKIT_DATA": "my-data"}):
    ...     data_dir()
    PosixPath('my-data')
    """
    env = os.environ.get("TRANSFERKIT_DATA")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "transferkit"


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, path: str | os.PathLike[str], md5: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``path`` unless a file with checksum ``md5`` is already there.

    Raises
    ------
    ChecksumError
        The downloaded bytes do not match ``md5``; nothing is written at ``path``.

    Examples
    --------
    A file already there with the right checksum is not downloaded again:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = Path(d) / "data.bin"
    ...     _ = path.write_bytes(b"transferkit")
    ...     fetch("https://example.invalid/data.bin", path, hashlib.md5(b"transferkit").hexdigest())
    ...     path.read_bytes()
    PosixPath('...data.bin')
    b'transferkit'
    """
    path = Path(path)
    if path.exists():
        if _md5(path) == md5:
            return path
        path.unlink()  # a stale or corrupted cache entry: fetch it again

    def write(f: IO[bytes]) -> None:
        h = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                h.update(block)
                f.write(block)
        got = h.hexdigest()
        if got != md5:
            raise ChecksumError(f"{url}: expected MD5 {md5}, got {got}; nothing was saved")

    return atomic_write(path, write)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path.name} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path.name}: header says {dims}, body has {body.size} values")
    return body.reshape(dims)


def load_mnist(
    train: bool = True,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirror: str = MNIST_MIRROR,
) -> Domain:
    """The full MNIST training (60,000) or test (10,000) set, 28x28, values in [0, 1].

    Examples
    --------
    The full MNIST is downloaded once (to :func:`data_dir`); offline, ``download=False``
    reads only what is cached:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     load_mnist(root=empty, download=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: .../train-images-idx3-ubyte.gz not found; call with download=True
    """
    root = Path(root) if root is not None else data_dir() / "mnist"
    prefix = "train" if train else "t10k"
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte.gz"
        path = root / name
        if download:
            fetch(mirror + name, path, MNIST_FILES[name])
        elif not path.exists():
            raise FileNotFoundError(f"{path} not found; call with download=True")
        paths.append(path)
    x, y = _read_idx(paths[0]), _read_idx(paths[1])
    images = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return Domain(images, torch.from_numpy(y.astype(np.int64)), "mnist" if train else "mnist-test")


def _read_usps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    labels, rows = [], []
    with bz2.open(path, "rt") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            labels.append(int(float(parts[0])) - 1)
            row = np.zeros(256, dtype=np.float32)
            for item in parts[1:]:
                j, v = item.split(":")
                row[int(j) - 1] = float(v)
            rows.append(row)
    x = (np.stack(rows) + 1.0) / 2.0  # libsvm's USPS is scaled to [-1, 1]
    return x.reshape(-1, 16, 16), np.asarray(labels, dtype=np.int64)


def load_usps(
    train: bool = True,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirror: str = USPS_MIRROR,
) -> Domain:
    """USPS training (7,291) or test (2,007) set, 16x16, values in [0, 1], labels 0-9.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     load_usps(root=empty, download=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...
    """
    root = Path(root) if root is not None else data_dir() / "usps"
    name = "usps.bz2" if train else "usps.t.bz2"
    path = root / name
    if download:
        fetch(mirror + name, path, USPS_FILES[name])
    elif not path.exists():
        raise FileNotFoundError(f"{path} not found; call with download=True")
    x, y = _read_usps(path)
    x = np.clip(x, 0.0, 1.0)
    return Domain(
        torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y), "usps" if train else "usps-test"
    )


__all__ = ["ChecksumError", "data_dir", "fetch", "load_mnist", "load_usps"]
