"""The Hamming benchmark on two source trees of dagh, in alternating turns: did a change cost speed?

    python benchmarks/compare_trees.py OLD_TREE NEW_TREE                 # 3 rounds, a reduced grid
    python benchmarks/compare_trees.py /tmp/before . --rounds 5 --bits 12,48,128
    python benchmarks/compare_trees.py /tmp/before . --without-faiss      # HammingIndex alone in the turns

Each turn runs that tree's own ``benchmarks/hamming_search.py`` in a fresh
process with the tree first on PYTHONPATH (old, new, old, new, ...), so a slow
phase of a shared host hits both trees alike. Per grid cell it prints the
median HammingIndex queries/s of each tree over the rounds, their ratio
(new / old), and the spread of each tree's own rounds: a ratio inside that
spread is noise. faiss's queries/s are printed too: they move only with the
host, which makes them a witness of its phases. ``--without-faiss`` hides faiss
from both trees' benchmark (an import stub first on PYTHONPATH), so only
HammingIndex runs: faiss's OpenMP threads, spinning after each of its turns,
then cannot slow the turn after theirs on a 2-core host.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\|\s+([\d.]+)\s+([\d.na]+)")


def run_tree(tree: Path, grid: list[str], hide: Path | None = None) -> dict[tuple[int, ...], tuple[float, float]]:
    """One turn: {(N, bits, k, nq): (HammingIndex q/s, faiss q/s or nan)} from the tree's benchmark."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*([str(hide)] if hide else []), str(tree)]))
    script = tree / "benchmarks" / "hamming_search.py"
    check = subprocess.run([sys.executable, "-c", "import dagh; print(dagh.__file__)"], env=env, cwd=tree,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(check).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{tree}: python imports dagh from {check}, not from the tree")
    out = subprocess.run([sys.executable, str(script), *grid, "--no-numpy"], env=env, cwd=tree, capture_output=True,
                         text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        match = ROW.match(line)
        if match:
            cell = tuple(int(v) for v in match.groups()[:4])
            rows[cell] = (float(match.group(5)), float(match.group(6)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", default="100000,1000000")
    parser.add_argument("--bits", default="12,48,128")
    parser.add_argument("--k", default="10,100")
    parser.add_argument("--nq", default="1,100")
    parser.add_argument("--budget", default="0.4")
    parser.add_argument("--without-faiss", action="store_true", help="time HammingIndex alone (faiss hidden)")
    args = parser.parse_args()
    hide = None
    if args.without_faiss:
        import tempfile

        hide = Path(tempfile.mkdtemp(prefix="no-faiss-"))
        (hide / "faiss.py").write_text("raise ImportError('hidden by compare_trees --without-faiss')\n")
    grid = ["--n", args.n, "--bits", args.bits, "--k", args.k, "--nq", args.nq, "--budget", args.budget]
    trees = {"old": args.old, "new": args.new}
    turns: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for name, tree in trees.items():
            print(f"round {r + 1}/{args.rounds}: {name} ({tree})", file=sys.stderr, flush=True)
            turns[name].append(run_tree(tree, grid, hide))
    cells = sorted(set.intersection(*(set(t) for ts in turns.values() for t in ts)))
    print(f"{'N':>8} {'bits':>4} {'k':>4} {'nq':>4} | {'old q/s':>9} {'new q/s':>9} {'new/old':>8} | "
          f"{'old spread':>11} {'new spread':>11} | {'faiss old':>9} {'faiss new':>9}")
    ratios = []
    for cell in cells:
        old = np.array([t[cell][0] for t in turns["old"]])
        new = np.array([t[cell][0] for t in turns["new"]])
        faiss_old = np.median([t[cell][1] for t in turns["old"]])
        faiss_new = np.median([t[cell][1] for t in turns["new"]])
        ratio = np.median(new) / np.median(old)
        ratios.append(ratio)
        spread = lambda a: f"{a.min() / np.median(a):.2f}-{a.max() / np.median(a):.2f}"  # noqa: E731
        print(f"{cell[0]:>8} {cell[1]:>4} {cell[2]:>4} {cell[3]:>4} | {np.median(old):>9.0f} {np.median(new):>9.0f} "
              f"{ratio:>7.2f}x | {spread(old):>11} {spread(new):>11} | {faiss_old:>9.0f} {faiss_new:>9.0f}")
    print(f"\nnew/old over {len(cells)} cells: median {np.median(ratios):.3f}x, "
          f"range {min(ratios):.2f}-{max(ratios):.2f}x ({args.rounds} rounds each, alternating)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
