"""Records of the full runs: the evidence a quick result is read beside.

The project ships, for every claim, the JSON of its last full run in this package's
``records/<claim>.json`` (``transferkit reproduce --full --record`` writes them): the
per-seed arms, the comparisons and the verdict, the series of seeds, the commit, date,
machine and seconds, and a **fingerprint** of what decides the numbers: the full budget's
config and the source of the recipe and of every transferkit module it imports, directly
or not (:func:`source_modules`). Docstrings, comments, the recipe's ``notes`` and its
``budgets`` (the full config is hashed on its own), and module-level strings used only
by them, are left out of the source hash, so prose and quick budgets can change without
making a record stale. The fingerprint is taken when a claim starts and checked when it
ends (:func:`before_run`): a run whose code changed meanwhile is not recorded.

``transferkit reproduce`` prints, and ``report.md`` shows, each result beside its claim's
record, and marks the record **stale** when today's fingerprint differs from the stored
one: the code or the full config changed since, and the record may no longer be what a
full run gives. A record is evidence to read, never an input: nothing reads a record to
decide a verdict, and :func:`recheck` recomputes a record's verdict from its stored arms
(a test does this for every shipped record). When what counts as prose changes here,
:func:`refingerprint` carries a record over only if the code at its commit and today's
code are equal under the new rule.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import datetime
import functools
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._io import atomic_write_json
from .base import Claim

__all__ = ["RECORDS", "carry", "checkout_state", "fingerprint", "load_record", "recheck",
           "record_summary", "refingerprint", "shipped", "source_modules", "write_record"]

RECORDS = Path(__file__).with_name("records")
"""Where the shipped records live (one ``<claim>.json`` each)."""
_PACKAGE = "transferkit"
_PROSE_KEYWORDS = frozenset({"notes", "budgets"})
_RUNS_CLAIMS = frozenset({"transferkit.claims.orchestration"})
"""Modules that run claims rather than compute them (which claims, where, the report):
``transferkit.claims`` exports :func:`~transferkit.claims.reproduce` from here, so every
recipe would otherwise reach the runner, the report and the records through its
package; the fingerprint follows what a seed computes, not how it is scheduled."""


@functools.cache
def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


class _Sources:
    """The source of transferkit's modules: as the files are now, or (``commit``) as a git
    commit of this checkout had them; each parsed once (a file again when it changed, so
    a fingerprint taken at a claim's end sees an edit made while it ran)."""

    def __init__(self, commit: str | None = None) -> None:
        self.commit = commit
        self._trees: dict[str, tuple[object, tuple[ast.Module, bool] | None]] = {}
        self._root = _git("rev-parse", "--show-toplevel") if commit else None

    def tree(self, name: str) -> tuple[ast.Module, bool] | None:
        """(parsed module, whether it is a package), or None: no such module."""
        path = _module_file(name)
        version: object = None
        if self.commit is None and path is not None:
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
        if name not in self._trees or self._trees[name][0] != version:
            self._trees[name] = (version, self._parse(name))
        return self._trees[name][1]

    def _parse(self, name: str) -> tuple[ast.Module, bool] | None:
        path = _module_file(name)
        if path is None:
            return None  # a name imported from a module, not a module
        if self.commit is None:
            return ast.parse(path.read_text(encoding="utf-8")), path.name == "__init__.py"
        if self._root is None:
            raise RuntimeError("the sources of a commit need a git checkout")
        rel = path.resolve().relative_to(Path(self._root).resolve()).as_posix()
        text = _git("show", f"{self.commit}:{rel}", strip=False)
        if text is None:
            return None  # the module did not exist at that commit
        return ast.parse(text), path.name == "__init__.py"


_NOW = _Sources()


def _imports(name: str, tree: ast.Module, is_package: bool) -> set[str]:
    """The transferkit modules ``tree`` (module ``name``) imports, anywhere in its body."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # submodules named
    return {m for m in found if m == _PACKAGE or m.startswith(_PACKAGE + ".")}


def source_modules(module: str, sources: _Sources | None = None) -> list[str]:
    """``module`` and every transferkit module it imports, directly or through others (in
    function bodies too), sorted; found by reading the source, not by importing it.

    Examples
    --------
    >>> mods = source_modules("transferkit.claims.stats")
    >>> "transferkit.claims.stats" in mods, "transferkit.claims.records" in mods
    (True, False)
    """
    sources = sources or _NOW
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        parsed = sources.tree(name)
        if parsed is None:
            continue
        seen.add(name)
        todo.extend(_imports(name, *parsed) - seen - _RUNS_CLAIMS)
        parent = name.rpartition(".")[0]
        if parent and parent not in seen:
            todo.append(parent)  # importing a.b runs a/__init__.py
    return sorted(seen)


def _is_text(node: ast.AST) -> bool:
    """A string built from literals alone (constants, their concatenation, f-strings)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_text(node.left) and _is_text(node.right)
    return isinstance(node, ast.JoinedStr)


class _StripProse(ast.NodeTransformer):
    """Remove what does not compute: docstrings, the prose and budget keywords of calls
    (``notes=``, ``budgets=``), and module-level strings used only inside them (a
    ``NOTES = "..."`` the notes are built from), so that the hash follows the code."""

    def visit_Module(self, node: ast.Module) -> Any:
        inside: set[str] = set()
        for call in ast.walk(node):
            if isinstance(call, ast.Call):
                for k in call.keywords:
                    if k.arg in _PROSE_KEYWORDS:
                        inside.update(n.id for n in ast.walk(k.value) if isinstance(n, ast.Name))
        self._drop_docstring(node)
        self.generic_visit(node)  # the prose keywords go
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)}
        node.body = [s for s in node.body if not (
            isinstance(s, ast.Assign) and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name) and s.targets[0].id in inside
            and s.targets[0].id not in used and _is_text(s.value))] or [ast.Pass()]
        return node

    def _drop_docstring(self, node: Any) -> Any:
        body = node.body
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        return self.generic_visit(self._drop_docstring(node))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        return self.generic_visit(self._drop_docstring(node))

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> Any:
        return self.generic_visit(self._drop_docstring(node))

    def visit_Call(self, node: ast.Call) -> Any:
        node.keywords = [k for k in node.keywords if k.arg not in _PROSE_KEYWORDS]
        return self.generic_visit(node)


def _code_text(module: str, sources: _Sources) -> str:
    parsed = sources.tree(module)
    assert parsed is not None
    tree = _StripProse().visit(copy.deepcopy(parsed[0]))
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(claim: Claim, commit: str | None = None) -> dict[str, Any]:
    """What decides a claim's full-budget numbers, hashed: ``config`` (the full budget's
    config), ``code`` (the recipe and every module it imports, without prose), ``modules``
    (their names) and ``digest`` (both hashes together, 16 hex digits). With ``commit``,
    the code is read as that git commit of this checkout had it (the config is today's).

    Examples
    --------
    >>> from transferkit.claims import create_claim
    >>> fp = fingerprint(create_claim("bbse-correction"))
    >>> len(fp["digest"]), "transferkit.labelshift" in fp["modules"]
    (16, True)
    """
    from .runner import _jsonable

    sources = _NOW if commit is None else _Sources(commit)
    cfg = json.dumps(_jsonable(dataclasses.asdict(claim.config("full"))), sort_keys=True,
                     default=str)
    modules = source_modules(claim.run.__module__, sources)
    code = _sha("\n".join(f"{m}\n{_code_text(m, sources)}" for m in modules))
    config = _sha(cfg)
    return {"digest": _sha(config + code)[:16], "config": config[:16], "code": code[:16],
            "modules": modules}


def _git(*args: str, strip: bool = True) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if strip else out.stdout


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(modules: Iterable[str] = ()) -> dict[str, Any]:
    """Commit, date and machine of a run, for its record; ``dirty`` says whether any of
    ``modules`` (the fingerprint's) differs from that commit, so the commit alone does not
    give the code that ran."""
    commit = _git("rev-parse", "HEAD")
    files = [str(f) for f in map(_module_file, modules) if f is not None]
    status = _git("status", "--porcelain", "--", *files) if commit and files else None
    return {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count(), "system": platform.system(),
                    "arch": platform.machine()},
    }


def checkout_state() -> dict[str, str]:
    """The commit of this git checkout and whether its tracked files have uncommitted
    changes (``{}`` outside a checkout): the code a run ran, for tags and logs.

    Examples
    --------
    >>> state = checkout_state()
    >>> state == {} or (len(state["commit"]) == 40 and state["dirty"] in ("true", "false"))
    True
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": str(bool(status)).lower()}


def before_run(claim: Claim) -> dict[str, Any]:
    """The fingerprint and provenance of the code about to run a claim: take it before the
    run and hand it to :func:`make_record`, so that the record describes the code that
    ran, and a change made while the claim ran is caught."""
    fp = fingerprint(claim)
    return {**provenance(fp["modules"]), "fingerprint": fp}


def make_record(result: Mapping[str, Any], claim: Claim,
                start: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record of a full run's result (its JSON without the plot extras), with
    :func:`provenance` and :func:`fingerprint` as taken by :func:`before_run` (``start``;
    taken now when not given). A run whose code or full config changed between ``start``
    and now is refused: the numbers would not be the fingerprinted code's."""
    if result.get("budget") != "full":
        raise ValueError(f"a record is made from a full run; got budget {result.get('budget')!r}")
    if result.get("error"):
        raise ValueError(f"claim {claim.name!r} ended in an error; there is nothing to record")
    if result.get("overrides"):
        raise ValueError(f"claim {claim.name!r} ran with --set {result['overrides']}; a record "
                         "is of the full budget as it stands")
    body = {k: v for k, v in result.items() if k not in ("extras", "traceback")}
    now = before_run(claim)
    start = start or now
    if start["fingerprint"]["digest"] != now["fingerprint"]["digest"]:
        raise ValueError(f"claim {claim.name!r}: its code or full config changed while it ran "
                         "(the fingerprint differs from the one taken at its start); not "
                         "recorded")
    return {**body, "record": {**start, "date": now["date"]}}


def _folder(folder: str | os.PathLike[str] | None) -> Path:
    return Path(folder) if folder is not None else RECORDS


def write_record(result: Mapping[str, Any], claim: Claim,
                 folder: str | os.PathLike[str] | None = None,
                 start: Mapping[str, Any] | None = None) -> Path:
    """Write the record of a full run to ``folder/<claim>.json`` (atomically; by default
    the shipped records, :data:`RECORDS`); ``start`` as for :func:`make_record`.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> from transferkit.claims.runner import run_claim
    >>> with tempfile.TemporaryDirectory() as d:
    ...     full = run_claim(claim, "full", out_dir=d)
    ...     path = write_record(full, claim, folder=d + "/records")
    ...     stored = load_record("demo", folder=d + "/records")
    >>> stored["verdict"], len(stored["seeds"]), sorted(stored["record"]["fingerprint"])[:2]
    ('holds', 10, ['code', 'config'])
    """
    from .runner import _jsonable

    path = _folder(folder) / f"{claim.name}.json"
    atomic_write_json(path, _jsonable(make_record(result, claim, start)))
    return path


def load_record(name: str, folder: str | os.PathLike[str] | None = None
                ) -> dict[str, Any] | None:
    """The stored record of claim ``name``, or None (none shipped, or unreadable).

    Examples
    --------
    >>> record = load_record("gradnorm")                    # a shipped full run
    >>> record["verdict"], record["budget"], "fingerprint" in record["record"]
    ('holds', 'full', True)
    """
    path = _folder(folder) / f"{name}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "record" in record else None


def record_summary(name: str, folder: str | os.PathLike[str] | None = None
                   ) -> dict[str, Any] | None:
    """What a report shows of claim ``name``'s record: ``verdict``, ``seeds`` (their
    number), ``series``, ``date``, ``commit`` and ``stale`` (the fingerprint changed, or
    the claim is gone); None when there is no record.

    Examples
    --------
    >>> s = record_summary("gradnorm")
    >>> s["verdict"], s["seeds"], isinstance(s["stale"], bool)
    ('holds', 10, True)
    """
    from .base import create_claim

    record = load_record(name, folder)
    if record is None:
        return None
    meta = record["record"]
    try:
        stale = fingerprint(create_claim(name))["digest"] != meta["fingerprint"]["digest"]
    except Exception:  # the claim or its code can no longer be read: the record is stale
        stale = True
    return {"verdict": record.get("verdict"), "seeds": len(record.get("seeds", [])),
            "series": record.get("series"), "date": str(meta.get("date", ""))[:10],
            "commit": (meta.get("commit") or "")[:7], "stale": stale,
            "seconds": record.get("seconds")}


def refingerprint(name: str, folder: str | os.PathLike[str] | None = None) -> bool:
    """Carry claim ``name``'s record over to today's fingerprint rule, when the code that
    ran it and today's code are the same under that rule: the code is read at the
    record's commit, and its fingerprint there and today's must be equal (and the full
    config's hash equal to the stored one). Returns whether the record was updated; a
    record whose code changed is left as it is (stale). For changes of this module's
    hashing (what counts as prose), never for changes of the code.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     refingerprint("gradnorm", folder=empty)             # no record there
    False
    """
    from .base import create_claim

    record = load_record(name, folder)
    if record is None or not record["record"].get("commit") or record["record"].get("dirty"):
        return False
    claim = create_claim(name)
    now = fingerprint(claim)
    if now["config"] != record["record"]["fingerprint"]["config"]:
        return False
    then = fingerprint(claim, commit=record["record"]["commit"])
    if then["digest"] != now["digest"] or record["record"]["fingerprint"] == now:
        return False
    record["record"]["fingerprint"] = now
    atomic_write_json(_folder(folder) / f"{name}.json", record)
    return True


def carry(name: str, before: Mapping[str, Any], after: Mapping[str, Any],
          folder: str | os.PathLike[str] | None = None) -> bool:
    """Carry claim ``name``'s record to today's code when a change left the claim's numbers
    bit for bit as they were: ``before`` and ``after`` are results of the same budget and
    seeds (no overrides), ``before`` run by the code the record fingerprints and ``after``
    by today's (their ``fingerprint`` fields), with identical arms. The record keeps its
    numbers and verdict, takes today's fingerprint, and lists the evidence under
    ``record.carried``. Returns whether it was carried; a mismatch raises ``ValueError``
    saying what differs.

    This is for behaviour-preserving changes (moving code, renaming): the evidence is a
    run of another budget than the record's, so it shows the change computes the same
    thing, not that the full run would be reproduced.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> import json
    >>> from transferkit.claims.base import CLAIMS
    >>> from transferkit.claims.runner import run_claim
    >>> with tempfile.TemporaryDirectory() as d, CLAIMS.temporary("demo", claim):
    ...     records = d + "/records"
    ...     path = write_record(run_claim(claim, "full", out_dir=d), claim, folder=records)
    ...     before = run_claim(claim, "quick", out_dir=d)      # by the record's code
    ...     stored = json.loads(path.read_text())              # then the code changes:
    ...     stored["record"]["fingerprint"]["digest"] = before["fingerprint"] = "0" * 16
    ...     _ = path.write_text(json.dumps(stored))
    ...     after = run_claim(claim, "quick", out_dir=d + "/after")  # by today's code
    ...     carry("demo", before, after, records), record_summary("demo", records)["stale"]
    (True, False)
    """
    from .base import create_claim

    record = load_record(name, folder)
    if record is None:
        return False
    claim = create_claim(name)
    now = fingerprint(claim)
    meta = record["record"]
    if meta["fingerprint"]["digest"] == now["digest"]:
        return False  # not stale: nothing to carry
    problems = []
    if before.get("claim") != name or after.get("claim") != name:
        problems.append("the results are not this claim's")
    if before.get("fingerprint") != meta["fingerprint"]["digest"]:
        problems.append(f"the first result ran code {before.get('fingerprint')}, the "
                        f"record's is {meta['fingerprint']['digest']}")
    if after.get("fingerprint") != now["digest"]:
        problems.append(f"the second result ran code {after.get('fingerprint')}, today's "
                        f"is {now['digest']}")
    for key in ("budget", "seeds", "overrides"):
        if before.get(key) != after.get(key):
            problems.append(f"their {key} differ")
    if before.get("overrides") or after.get("overrides"):
        problems.append("a result ran with overrides")
    if not before.get("arms") or before.get("arms") != after.get("arms"):
        problems.append("their arms are not identical")
    if problems:
        raise ValueError(f"record {name!r} not carried: " + "; ".join(problems))
    evidence = {"date": datetime.date.today().isoformat(), "from": meta["fingerprint"]["digest"],
                "to": now["digest"], "budget": after["budget"], "seeds": list(after["seeds"]),
                "commit": _git("rev-parse", "--short", "HEAD"),
                "evidence": "arms identical bit for bit before and after the change"}
    record["record"] = {**meta, "fingerprint": now,
                        "carried": [*meta.get("carried", []), evidence]}
    atomic_write_json(_folder(folder) / f"{name}.json", record)
    return True


def recheck(record: Mapping[str, Any], claim: Claim) -> dict[str, Any]:
    """Recompute a record's comparisons and verdict from its stored arms (with today's
    statistics and comparisons); what a test compares with the stored verdict.

    Examples
    --------
    >>> from transferkit.claims import create_claim
    >>> recheck(load_record("gradnorm"), create_claim("gradnorm"))["verdict"]  # from its arms
    'holds'
    """
    from .runner import judge_arms

    return judge_arms(claim, record["arms"], record["seeds"])


def shipped(folder: str | os.PathLike[str] | None = None) -> Iterable[str]:
    """Names of the claims that have a record (by default among the shipped ones).

    Examples
    --------
    >>> {"gradnorm", "mstn", "l2t"} <= set(shipped())
    True
    """
    return sorted(p.stem for p in _folder(folder).glob("*.json"))
