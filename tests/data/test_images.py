"""The user's images: folders, CSVs, arrays, bad files and stratified splits."""

import numpy as np
import pytest
import torch
from PIL import Image

from transferkit.data import ImageArrays, ImageCSV, ImageFolder, open_images, split_images
from transferkit.data.folder import ImageFiles


def _folder(root, per_class=4, classes=("a", "b", "c"), size=(6, 5)):
    for j, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = np.full((*size, 3), 40 * j + i, np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    return root


def test_folder_csv_and_arrays_agree(tmp_path):
    root = _folder(tmp_path / "imgs")
    ds = open_images(root, size=4)
    assert isinstance(ds, ImageFolder) and ds.classes == ["a", "b", "c"] and len(ds) == 12
    rows = ["path,label"] + [f"imgs/{c}/{i}.png,{c}" for c in "abc" for i in range(4)]
    rows.append("imgs/a/0.png,")  # an unlabelled row
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    csv = open_images(tmp_path / "list.csv", size=4)
    assert isinstance(csv, ImageCSV) and csv.classes == ["a", "b", "c"]
    assert csv.targets.tolist()[-1] == -1 and not csv.labelled
    assert torch.equal(csv[0][0], ds[0][0]) and csv[5][1] == ds[5][1]
    x = np.stack([np.asarray(Image.open(p)) for p, _ in ds.samples])
    np.savez(tmp_path / "arr.npz", images=x, labels=ds.targets.numpy())
    arr = open_images(tmp_path / "arr.npz")
    assert isinstance(arr, ImageArrays) and arr.labelled
    assert torch.allclose(arr[3][0], open_images(root)[3][0])
    np.save(tmp_path / "arr.npy", x)
    assert not open_images(tmp_path / "arr.npy").labelled


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(3):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / f"{i}.jpg")
    ds = open_images(tmp_path)
    assert len(ds) == 3 and ds.targets.tolist() == [-1, -1, -1]


def test_corrupt_file_is_named_or_skipped_and_counted(tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = open_images(root)
    with pytest.raises(ValueError, match="broken.png"):
        ds.scan()
    bad = ds.scan(skip_bad=True)
    assert len(bad) == 1 and "broken.png" in bad[0] and len(ds) == 12
    for i in range(len(ds)):  # a whole epoch reads without error
        ds[i]


def test_bad_inputs_are_clear(tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match="hold no images"):
        ImageFolder(root)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_images(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="expected a folder of images"):
        open_images(tmp_path / "x.txt")
    (tmp_path / "bad.csv").write_text("file,label\na.png,1\n")
    with pytest.raises(ValueError, match="'path'"):
        open_images(tmp_path / "bad.csv")
    np.savez(tmp_path / "short.npz", images=np.zeros((3, 4, 4)), labels=np.zeros(2, int))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        open_images(tmp_path / "short.npz")


def test_stratified_and_k_per_class_splits(tmp_path):
    ds = open_images(_folder(tmp_path / "imgs", per_class=5))
    val, rest = split_images(ds, 0.2, seed=0)
    assert torch.bincount(val.targets).tolist() == [1, 1, 1] and len(rest) == 12
    again, _ = split_images(ds, 0.2, seed=0)
    assert [val.name(i) for i in range(3)] == [again.name(i) for i in range(3)]
    k2, _ = split_images(ds, 2, seed=1, keep_rest=False)
    assert torch.bincount(k2.targets).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="has 5 items"):
        split_images(ds, 5, seed=0)


def test_a_csv_path_missing_from_the_csvs_folder_names_both_readings(tmp_path, monkeypatch):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / "a.png")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.csv").write_text("path,label\nimg/a.png,x\n")
    monkeypatch.chdir(tmp_path)  # img/a.png exists from here, not from lists/
    ds = ImageCSV("lists/train.csv")
    with pytest.raises(ValueError, match="read from its folder, 'lists'; 'img/a.png' from "
                                         "the current folder exists"):
        ds.scan()


@pytest.mark.parametrize("row, got", [("a.png,x,extra", 3), ("a.png", 1)])
def test_a_ragged_csv_row_is_refused_with_its_line(tmp_path, row, got):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "list.csv").write_text(f"path,label\na.png,x\n{row}\n")
    with pytest.raises(ValueError, match=f"line 3: {got} fields where the header has 2"):
        ImageCSV(tmp_path / "list.csv")


@pytest.mark.parametrize("make, expected", [
    (lambda: Image.fromarray(np.full((4, 4), 32768, np.uint16)), 32768 / 65535),  # I;16
    (lambda: Image.fromarray(np.full((4, 4), 1000, np.int32)), 1000 / 65535),     # I
    (lambda: Image.fromarray(np.full((4, 4), 0.25, np.float32)), 0.25),            # F
    (lambda: Image.new("L", (4, 4), 128).convert("P"), 128 / 255),                # palette
    (lambda: Image.new("LA", (4, 4), (64, 255)), 64 / 255),                       # grey+alpha
    (lambda: Image.new("CMYK", (4, 4), (0, 0, 0, 0)), 1.0),                       # white
])
def test_every_pillow_mode_reaches_the_network_in_its_range(tmp_path, make, expected):
    img = make()
    path = tmp_path / ("x.tiff" if img.mode in ("I", "F", "CMYK") else "x.png")
    img.save(path)
    for mode in ("L", "RGB"):
        x = ImageFiles([path], [0], ["a"], mode=mode)[0][0]
        assert x.shape[0] == (1 if mode == "L" else 3)
        assert float(x.min()) == pytest.approx(expected, abs=0.01), (img.mode, mode)
        assert float(x.max()) == pytest.approx(expected, abs=0.01), (img.mode, mode)
