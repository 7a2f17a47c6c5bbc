"""Ablation of DAGH on the synthetic faces: which parts buy what mAP.

Trains every variant at 12 and 48 bits with 3 seeds on the same data (the
`make demo` protocol: 100 identities, 40 database + 10 query images each,
8 epochs) and prints mean +- std of mAP, precision@10 and radius-2 precision.

    python benchmarks/ablation.py --out runs/ablation.json

Runs already in --out are reused, so an interrupted benchmark picks up where
it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dagh.data import DataSource, load_splits
from dagh.fileio import atomic_write_text
from dagh.model import model_config
from dagh.train.config import TrainConfig
from dagh.train.loop import train
from dagh.train.losses import default_loss_config

# name -> (registered model, model overrides, loss overrides)
VARIANTS = {
    "DAGH (full)": ("dagh", {}, {}),
    "without attention": ("dagh", dict(input_attention=False, channel_attention=False,
                                       spatial_attention=False), {}),
    "tanh relaxation (no discrete layer)": ("dagh", dict(hash_activation="tanh"), {}),
    "without center term": ("dagh", {}, dict(center_weight=0.0)),
    "DDH-style baseline": ("ddh", {}, {}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", default="12,48")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--variants", default=",".join(str(i) for i in range(len(VARIANTS))),
                        help="indices of the variants to run (0 = full DAGH)")
    parser.add_argument("--out", required=True, help="JSON file of every run (read back to resume)")
    args = parser.parse_args()
    bits_list = [int(b) for b in args.bits.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = [list(VARIANTS)[int(i)] for i in args.variants.split(",")]
    out = Path(args.out)
    runs = json.loads(out.read_text())["runs"] if out.exists() else []
    done = {(r["variant"], r["bits"], r["seed"]) for r in runs}

    source = DataSource()
    splits = load_splits(source)
    total = len(chosen) * len(bits_list) * len(seeds)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in chosen:
            name, model_over, loss_over = VARIANTS[variant]
            for bits in bits_list:
                for seed in seeds:
                    if (variant, bits, seed) in done:
                        continue
                    t0 = time.perf_counter()
                    result = train(model_config(name, bits=bits, **model_over),
                                   default_loss_config(name, **loss_over),
                                   TrainConfig(epochs=args.epochs, seed=seed), source,
                                   Path(tmp) / "ckpt.pt", splits=splits, progress=False,
                                   log=lambda _msg: None)
                    r = result.report
                    runs.append({"variant": variant, "bits": bits, "seed": seed, "map": r.map,
                                 "p_at_10": r.precision_at_k[10], "p_r2": r.precision_at_radius,
                                 "seconds": time.perf_counter() - t0})
                    atomic_write_text(out, json.dumps({"epochs": args.epochs, "data": source.to_dict(),
                                                       "runs": runs}, indent=1))
                    print(f"[{len(runs)}/{total}] {variant:<38} {bits:>3} bits seed {seed}: "
                          f"mAP {r.map:.4f} ({runs[-1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
    print_table(runs, bits_list, chosen)
    return 0


def print_table(runs: list[dict], bits_list: list[int], variants: list[str]) -> None:
    def cell(variant: str, bits: int, key: str) -> str:
        values = [r[key] for r in runs if r["variant"] == variant and r["bits"] == bits]
        if not values:
            return "-"
        return f"{np.mean(values):.3f} ± {np.std(values):.3f}"

    header = "| variant | " + " | ".join(f"mAP {b} bits" for b in bits_list) + " | " + \
        " | ".join(f"P@10 {b} bits" for b in bits_list) + " | " + \
        " | ".join(f"P(r≤2) {b} bits" for b in bits_list) + " |"
    print(header)
    print("|" + "---|" * (1 + 3 * len(bits_list)))
    for v in variants:
        cells = [cell(v, b, "map") for b in bits_list] + [cell(v, b, "p_at_10") for b in bits_list] + \
            [cell(v, b, "p_r2") for b in bits_list]
        print(f"| {v} | " + " | ".join(cells) + " |")
    full = "DAGH (full)"
    for b in bits_list:
        base = [r["map"] for r in runs if r["variant"] == full and r["bits"] == b]
        if base:
            ratios = ", ".join(
                f"{v}: {np.mean([r['map'] for r in runs if r['variant'] == v and r['bits'] == b]) / np.mean(base):.2f}x"
                for v in variants if v != full and any(r["variant"] == v and r["bits"] == b for r in runs))
            print(f"mAP relative to full DAGH at {b} bits: {ratios}")


if __name__ == "__main__":
    sys.exit(main())
