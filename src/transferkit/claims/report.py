"""The terminal table, ``report.md`` and the per-seed plots of claim results."""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .plotting import figure

__all__ = ["load_results", "terminal_table", "verdict_word", "write_report"]

_LEGACY = {True: "holds", False: "does not hold", None: "ERROR"}


def verdict_word(result: Mapping[str, Any]) -> str:
    """A result's verdict: ``holds``, ``does not hold``, ``inconclusive`` or ``ERROR``.

    Examples
    --------
    >>> verdict_word({"verdict": "inconclusive"}), verdict_word({"error": "ValueError: ..."})
    ('inconclusive', 'ERROR')
    """
    if result.get("error"):
        return "ERROR"
    return str(result.get("verdict") or _LEGACY[result.get("holds")])


def record_line(summary: Mapping[str, Any] | None) -> str:
    """One phrase for a claim's full-run record (see :mod:`transferkit.claims.records`).

    Examples
    --------
    >>> record_line(None)
    'no full record'
    >>> print(record_line({"verdict": "holds", "seeds": 10, "series": "confirmation-1",
    ...                    "date": "2026-12-06", "commit": "abc1234", "stale": True}))
    ... # doctest: +NORMALIZE_WHITESPACE
    full record: holds (10 seeds, confirmation-1, 2026-12-06, abc1234;
        STALE: code or config changed since)
    """
    if summary is None:
        return "no full record"
    stale = "; STALE: code or config changed since" if summary["stale"] else ""
    return (f"full record: {summary['verdict']} ({summary['seeds']} seeds, {summary['series']}, "
            f"{summary['date']}, {summary['commit'] or 'no commit'}{stale})")


def _num(x: Any, fmt: str = "+.4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, fmt)


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.2g}" if x >= 1e-4 else "<1e-4"


def _seeds_needed(c: Mapping[str, Any]) -> str:
    if c.get("verdict") != "inconclusive":
        return ""
    n = c.get("seeds_for_power")
    return "> 100000" if n is None else str(n)


def comparison_rows(result: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for c in result.get("comparisons", []):
        lo, hi = c["ci95"]
        rows.append(
            [
                c.get("label", f"{c['method']} vs {c['baseline']}")
                + ("" if c.get("own", True) else " (extra)"),
                _num(c["delta_mean"]),
                f"[{_num(lo)}, {_num(hi)}]",
                _num(c["required_delta"], ".3g"),
                _p(c["p_value"]),
                _p(c.get("p_short")),
                _p(c.get("p_zero")),
                c.get("verdict") or ("holds" if c["holds"] else "does not hold"),
                _seeds_needed(c),
            ]
        )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def terminal_table(results: Sequence[Mapping[str, Any]],
                   records: Mapping[str, Mapping[str, Any] | None] | None = None) -> str:
    """The plain-text table printed after ``transferkit reproduce``; with ``records``
    (claim -> :func:`~transferkit.claims.records.record_summary`), each claim's full-run
    record is printed under its verdict.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> from transferkit.claims.runner import run_claim
    >>> with tempfile.TemporaryDirectory() as out:
    ...     result = run_claim(claim, "quick", out_dir=out)
    >>> print(terminal_table([result]).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    claim  comparison  delta  95% CI  need  p  p(short)  p(>0)  verdict  seeds@80%
    """
    header = ["claim", "comparison", "delta", "95% CI", "need", "p", "p(short)", "p(>0)",
              "verdict", "seeds@80%"]
    blank = [""] * (len(header) - 2)
    rows: list[list[str]] = []
    for r in results:
        if r.get("error"):
            rows.append([r["claim"], f"ERROR: {r['error']}"[:90], *blank])
            continue
        for i, row in enumerate(comparison_rows(r)):
            rows.append([r["claim"] if i == 0 else "", *row])
        why = f"; {r['verdict_note']}" if r.get("verdict_note") else ""
        rows.append(["", f"-> {verdict_word(r)} ({r['budget']}, {len(r['seeds'])} seeds, "
                         f"{r['seconds']:.0f} s{why})", *blank])
        if records is not None:
            rows.append(["", f"   {record_line(records.get(r['claim']))}", *blank])
    return _table(header, rows)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def plot_seeds(result: Mapping[str, Any], out_dir: Path) -> Path | None:
    """Per-seed points of every arm, seeds joined by faint lines, means as bars."""
    arms: Mapping[str, Sequence[float]] = result.get("arms") or {}
    if not arms:
        return None
    names = list(arms)
    with figure(out_dir, result["claim"], figsize=(max(4.0, 0.55 * len(names) + 1.5), 3.6)) \
            as (fig, path):
        _draw_seeds(fig.add_subplot(1, 1, 1), result, arms, names)
    return path


def _draw_seeds(ax: Any, result: Mapping[str, Any], arms: Mapping[str, Sequence[float]],
                names: list[str]) -> None:
    n_seeds = len(next(iter(arms.values())))
    # join each seed's points within a setting (arms named "<setting>/<arm>")
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(names):
        groups.setdefault(a.rsplit("/", 1)[0] if "/" in a else "", []).append(i)
    for idx in groups.values():
        for s in range(n_seeds):
            ax.plot(idx, [arms[names[i]][s] for i in idx], color="0.8", lw=0.6, zorder=1)
    for i, a in enumerate(names):
        v = arms[a]
        ax.scatter([i] * len(v), v, s=14, zorder=2)
        mean = sum(v) / len(v)
        ax.hlines(mean, i - 0.3, i + 0.3, color="k", lw=1.5, zorder=3)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    label = result["metric"] + (" (higher is better)" if result["higher_is_better"]
                                else " (lower is better)")
    # wrapped to the axis' height: a long metric name is not cut at the figure's edge
    ax.set_ylabel(textwrap.fill(label.replace("_", " "), 34), fontsize=8)
    ax.set_title(f"{result['claim']}: per-seed results ({result['budget']})", fontsize=9)


_COLOURS = {"holds": "tab:green", "does not hold": "tab:red", "inconclusive": "0.55"}


def plot_verdicts(results: Sequence[Mapping[str, Any]], out_dir: Path) -> Path | None:
    """Every claim's own comparisons on one axis: the distance of the mean improvement
    from its margin in units of the seeds' spread, ``(delta - need) / sd``, with its
    one-sided 95% bounds (``+- t_0.95(n-1) / sqrt(n)``). A bar wholly right of 0 holds,
    wholly left of 0 does not hold, across 0 is inconclusive; few seeds make long bars."""
    from scipy import stats

    rows = []
    for r in results:
        for c in r.get("comparisons", []) if not r.get("error") else []:
            sd, n = c.get("delta_std"), c.get("n", 0)
            if not c.get("own", True) or not n or n < 2 or not sd:
                continue
            t = float(stats.t.ppf(0.95, n - 1)) / math.sqrt(n)
            z = (c["delta_mean"] - c["required_delta"]) / sd
            verdict = c.get("verdict") or ("holds" if c["holds"] else "does not hold")
            rows.append((f"{r['claim']}: {c.get('label', c['method'])} ({n} seeds)", z, t,
                         verdict))
    if not rows:
        return None
    with figure(out_dir, "verdicts", figsize=(7.5, 0.28 * len(rows) + 1.4)) as (fig, path):
        ax = fig.add_subplot(1, 1, 1)
        edge = 12.0  # a huge effect is drawn at the edge, so it does not squeeze the rest
        for i, (_, z, t, verdict) in enumerate(rows):
            y = len(rows) - 1 - i
            lo, hi = max(z - t, -edge), min(z + t, edge)
            ax.plot([lo, hi], [y, y], color=_COLOURS[verdict], lw=2.5, solid_capstyle="butt")
            marker = ">" if z > edge else "<" if z < -edge else "o"
            ax.plot([min(max(z, -edge), edge)], [y], marker, color=_COLOURS[verdict], ms=4)
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([label for label, *_ in reversed(rows)], fontsize=6.5)
        ax.set_xlabel("(mean improvement - margin) / seed-to-seed sd, with one-sided 95% "
                      "bounds", fontsize=8)
        lo, hi = ax.get_xlim()
        ax.set_xlim(max(lo, -edge - 0.5), min(hi, edge + 0.5))
        handles = [ax.plot([], [], color=c, lw=2.5)[0] for c in _COLOURS.values()]
        ax.legend(handles, list(_COLOURS), fontsize=7, loc="lower right")
        ax.set_title("Own comparisons: right of 0 holds, left of 0 does not hold, "
                     "across 0 inconclusive", fontsize=8)
    return path


def claim_section(result: Mapping[str, Any], images: Sequence[Path], notes: str,
                  record: Mapping[str, Any] | None = None) -> str:
    name = result["claim"]
    parts = [
        f"## `{name}` — {verdict_word(result)}",
        "",
        f"*{result['paper']}*",
        "",
        f"Claim: {result['statement']}",
        "",
    ]
    if result.get("error"):
        parts += [
            "**The run failed:**",
            "",
            "```",
            result.get("traceback") or result["error"],
            "```",
            "",
        ]
        return "\n".join(parts)
    series = f" ({result['series']})" if result.get("series") else ""
    parts.append(
        f"Budget `{result['budget']}`, {len(result['seeds'])} seeds{series}, "
        f"{result['seconds']:.0f} s. Metric: `{result['metric']}` "
        f"({'higher' if result['higher_is_better'] else 'lower'} is better)."
    )
    parts.append("")
    if result.get("verdict_note"):
        parts += [f"Verdict capped at inconclusive: {result['verdict_note']}.", ""]
    parts += [f"Beside it, the {record_line(record)}.", ""]
    summary = result.get("summary", {})
    rows = [
        [
            a,
            _num(s["mean"], ".4f"),
            _num(s["std"], ".4f"),
            f"[{_num(s['ci95'][0], '.4f')}, {_num(s['ci95'][1], '.4f')}]",
        ]
        for a, s in summary.items()
    ]
    parts += [_md_table(["arm", "mean", "std", "95% CI"], rows), ""]
    parts += [
        _md_table(
            ["comparison", "delta (better > 0)", "95% CI", "need", "p (H0: delta <= need)",
             "p (H0: delta >= need)", "p (H0: delta <= 0)", "verdict",
             "seeds for 80% power"],
            comparison_rows(result),
        ),
        "",
    ]
    if result.get("nonfinite"):
        diverged = "; ".join(f"`{a}` on seeds {ss}" for a, ss in result["nonfinite"].items())
        parts += [f"Non-finite (diverged) results, counted as losses: {diverged}.", ""]
    for img in images:
        parts += [f"![{img.stem}]({img.name})", ""]
    if notes:
        parts += [notes.strip(), ""]
    return "\n".join(parts)


def load_results(out_dir: str | os.PathLike[str], names: Sequence[str]) -> list[dict[str, Any]]:
    """Results of the named claims found in ``out_dir`` (missing ones are skipped).

    Examples
    --------
    See :func:`write_report`; a folder without results gives none:

    >>> load_results(".", ["no-such-claim"])
    []
    """
    found = []
    for name in names:
        path = Path(out_dir) / f"{name}.json"
        if path.exists():
            try:
                found.append(json.loads(path.read_text()))
            except ValueError:
                continue
    return found


def write_report(results: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str],
                 records: Mapping[str, Mapping[str, Any] | None] | None = None) -> Path:
    """Write ``report.md`` with every result's tables and plots, each beside its claim's
    full-run record (``records``: claim -> record summary; looked up when not given);
    return its path.

    Examples
    --------
    >>> import tempfile
    >>> from transferkit.claims.demo import demo_claim
    >>> claim = demo_claim()
    >>> from transferkit.claims.base import CLAIMS
    >>> from transferkit.claims.runner import run_claim
    >>> with tempfile.TemporaryDirectory() as out, CLAIMS.temporary("demo", claim):
    ...     _ = run_claim(claim, "quick", out_dir=out)
    ...     found = load_results(out, ["demo", "l2sp"])      # what is in the folder
    ...     report = write_report(found, out, records={"demo": None})
    ...     [r["claim"] for r in found], report.name, "better vs base" in report.read_text()
    (['demo'], 'report.md', True)
    """
    from .base import create_claim
    from .records import record_summary

    out = Path(out_dir)
    if records is None:
        records = {r["claim"]: record_summary(r["claim"]) for r in results}
    sections = []
    summary_rows = []
    for r in results:
        images: list[Path] = []
        notes = ""
        try:
            claim = create_claim(r["claim"])
            notes = claim.notes
            if not r.get("error"):
                p = plot_seeds(r, out)
                if p is not None:
                    images.append(p)
                if claim.plot is not None:
                    images += list(claim.plot(r, out))
        except Exception as exc:  # a broken plot must not lose the report
            notes += f"\n\n(plotting failed: {type(exc).__name__}: {exc})"
        record = records.get(r["claim"])
        sections.append(claim_section(r, images, notes, record))
        summary_rows.append(
            [
                f"`{r['claim']}`",
                verdict_word(r),
                r.get("budget", ""),
                str(len(r.get("seeds", []))),
                f"{r.get('seconds', 0):.0f}",
                "none" if record is None else
                f"{record['verdict']} ({record['seeds']} seeds, {record['date']})"
                + (" STALE" if record["stale"] else ""),
            ]
        )
    try:
        overview = plot_verdicts(results, out)
    except Exception:  # a broken overview must not lose the report
        overview = None
    head = [
        "# transferkit reproduce — report",
        "",
        "Each verdict is computed from paired per-seed results and has three outcomes. A "
        "comparison **holds** when the one-sided paired t-test of H0 \"mean improvement <= "
        "required delta\" rejects at 0.05 (the improvement is shown to exceed its margin, "
        "not merely zero); it **does not hold** when the test of H0 \"mean improvement >= "
        "required delta\" rejects at 0.05 (shown to fall short of the margin); otherwise it "
        "is **inconclusive**, and the table says how many seeds a paired test would need for "
        "80% power at the observed mean and spread. Non-inferiority and bound comparisons "
        "are the same tests with a negative margin or a constant. A claim holds when all its "
        "own comparisons hold, does not hold when any does not, and is inconclusive "
        "otherwise, and always when it ran fewer than 5 seeds. Quick budgets run seeds "
        "0..n-1, the ones development looked at; full budgets run a confirmation series "
        "(1000.., then 2000.. after a change made by looking at a full verdict) that no "
        "development run used. Beside each result stands its claim's record: the verdict "
        "of the last full run the project ships, marked STALE when the code or the full "
        "config changed since. A record is never an input to a verdict.",
        "",
        _md_table(["claim", "verdict", "budget", "seeds", "seconds", "full record"],
                  summary_rows),
        "",
        *([f"![verdicts]({overview.name})", ""] if overview is not None else []),
    ]
    return atomic_write_text(out / "report.md", "\n".join(head + sections))
