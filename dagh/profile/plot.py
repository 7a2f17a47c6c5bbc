"""Optional PNG plot of a profile (needs matplotlib: pip install 'dagh[plot]')."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dagh._optional import require


def plot_profile(report: dict[str, Any], samples: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    matplotlib = require("matplotlib", extra="plot", purpose="--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, values in samples.items():
        if label.startswith("encode") and label.endswith("batch 1"):
            left.hist(values, bins=40, alpha=0.6, label=label.replace("encode ", ""))
    left.set_xlabel("encode latency, batch 1 (ms)")
    left.set_ylabel("count")
    left.set_title("Encode latency per precision")
    left.legend()
    for backend in sorted({e["index_backend"] for e in report["search"] if e["status"] == "ok"}):
        for k in sorted({e["k"] for e in report["search"] if e["status"] == "ok"}):
            rows = sorted((e["gallery"], e["latency"]["p50_ms"]) for e in report["search"]
                          if e["status"] == "ok" and e["index_backend"] == backend and e["k"] == k)
            if rows:
                right.plot(*zip(*rows), marker="o", label=f"{backend} k={k}")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("gallery size (codes)")
    right.set_ylabel("search latency p50 (ms), 1 query")
    right.set_title("Search latency vs gallery size")
    right.legend()
    fig.suptitle(f"dagh-profile: {report['export']['code_bits']}-bit codes on {report['environment'].get('cpu')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
