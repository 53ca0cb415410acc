import numpy as np
import pytest
import torch

from transferkit.data import (
    Domain,
    class_subset,
    fashion_mnist_available,
    few_shot_split,
    load_digits,
    load_mnist5k,
    optdigits_style,
    resize,
    stratified_split,
)


def test_bundled_domains_share_interface():
    digits, mnist = load_digits(), load_mnist5k()
    assert (len(digits), digits.shape, digits.name) == (1797, (1, 8, 8), "digits")
    assert (len(mnist), mnist.shape) == (5000, (1, 28, 28))
    for d in (digits, mnist):
        assert d.images.dtype == torch.float32 and d.labels.dtype == torch.int64
        assert 0.0 <= float(d.images.min()) and float(d.images.max()) <= 1.0
        assert d.classes == list(range(10))
    assert mnist.counts().tolist() == [500] * 10


def test_optdigits_style_matches_digits_shape_and_range():
    mnist = load_mnist5k().subset(torch.arange(40))
    out = optdigits_style(mnist)
    assert out.shape == (1, 8, 8) and out.name == "mnist5k@8x8"
    # values are ink counts in 4x4 blocks divided by 16
    assert torch.allclose(out.images * 16, (out.images * 16).round(), atol=1e-5)
    assert torch.equal(out.labels, mnist.labels)
    # the digit is scaled to the whole frame: ink touches every border row/column
    frame = out.images[:, 0]
    assert bool((frame[:, 0, :].amax(1) > 0).all()) and bool((frame[:, -1, :].amax(1) > 0).all())


def test_resize_both_ways():
    d = load_digits().subset(torch.arange(10))
    up = resize(d, 16)
    assert up.shape == (1, 16, 16)
    down = resize(load_mnist5k().subset(torch.arange(10)), (16, 16))
    assert down.shape == (1, 16, 16) and float(down.images.max()) <= 1.0
    with pytest.raises(ValueError, match="size"):
        resize(d, 0)


def test_class_subset_relabels_in_given_order():
    d = load_digits()
    sub = class_subset(d, [9, 5])
    assert sub.classes == [0, 1]
    assert int((sub.labels == 0).sum()) == int((d.labels == 9).sum())
    kept = class_subset(d, [5, 9], relabel=False)
    assert kept.classes == [5, 9]
    with pytest.raises(ValueError, match=r"\[11\]"):
        class_subset(d, [1, 11])


def test_few_shot_split_is_stratified_disjoint_and_seeded():
    d = load_digits()
    train, test = few_shot_split(d, k=3, seed=7)
    assert train.counts().tolist() == [3] * 10
    assert len(train) + len(test) == len(d)
    again, _ = few_shot_split(d, k=3, seed=7)
    other, _ = few_shot_split(d, k=3, seed=8)
    assert torch.equal(train.images, again.images)
    assert not torch.equal(train.images, other.images)
    # no image in both parts
    a = {tuple(x.flatten().tolist()) for x in train.images}
    b = [tuple(x.flatten().tolist()) for x in test.images]
    assert len(train) == len(a)  # (digits has duplicates in rare cases; these 30 are distinct)
    assert sum(t in a for t in b) <= 2


def test_split_errors_name_the_problem():
    d = load_digits()
    with pytest.raises(ValueError, match="k .* >= 1"):
        few_shot_split(d, 0, seed=0)
    with pytest.raises(ValueError, match="need more than 500"):
        stratified_split(d, 500, seed=0)


def test_domain_validates_inputs():
    with pytest.raises(ValueError, match="4-d"):
        Domain(torch.zeros(3, 8), torch.zeros(3, dtype=torch.long), "x")
    with pytest.raises(ValueError, match="differ in length"):
        Domain(torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long), "x")
    with pytest.raises(ValueError, match="int64"):
        Domain(torch.zeros(3, 1, 2, 2), torch.zeros(3), "x")


def _write_folder(root, shape=(6, 5, 3), classes=("a", "b"), per_class=3):
    from PIL import Image

    for c, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            arr = np.full(shape, 40 * c + i, dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")


def test_image_folder_loads_lazily_with_sorted_class_labels(tmp_path):
    from transferkit.data import ImageFolder

    _write_folder(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["a", "b"] and len(ds) == 6
    x, y = ds[4]
    assert x.shape == (3, 6, 5) and y == 1
    assert torch.allclose(x, torch.full_like(x, 41 / 255))
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1]
    grey = ImageFolder(tmp_path, size=(2, 3), mode="L", classes=["b"])
    assert grey[0][0].shape == (1, 2, 3) and grey[0][1] == 0


def test_image_folder_errors(tmp_path):
    from transferkit.data import ImageFolder

    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="hold no images"):
        ImageFolder(tmp_path)
    (tmp_path / "empty" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        ImageFolder(tmp_path)[0]
    with pytest.raises(ValueError, match="not found"):
        ImageFolder(tmp_path, classes=["x"])
    with pytest.raises(ValueError, match="mode"):
        ImageFolder(tmp_path, mode="CMYK")


@pytest.mark.skipif(not fashion_mnist_available(),
                    reason="Fashion-MNIST (dataset-fashion-mnist) not installed")
def test_fashion_mnist_classes_are_kept_and_relabelled_in_order():
    from transferkit.data import load_fashion_mnist

    d = load_fashion_mnist("test", classes=(6, 0), per_class=3)
    assert tuple(d.images.shape) == (6, 1, 28, 28) and d.name == "fashion-test"
    assert sorted(d.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert 0.0 <= float(d.images.min()) and float(d.images.max()) <= 1.0
    full = load_fashion_mnist("test")
    shirts = full.images[full.labels == 6][:3]
    assert torch.equal(d.images[d.labels == 0], shirts)      # class 6 became label 0


def test_fashion_mnist_errors_name_what_was_expected(tmp_path, monkeypatch):
    from transferkit.data import bundled, load_fashion_mnist

    with pytest.raises(ValueError, match="split must be"):
        load_fashion_mnist("validation")
    monkeypatch.setenv("TRANSFERKIT_FASHION_MNIST", str(tmp_path))
    bundled._fashion_arrays.cache_clear()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03" + (5).to_bytes(4, "big")
                                                      + (28).to_bytes(4, "big") * 2 + b"\0" * 9)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + (5).to_bytes(4, "big")
                                                      + b"\0" * 5)
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist("test")
    bundled._fashion_arrays.cache_clear()
