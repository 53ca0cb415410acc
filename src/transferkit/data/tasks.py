"""A table with one input and several targets, for multi-task learning on the user's file.

The input is a text column or a list of numeric feature columns; each task names its
column and kind:

- ``class``: a label per row (empty: missing), numbered like the image and text sets
  (sorted, numbers numerically);
- ``regression``: a number per row (empty or NaN: missing);
- ``tags``: per-word tags of the text, whitespace-separated in a CSV (``B-PER O O B-LOC``,
  one per whitespace-separated word) or a list in JSON Lines; empty: an untagged row.
  ``O`` (outside any entity), when present, is tag 0.

A task is written ``name:kind:column`` (``name:kind`` when the column is named like the
task), as the ``multitask`` command takes it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["MultitaskTable", "TaskColumn", "parse_task", "read_multitask_table"]

KINDS = ("class", "regression", "tags")


@dataclass(frozen=True)
class TaskColumn:
    """A task of the table: its ``name``, ``kind`` and ``column`` (see :func:`parse_task`).

    Examples
    --------
    >>> TaskColumn("mood", "class", "label").column
    'label'
    """

    name: str
    kind: str
    column: str


def parse_task(text: str) -> TaskColumn:
    """``name:kind[:column]`` as a :class:`TaskColumn`.

    Examples
    --------
    >>> parse_task("sentiment:class:label")
    TaskColumn(name='sentiment', kind='class', column='label')
    >>> parse_task("stars:regression").column
    'stars'
    """
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"a task is name:kind or name:kind:column (kind one of "
                         f"{', '.join(KINDS)}); got {text!r}")
    if parts[1] not in KINDS:
        raise ValueError(f"task {parts[0]!r}: kind must be one of {', '.join(KINDS)}; got "
                         f"{parts[1]!r}")
    return TaskColumn(parts[0], parts[1], parts[2] if len(parts) == 3 else parts[0])


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or \
        (isinstance(v, str) and not v.strip())


def _label(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _number_key(s: str) -> tuple[int, float, str]:
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


@dataclass
class MultitaskTable:
    """The rows of a multi-task table: ``texts`` or ``features``, and per task its raw
    targets and (class and tags tasks) its ``vocab``.

    Examples
    --------
    >>> import numpy as np
    >>> table = MultitaskTable("demo", (TaskColumn("kind", "class", "kind"),), None,
    ...                        np.zeros((3, 2)), {"kind": ["a", None, "b"]}, {"kind": ["a", "b"]})
    >>> x, targets = table.encode()
    >>> tuple(x.shape), targets["kind"].tolist()             # None: a missing label, -1
    ((3, 2), [0, -1, 1])
    """

    source: str
    tasks: tuple[TaskColumn, ...]
    texts: list[str] | None
    features: np.ndarray | None
    targets: dict[str, list[Any]]
    vocab: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.features)  # type: ignore[arg-type]

    def encode(self, spec: Any = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``(inputs, {task: targets})`` as tensors: token ids through the text ``spec``
        (tags aligned to sub-words), or the feature matrix; missing targets as -1 / NaN.
        """
        targets: dict[str, Tensor] = {}
        tags = [t for t in self.tasks if t.kind == "tags"]
        if self.texts is not None:
            if spec is None:
                raise ValueError("texts need a text spec (a text backbone's input_spec)")
            x = spec.preprocess(self.texts)
            for t in tags:
                index = {c: i for i, c in enumerate(self.vocab[t.name])}
                per_row = [None if r is None else [index[w] for w in r]
                           for r in self.targets[t.name]]
                ids, targets[t.name] = spec.preprocess_tagged(self.texts, per_row)
                x = ids
        else:
            x = torch.as_tensor(self.features, dtype=torch.float32)
        for t in self.tasks:
            if t.kind == "class":
                index = {c: i for i, c in enumerate(self.vocab[t.name])}
                targets[t.name] = torch.tensor([-1 if v is None else index[v]
                                                for v in self.targets[t.name]])
            elif t.kind == "regression":
                targets[t.name] = torch.tensor([math.nan if v is None else v
                                                for v in self.targets[t.name]],
                                               dtype=torch.float32)
        return x, {t.name: targets[t.name] for t in self.tasks}


def read_multitask_table(
    path: str | os.PathLike[str], tasks: Sequence[TaskColumn | str], *,
    text_column: str | None = "text", feature_columns: Sequence[str] = (),
    vocab: Mapping[str, Sequence[str]] | None = None,
) -> MultitaskTable:
    """Read a CSV / JSON Lines / Parquet table for :class:`MultitaskTable` (see the module
    docstring). ``feature_columns`` (when given) are the input instead of ``text_column``;
    ``vocab`` fixes the classes and tags of each task (the training table's, for a
    validation table).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rows = ["text,label,ner", "Ann loved Paris,pos,B-PER O B-LOC", "dull,neg,O"]
    ...     _ = (Path(d) / "t.csv").write_text(chr(10).join(rows))
    ...     table = read_multitask_table(Path(d) / "t.csv", ["mood:class:label", "ner:tags"])
    ...     table.vocab
    {'mood': ['neg', 'pos'], 'ner': ['O', 'B-LOC', 'B-PER']}
    """
    from .text import _read_table

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{str(p)!r} does not exist (expected a .csv, .jsonl or "
                                ".parquet table)")
    specs = tuple(parse_task(t) if isinstance(t, str) else t for t in tasks)
    if not specs:
        raise ValueError("give at least one task (name:kind:column)")
    names = [t.name for t in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must differ; got {names}")
    table = _read_table(p)
    columns = list(table.columns)
    wanted = [t.column for t in specs] + (list(feature_columns) or [text_column or "text"])
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise ValueError(f"{str(p)!r} has no column(s) {absent}; its columns are "
                         f"{columns[:20]}")
    if not len(table):
        raise ValueError(f"{str(p)!r} holds no rows")
    texts = features = None
    if feature_columns:
        try:
            features = table[list(feature_columns)].astype(float).to_numpy()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{str(p)!r}: the feature columns must be numbers ({exc})"
                             ) from None
        if not np.isfinite(features).all():
            bad = int(np.nonzero(~np.isfinite(features).all(1))[0][0])
            raise ValueError(f"{str(p)!r}: data row {bad + 1} has a missing or non-finite "
                             "feature")
    else:
        texts = [str(v) if not _missing(v) else "" for v in table[text_column].tolist()]
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            raise ValueError(f"{str(p)!r}: {len(empty)} row(s) have no text in "
                             f"{text_column!r}, the first is data row {empty[0] + 1}")
    if any(t.kind == "tags" for t in specs) and texts is None:
        raise ValueError("tags tasks tag the words of a text column; feature columns have "
                         "none")
    targets: dict[str, list[Any]] = {}
    vocabs: dict[str, list[str]] = {}
    for t in specs:
        raw = table[t.column].tolist()
        fixed = list((vocab or {}).get(t.name, [])) or None
        values: list[Any] = []
        seen: list[str]
        if t.kind == "regression":
            for i, v in enumerate(raw):
                try:
                    values.append(None if _missing(v) else float(v))
                except ValueError:
                    raise ValueError(f"{str(p)!r}: task {t.name!r} data row {i + 1}: "
                                     f"{v!r} is not a number") from None
            targets[t.name] = [None if v is None or math.isnan(v) else v for v in values]
            continue
        if t.kind == "class":
            values = [None if _missing(v) else _label(v) for v in raw]
            seen = sorted({v for v in values if v is not None}, key=_number_key)
        else:
            values = [None if _missing(v) else
                      (list(map(str, v)) if isinstance(v, (list, tuple, np.ndarray))
                       else str(v).split()) for v in raw]
            seen = sorted({w for r in values if r is not None for w in r})
            if "O" in seen:
                seen = ["O"] + [s for s in seen if s != "O"]
        names_ = fixed if fixed is not None else seen
        unknown = sorted({v for r in values if r is not None
                          for v in (r if isinstance(r, list) else [r])} - set(names_))
        if unknown:
            raise ValueError(f"{str(p)!r}: task {t.name!r} has value(s) {unknown[:5]} that "
                             f"are not among {names_}")
        if not names_:
            raise ValueError(f"{str(p)!r}: task {t.name!r} has no label in {t.column!r}")
        targets[t.name], vocabs[t.name] = values, list(names_)
    return MultitaskTable(str(p), specs, texts, features, targets, vocabs)
