import bz2
import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from transferkit.data import download
from transferkit.data.download import ChecksumError, fetch, load_mnist, load_usps


def _idx(array: np.ndarray) -> bytes:
    head = (
        b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    )
    return gzip.compress(head + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_mirror(tmp_path, monkeypatch):
    """A local 'mirror' with tiny MNIST files and their checksums patched in."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (5, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(5)),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (3, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx(np.array([7, 8, 9])),
    }
    sums = {}
    for name, data in files.items():
        (mirror / name).write_bytes(data)
        sums[name] = hashlib.md5(data).hexdigest()
    monkeypatch.setattr(download, "MNIST_FILES", sums)
    return mirror.as_uri() + "/"


def test_mnist_loader_reads_idx_and_caches(tmp_path, mnist_mirror):
    root = tmp_path / "cache"
    d = load_mnist(train=True, root=root, mirror=mnist_mirror)
    assert d.shape == (1, 28, 28) and d.labels.tolist() == [0, 1, 2, 3, 4]
    test = load_mnist(train=False, root=root, mirror=mnist_mirror)
    assert test.labels.tolist() == [7, 8, 9]
    # second call uses the cache even with no mirror reachable
    again = load_mnist(train=True, root=root, download=False)
    assert torch.equal(again.images, d.images)


def test_corrupted_download_raises_and_leaves_nothing(tmp_path, mnist_mirror):
    src = tmp_path / "mirror" / "train-images-idx3-ubyte.gz"
    src.write_bytes(src.read_bytes()[:-10] + b"corrupted!")
    root = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="expected MD5"):
        load_mnist(train=True, root=root, mirror=mnist_mirror)
    assert not (root / "train-images-idx3-ubyte.gz").exists()
    assert [p.name for p in root.iterdir()] == []  # no temporary file left behind


def test_corrupted_cache_is_fetched_again(tmp_path):
    data = b"hello"
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    dest = tmp_path / "cache" / "f.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"stale")
    fetch(src.as_uri(), dest, hashlib.md5(data).hexdigest())
    assert dest.read_bytes() == data


def test_usps_loader_parses_libsvm(tmp_path, monkeypatch):
    row = " ".join(f"{j}:{(-1 + 2 * (j % 2)):.1f}" for j in range(1, 257))
    text = f"1 {row}\n10 {row}\n"
    data = bz2.compress(text.encode())
    (tmp_path / "usps.bz2").write_bytes(data)
    monkeypatch.setattr(
        download, "USPS_FILES", {"usps.bz2": hashlib.md5(data).hexdigest(), "usps.t.bz2": "0"}
    )
    d = load_usps(train=True, root=tmp_path / "c", mirror=tmp_path.as_uri() + "/")
    assert d.shape == (1, 16, 16) and d.labels.tolist() == [0, 9]
    assert float(d.images.min()) == 0.0 and float(d.images.max()) == 1.0


def test_missing_file_without_download_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_usps(root=tmp_path, download=False)
