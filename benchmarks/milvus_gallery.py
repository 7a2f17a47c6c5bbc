"""The same gallery in HammingIndex, in Milvus Lite through MilvusGallery, and in Milvus Lite through raw
pymilvus calls: insert rate, queries per second at nq 1 and 100, recall@10 against the exact answer, and
the adapter's overhead against raw pymilvus (ratios printed).

    python benchmarks/milvus_gallery.py --n 100000,1000000 --bits 48 --out runs/milvus_gallery.json

Milvus Lite has BIN_FLAT only (exact). ``--server`` also measures BIN_IVF_FLAT (nlist 4·sqrt(n), nprobe
8/32/128) on the embedded Milvus standalone server (``pip install 'dagh[milvus-server]'``), started here
inside a private network namespace (``unshare -rn``), because that server listens on every interface.
Everything runs on this machine and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def recall_at(ids: np.ndarray, exact_d: np.ndarray, got_d: np.ndarray) -> float:
    """Share of the exact k nearest distances found (ties make ids ambiguous; distances are not)."""
    hits = 0
    for want, got in zip(exact_d, got_d):
        want_counts = dict(zip(*np.unique(want, return_counts=True)))
        for value, count in zip(*np.unique(got[got >= 0], return_counts=True)):
            hits += min(count, want_counts.get(value, 0))
    return hits / exact_d.size


def raw_milvus(uri: str, name: str, codes: np.ndarray, ids: np.ndarray, bits: int, batch: int):
    """pymilvus alone, as a user would call it: a collection, inserts in batches, searches."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("code", DataType.BINARY_VECTOR, dim=8 * codes.shape[1])
    schema.add_field("label", DataType.VARCHAR, max_length=256)
    schema.add_field("site", DataType.VARCHAR, max_length=64)
    params = client.prepare_index_params()
    params.add_index("code", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection(name, schema=schema, index_params=params)
    start = time.perf_counter()
    for lo in range(0, len(ids), batch):
        client.insert(name, [{"id": int(i), "code": c.tobytes(), "label": "p", "site": ""}
                             for i, c in zip(ids[lo:lo + batch], codes[lo:lo + batch])])
    insert_s = time.perf_counter() - start

    def search(queries, k):
        hits = client.search(name, data=[q.tobytes() for q in queries], limit=k, output_fields=["label"],
                             search_params={"metric_type": "HAMMING"}, anns_field="code")
        return [[(h["distance"], h["id"]) for h in row] for row in hits]

    return client, insert_s, search


def start_server():
    """The embedded Milvus standalone server, in a temporary directory (stopped by the caller)."""
    from milvus import default_server

    default_server.set_base_dir(tempfile.mkdtemp(prefix="dagh-milvus-"))
    default_server.start()
    return default_server


def ivf_rows(server, codes, ids, one, hundred, exact_d, args) -> dict:
    """BIN_IVF_FLAT through MilvusGallery on the server: inserts, then q/s and recall at several nprobe."""
    from dagh.runtime.gallery.milvus import MilvusGallery

    n = len(ids)
    nlist = int(4 * np.sqrt(n))
    name = f"ivf_{n}"
    gallery = MilvusGallery.open(f"http://127.0.0.1:{server.listen_port}", name, args.bits, index="BIN_IVF_FLAT",
                                 nlist=nlist)
    start = time.perf_counter()
    gallery.add(codes, ids)
    gallery.client.flush(name)
    insert_per_s = n / (time.perf_counter() - start)
    began = time.monotonic()
    while time.monotonic() - began < 600:  # until the index covers every row (before, Milvus scans)
        index_name = gallery.client.list_indexes(name)[0]
        if int(gallery.client.describe_index(name, index_name).get("indexed_rows", 0)) >= n:
            break
        time.sleep(2)
    gallery.client.release_collection(name)
    gallery.client.load_collection(name)
    rows = {}
    for nprobe in (8, 32, 128):
        gallery.nprobe = nprobe
        rows[f"IVF nlist {nlist} nprobe {nprobe}"] = {
            "insert_per_s": insert_per_s,
            "qps_1": 1 / timed(lambda: gallery.search(one, 10), args.repeats),
            "qps_100": 100 / timed(lambda: gallery.search(hundred, 10), args.repeats),
            "recall_at_10": recall_at(ids, exact_d, gallery.search(hundred, 10)[0])}
    gallery.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="100000,1000000", help="gallery sizes")
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--batch", type=int, default=50_000, help="rows per insert")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the results here (JSON)")
    parser.add_argument("--server", action="store_true", help="also BIN_IVF_FLAT on an embedded Milvus server")
    args = parser.parse_args()
    if args.server and not os.environ.get("DAGH_IN_NETNS"):  # run again inside a namespace of our own
        import shlex

        command = "ip link set lo up && DAGH_IN_NETNS=1 exec " + shlex.join([sys.executable, *sys.argv])
        os.execvp("unshare", ["unshare", "-rn", "sh", "-c", command])
    server = start_server() if args.server else None

    from dagh.runtime import HammingIndex
    from dagh.runtime.gallery.milvus import MilvusGallery

    rng = np.random.default_rng(0)
    row = (args.bits + 7) // 8
    results = []
    print(f"{'gallery':>9} {'store':<22}{'insert/s':>11}{'q/s nq=1':>10}{'q/s nq=100':>11}{'recall@10':>10}")
    for n in (int(float(v)) for v in args.n.split(",")):
        codes = rng.integers(0, 256, (n, row), dtype=np.uint8)
        if args.bits % 8:
            codes[:, -1] &= np.uint8((0xFF << (8 - args.bits % 8)) & 0xFF)
        ids = np.arange(n, dtype=np.int64)
        one, hundred = codes[rng.integers(0, n, 1)] ^ 1, codes[rng.integers(0, n, 100)] ^ 3
        index = HammingIndex(args.bits)
        start = time.perf_counter()
        index.add(codes, ids)
        rows = {"HammingIndex (cpu)": {"insert_per_s": n / (time.perf_counter() - start),
                                       "qps_1": 1 / timed(lambda: index.search(one, 10), args.repeats * 20),
                                       "qps_100": 100 / timed(lambda: index.search(hundred, 10), args.repeats),
                                       "recall_at_10": 1.0}}
        exact_d = index.search(hundred, 10)[0]
        with tempfile.TemporaryDirectory() as tmp:
            gallery = MilvusGallery.open(Path(tmp) / "g.db", "g", args.bits)
            start = time.perf_counter()
            gallery.add(codes, ids)
            adapter_insert = time.perf_counter() - start
            rows["MilvusGallery (Lite)"] = {
                "insert_per_s": n / adapter_insert,
                "qps_1": 1 / timed(lambda: gallery.search(one, 10), args.repeats),
                "qps_100": 100 / timed(lambda: gallery.search(hundred, 10), args.repeats),
                "recall_at_10": recall_at(ids, exact_d, gallery.search(hundred, 10)[0])}
            gallery.close()
            client, raw_insert, raw_search = raw_milvus(str(Path(tmp) / "raw.db"), "raw", codes, ids, args.bits,
                                                        args.batch)
            raw_d = np.asarray([[d for d, _ in hits] for hits in raw_search(hundred, 10)], np.int32)
            rows["raw pymilvus (Lite)"] = {
                "insert_per_s": n / raw_insert,
                "qps_1": 1 / timed(lambda: raw_search(one, 10), args.repeats),
                "qps_100": 100 / timed(lambda: raw_search(hundred, 10), args.repeats),
                "recall_at_10": recall_at(ids, exact_d, raw_d)}
            client.close()
            size_mb = sum(f.stat().st_size for f in Path(tmp).glob("g.db*")) / 1e6
        for store, r in rows.items():
            print(f"{n:>9} {store:<22}{r['insert_per_s']:>11.0f}{r['qps_1']:>10.0f}{r['qps_100']:>11.0f}"
                  f"{r['recall_at_10']:>10.3f}")
        adapter, raw = rows["MilvusGallery (Lite)"], rows["raw pymilvus (Lite)"]
        overhead = {"insert": raw["insert_per_s"] / adapter["insert_per_s"], "search_1": raw["qps_1"] / adapter["qps_1"],
                    "search_100": raw["qps_100"] / adapter["qps_100"]}
        speedup = rows["HammingIndex (cpu)"]["qps_1"] / adapter["qps_1"]
        print(f"{n:>9} adapter time / raw pymilvus time: insert {overhead['insert']:.2f}x, search nq=1 "
              f"{overhead['search_1']:.2f}x, nq=100 {overhead['search_100']:.2f}x; HammingIndex answers one query "
              f"{speedup:.0f}x faster than Milvus Lite; Lite file {size_mb:.0f} MB "
              f"({size_mb * 1e6 / n:.0f} bytes a code)")
        if server is not None:
            for label, r in ivf_rows(server, codes, ids, one, hundred, exact_d, args).items():
                rows[label] = r
                print(f"{n:>9} {label:<22}{r['insert_per_s']:>11.0f}{r['qps_1']:>10.0f}{r['qps_100']:>11.0f}"
                      f"{r['recall_at_10']:>10.3f}")
        results.append({"n": n, "bits": args.bits, "rows": rows, "adapter_overhead": overhead,
                        "lite_file_bytes_per_code": size_mb * 1e6 / n})
    if server is not None:
        server.stop()
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
