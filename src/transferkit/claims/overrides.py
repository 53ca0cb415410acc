"""``--set field=value``: override a claim's budget config from the command line.

Values are checked against the config dataclass's field types; nested configs take dotted
names (``black_box.steps=300``). The overridden config is what the runner hashes for its
seed cache and writes into the result JSON, with the overrides listed on their own.
"""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["apply_overrides", "parse_assignments"]

_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}``; a malformed item is a ValueError.

    Examples
    --------
    >>> parse_assignments(["steps=300", "black_box.lr=0.01"])
    {'steps': '300', 'black_box.lr': '0.01'}
    """
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set takes FIELD=VALUE; got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _convert(text: str, tp: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{name} takes true or false; got {text!r}")
    if tp in (int, float):
        try:
            value = tp(text)
        except ValueError:
            raise ValueError(f"{name} takes {tp.__name__}; got {text!r}") from None
        return value
    if tp is str:
        return text
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(tp):
            if arg is type(None) and text.lower() in ("none", "null"):
                return None
        errors = []
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _convert(text, arg, name)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        for c in choices:
            if str(c) == text:
                return c
        raise ValueError(f"{name} takes one of {list(choices)}; got {text!r}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"{name} takes a Python literal of type {tp}; got {text!r}") from None
    check = origin or tp
    if isinstance(check, type) and not isinstance(value, check):
        raise ValueError(f"{name} takes {tp}; got {text!r} ({type(value).__name__})")
    if check is tuple and isinstance(value, tuple):
        args = typing.get_args(tp)
        if args and args[-1] is Ellipsis and not all(isinstance(v, args[0]) for v in value):
            raise ValueError(f"{name} takes {tp}; got {text!r}")
    return value


def apply_overrides(cfg: Any, overrides: Mapping[str, str]) -> Any:
    """A copy of the frozen dataclass ``cfg`` with ``overrides`` (dotted names) applied.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Budget:
    ...     seeds: int = 5
    ...     lr: float = 0.1
    ...     arms: tuple[str, ...] = ("a", "b")
    >>> apply_overrides(Budget(), {"lr": "0.01", "arms": "('a', 'c')"})  # by each field's type
    Budget(seeds=5, lr=0.01, arms=('a', 'c'))
    >>> apply_overrides(Budget(), {"lr": "fast"})
    Traceback (most recent call last):
    ...
    ValueError: lr takes float; got 'fast'
    """
    if not overrides:
        return cfg
    nested: dict[str, dict[str, str]] = {}
    flat: dict[str, str] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes: dict[str, Any] = {}
    for key in list(flat) + list(nested):
        if key not in fields:
            raise ValueError(
                f"{type(cfg).__name__} has no field {key!r}; fields: {', '.join(sorted(fields))}"
            )
    for key, text in flat.items():
        if dataclasses.is_dataclass(getattr(cfg, key)):
            raise ValueError(f"{key} is a nested config: set its fields as {key}.FIELD=VALUE")
        changes[key] = _convert(text, hints[key], key)
    for key, sub in nested.items():
        inner = getattr(cfg, key)
        if not dataclasses.is_dataclass(inner):
            raise ValueError(f"{key} is not a nested config; set it as {key}=VALUE")
        try:
            changes[key] = apply_overrides(inner, sub)
        except ValueError as exc:
            raise ValueError(f"in {key}: {exc}") from None
    return dataclasses.replace(cfg, **changes)
