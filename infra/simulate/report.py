"""The simulator's results as a table, as JSON, or as one plot a scenario."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from infra.simulate.scenarios import Result

HEADERS = (
    "scenario",
    "first map task",
    "peak map/reduce",
    "task-min",
    "$ Fargate",
    "$ Spot",
    "to zero, map/reduce",
    "work stopped",
    "below need",
)


def _seconds(values: Sequence[int | None]) -> str:
    if not values:
        return "-"
    return ", ".join("never" if v is None else f"{v} s" for v in values)


def _minutes(value: float | None) -> str:
    return "never" if value is None else f"{value:g} min"


def row(r: Result) -> list[str]:
    return [
        r.name,
        _seconds(r.first_map_task_s),
        f"{r.peak_map}/{r.peak_reduce}",
        f"{sum(r.task_minutes.values()):.1f}",
        f"{r.usd_fargate:.4f}",
        f"{r.usd_spot:.4f}",
        f"{_minutes(r.rest_min['map'])} / {_minutes(r.rest_min['reduce'])}",
        str(len(r.interrupted)),
        str(len(r.below_need)),
    ]


def table(results: Sequence[Result]) -> str:
    """A Markdown table, one row a scenario."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


def as_json(results: Sequence[Result]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)


def plot(results: Sequence[Result], out_dir: Path) -> list[Path]:
    """One PNG a scenario: tasks and backlog over time, per fleet."""
    # Only plotting needs matplotlib; the table and JSON do not.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        times = [t / 60 for t, _ in r.timeline]
        fig, axes = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
        for ax, fleet in zip(axes, ("map", "reduce"), strict=True):
            rows = [row for _, row in r.timeline]
            ax.step(times, [x[f"{fleet}_tasks"] for x in rows], where="post", label="tasks")
            ax.step(
                times,
                [x[f"{fleet}_desired"] for x in rows],
                where="post",
                linestyle="--",
                label="desired",
            )
            ax.set_ylabel(f"{fleet} tasks")
            backlog = ax.twinx()
            backlog.fill_between(
                times,
                [x[f"{fleet}_backlog"] for x in rows],
                step="post",
                alpha=0.2,
                color="tab:green",
                label="backlog",
            )
            backlog.set_ylabel("messages")
            lines, labels = ax.get_legend_handles_labels()
            more, more_labels = backlog.get_legend_handles_labels()
            ax.legend(lines + more, labels + more_labels, loc="upper right", fontsize=8)
        axes[-1].set_xlabel("minutes")
        fig.suptitle(f"{r.name}: {r.title}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{r.name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
