"""Tables of texts: CSV, JSON Lines and Parquet, columns by name, unlabelled rows, errors."""

import json

import pytest
import torch

from transferkit.data.text import TextTable, is_text_table, open_texts

pd = pytest.importorskip("pandas")


def test_csv_jsonl_and_parquet_read_alike(tmp_path):
    rows = [{"review": "loved it", "stars": 5}, {"review": "hated it", "stars": 1},
            {"review": "no idea", "stars": None}, {"review": "great, again", "stars": 5}]
    pd.DataFrame(rows).astype({"stars": "Int64"}).to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    paths = [tmp_path / "r.csv", tmp_path / "r.jsonl"]
    try:
        import pyarrow  # noqa: F401

        pd.DataFrame(rows).astype({"stars": "Int64"}).to_parquet(tmp_path / "r.parquet")
        paths.append(tmp_path / "r.parquet")
    except ImportError:
        pass
    for p in paths:
        assert is_text_table(p, "review") and not is_text_table(p)
        ds = open_texts(p, text_column="review", label_column="stars")
        assert ds.classes == ["1", "5"], p
        assert ds.targets.tolist() == [1, 0, -1, 1], p
        assert ds.texts[3] == "great, again" and not ds.labelled
        assert ds.subset([0, 1]).labelled


def test_errors_name_the_file_the_column_and_the_row(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("sentence,label\nfine,a\n")
    with pytest.raises(ValueError, match=r"no text column 'text'.*\['sentence', 'label'\]"):
        open_texts(p)
    p.write_text("text,label\nfine,a\n,b\n")
    with pytest.raises(ValueError, match="first is data row 2"):
        open_texts(p)
    p.write_text("text,label\nfine,a\nok,c\n")
    with pytest.raises(ValueError, match=r"label\(s\) \['c'\]"):
        open_texts(p, classes=["a", "b"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_texts(tmp_path / "none.csv")


def test_tokenised_items_are_rows_of_ids(tmp_path):
    def spec(texts):
        return torch.tensor([[len(t), 0, 0] for t in texts])

    ds = TextTable(["ab", "abc", "a"], [0, 1, 0], ["x", "y"]).with_transform(spec)
    assert ds[1][0].tolist() == [3, 0, 0] and ds[1][1] == 1
    assert ds.subset([2]).token_ids.tolist() == [[1, 0, 0]]
    assert ds.name(2) == "3"  # the data row in the file
