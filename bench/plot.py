"""MB/s by system, from a results.json: `python bench/plot.py RESULTS PNG`.
Run by the benchmark's own environment, which has matplotlib."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(results_path, png_path):
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    sections = [("word count", results["wordcount"]), ("grep", results["grep"])]
    fig, axes = plt.subplots(
        len(sections),
        1,
        figsize=(9, 1.2 + 0.45 * sum(len(rows) for _, rows in sections)),
        gridspec_kw={"height_ratios": [len(rows) for _, rows in sections]},
    )
    for ax, (title, rows) in zip(axes, sections, strict=True):
        labels = [r["label"] for r in rows][::-1]
        values = [r["mb_s"] for r in rows][::-1]
        colors = ["#1f77b4" if "Drover" in label else "#9e9e9e" for label in labels]
        bars = ax.barh(labels, values, color=colors)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], padding=3, fontsize=8)
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_xlabel("MB/s (higher is faster)")
        ax.margins(x=0.15)
        ax.tick_params(axis="y", labelsize=8)
    corpus = results["corpus"]
    fig.suptitle(
        f"Drover and its peers on {corpus['size_bytes'] / 1e6:.0f} MB, "
        f"{results['machine']['cores']} cores ({results['started'][:10]})",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
