"""Every public module says what it exports (``__all__``) and every public class and
function it exports has a docstring with a runnable example (the examples themselves run
as doctests with the rest of the tests)."""

import importlib
import inspect
import pkgutil

import pytest

import transferkit

# the command line parses and dispatches (its help is its documentation); recipes are
# documented by their notes and the report
NOT_API = ("transferkit.cli", "transferkit.claims.recipes")


def _public_modules():
    for info in pkgutil.walk_packages(transferkit.__path__, "transferkit."):
        parts = info.name.split(".")[1:]
        if info.name.startswith(NOT_API) or any(p.startswith("_") for p in parts):
            continue
        yield info.name


MODULES = sorted(_public_modules())


@pytest.mark.parametrize("name", MODULES)
def test_a_public_module_declares_its_exports(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not define: {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_class_and_function_has_an_example(name):
    module = importlib.import_module(name)
    without = []
    for attr in module.__all__:
        obj = getattr(module, attr)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not getattr(obj, "__module__", "").startswith("transferkit"):
            continue
        if ">>>" not in (inspect.getdoc(obj) or ""):
            without.append(attr)
    assert without == [], f"{name}: no example in the docstring of {without}"
