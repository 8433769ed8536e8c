"""Metric tables for the terminal and for markdown reports, laid out like the paper's.

COCO metrics print as fractions with three decimals (Table 3); MPII and PoseTrack as
percentages with one decimal (Tables 2 and 4).  A metric that does not apply (no such
joint in the predictions' layout, no ground truth of that size) prints as ``n/a``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ftpose.evaluation.coco import METRICS as COCO_METRICS

PART_COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")


@dataclass
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, dict]]   # (row label, column -> value or None)
    percent: bool = False
    note: str = ""

    def cell(self, value) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, int):   # a count (identity switches)
            return str(value)
        text = f"{100 * value:.1f}" if self.percent else f"{value:.3f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"


def tables_for(dataset: str, metrics: dict, label: str = "") -> list[Table]:
    """The tables that show ``metrics`` of ``dataset`` (coco, mpii or posetrack)."""
    if dataset == "coco":
        return [Table("COCO keypoints (OKS AP/AR, pycocotools, at most 20 people per image)",
                      COCO_METRICS, [(label, metrics)])]
    unscored = [k.split("/", 1)[1] for k, v in metrics.items() if k.startswith("AP/") and v is None]
    note = (f"not in the predictions' keypoint layout, so left out of the columns and mAP: {', '.join(unscored)}"
            if unscored else "")
    tables = [Table(f"{'MPII multi-person' if dataset == 'mpii' else 'PoseTrack'} AP (PCKh@0.5 matching), %",
                    PART_COLUMNS + ("mAP",), [(label, metrics)], percent=True, note=note)]
    if dataset == "posetrack" and "MOTA" in metrics:
        row = {f"MOTA {c}": metrics.get(f"MOTA/{c}") for c in PART_COLUMNS}
        row.update({"MOTA": metrics["MOTA"], "MOTP": metrics["MOTP"], "Prec": metrics["precision"],
                    "Rec": metrics["recall"], "IDsw": metrics.get("switches")})
        tables.append(Table("PoseTrack tracking (CLEAR MOT per joint, averaged), %", tuple(row), [(label, row)],
                            percent=True))
    return tables


def render_text(tables: list[Table]) -> str:
    """Aligned plain-text tables."""
    blocks = []
    for table in tables:
        label_width = max([len(label) for label, _ in table.rows] + [0])
        cells = [[table.cell(values.get(c)) for c in table.columns] for _, values in table.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(table.columns)]
        lines = [table.title,
                 " " * label_width + "  " + "  ".join(c.rjust(w) for c, w in zip(table.columns, widths))]
        for (label, _), row in zip(table.rows, cells):
            lines.append(label.ljust(label_width) + "  " + "  ".join(v.rjust(w) for v, w in zip(row, widths)))
        if table.note:
            lines.append(f"({table.note})")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_markdown(tables: list[Table]) -> str:
    """GitHub-flavoured markdown tables."""
    blocks = []
    for table in tables:
        lines = [f"**{table.title}**", "",
                 "| | " + " | ".join(table.columns) + " |",
                 "|---|" + "---:|" * len(table.columns)]
        for label, values in table.rows:
            lines.append(f"| {label} | " + " | ".join(table.cell(values.get(c)) for c in table.columns) + " |")
        if table.note:
            lines += ["", f"_{table.note[0].upper()}{table.note[1:]}._"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
