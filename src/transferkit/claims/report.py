"""The terminal table, ``report.md`` and the per-seed plots of claim results."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .plotting import figure

_VERDICT = {True: "holds", False: "does not hold", None: "ERROR"}


def _num(x: Any, fmt: str = "+.4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, fmt)


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.2g}" if x >= 1e-4 else "<1e-4"


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
                _p(c["p_value"]),
                _p(c.get("p_zero")),
                _num(c["required_delta"], ".3g"),
                "yes" if c["holds"] else "no",
            ]
        )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def terminal_table(results: Sequence[Mapping[str, Any]]) -> str:
    """The plain-text table printed after ``transferkit reproduce``."""
    header = ["claim", "comparison", "delta", "95% CI", "p", "p(>0)", "need", "holds"]
    rows: list[list[str]] = []
    for r in results:
        if r.get("error"):
            rows.append([r["claim"], f"ERROR: {r['error']}"[:90], "", "", "", "", "", ""])
            continue
        for i, row in enumerate(comparison_rows(r)):
            rows.append([r["claim"] if i == 0 else "", *row])
        rows.append(
            [
                "",
                f"-> {_VERDICT[r['holds']]} ({r['budget']}, {len(r['seeds'])} seeds, "
                f"{r['seconds']:.0f} s)",
                "",
                "",
                "",
                "",
                "",
                "",
            ]
        )
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
    ax.set_ylabel(
        result["metric"]
        + (" (higher is better)" if result["higher_is_better"] else " (lower is better)")
    )
    ax.set_title(f"{result['claim']}: per-seed results ({result['budget']})", fontsize=9)


def claim_section(result: Mapping[str, Any], images: Sequence[Path], notes: str) -> str:
    name = result["claim"]
    parts = [
        f"## `{name}` — {_VERDICT[result.get('holds')]}",
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
    parts.append(
        f"Budget `{result['budget']}`, {len(result['seeds'])} seeds, "
        f"{result['seconds']:.0f} s. Metric: `{result['metric']}` "
        f"({'higher' if result['higher_is_better'] else 'lower'} is better)."
    )
    parts.append("")
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
            ["comparison", "delta (better > 0)", "95% CI", "p (H0: delta <= need)",
             "p (H0: delta <= 0)", "need", "holds"],
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
    """Results of the named claims found in ``out_dir`` (missing ones are skipped)."""
    found = []
    for name in names:
        path = Path(out_dir) / f"{name}.json"
        if path.exists():
            try:
                found.append(json.loads(path.read_text()))
            except ValueError:
                continue
    return found


def write_report(results: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``report.md`` with every result's tables and plots; return its path."""
    from .base import get_claim

    out = Path(out_dir)
    sections = []
    summary_rows = []
    for r in results:
        images: list[Path] = []
        notes = ""
        try:
            claim = get_claim(r["claim"])
            notes = claim.notes
            if not r.get("error"):
                p = plot_seeds(r, out)
                if p is not None:
                    images.append(p)
                if claim.plot is not None:
                    images += list(claim.plot(r, out))
        except Exception as exc:  # a broken plot must not lose the report
            notes += f"\n\n(plotting failed: {type(exc).__name__}: {exc})"
        sections.append(claim_section(r, images, notes))
        summary_rows.append(
            [
                f"`{r['claim']}`",
                _VERDICT[r.get("holds")],
                r.get("budget", ""),
                str(len(r.get("seeds", []))),
                f"{r.get('seconds', 0):.0f}",
            ]
        )
    head = [
        "# transferkit reproduce — report",
        "",
        "Each claim's verdict is computed from paired per-seed results: a comparison holds "
        "when the one-sided paired t-test of H0 \"mean improvement <= required delta\" gives "
        "p < 0.05, so the improvement is shown to exceed its margin, not merely zero "
        "(non-inferiority and bound comparisons are the same test with a negative margin or "
        "a constant). Quick budgets run seeds 0..n-1, the ones development looked at; full "
        "budgets run confirmation seeds 1000.. that no development run used.",
        "",
        _md_table(["claim", "verdict", "budget", "seeds", "seconds"], summary_rows),
        "",
    ]
    return atomic_write_text(out / "report.md", "\n".join(head + sections))
