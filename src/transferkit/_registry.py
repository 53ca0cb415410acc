"""A tiny named registry (``register_*`` / ``create_*`` / ``list_*``), as in timm."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (classes, factories, claims) of one kind.

    Parameters
    ----------
    kind : str
        What is registered, used in error messages ("backbone", "claim", ...).
    base : type, optional
        When given, only subclasses of it can be registered (the kind's public base class).
    """

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind = kind
        self.base = base
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise TypeError(
                f"only {self.base.__name__} subclasses can be registered as a {self.kind}; "
                f"got {obj!r}"
            )
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a method registered for a moment, e.g. by a test)."""
        self.get(name)
        del self._items[name]

    @contextmanager
    def temporary(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` as ``name`` inside a ``with`` block only (for tests and demos).

        Examples
        --------
        >>> reg: Registry[int] = Registry("number")
        >>> with reg.temporary("one", 1):
        ...     reg.names()
        ['one']
        >>> reg.names()
        []
        """
        self.register(name, obj)
        try:
            yield obj
        finally:
            self._items.pop(name, None)

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
