"""The BIN_IVF_FLAT lane: an embedded Milvus standalone server (the `milvus` PyPI package, 2.3.5) and
MilvusGallery against it. Run inside a private network namespace, because that server listens on every
interface (Milvus 2.3 has no listen-address setting):

    unshare -rn sh -c 'ip link set lo up && python -m tests.runtime.milvus_server_lane OUT.json'

It starts the server on 127.0.0.1 (the namespace's only interface), checks BIN_FLAT on the server against
HammingIndex, measures BIN_IVF_FLAT's recall@10 at several nprobe, exercises the server-side record (the
companion collection), stops the server and writes what it measured as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def _recall(exact: np.ndarray, found: np.ndarray) -> float:
    """Share of the exact 10 nearest distances found (ties make ids ambiguous; distances are not)."""
    hits = 0
    for want, got in zip(exact, found):
        values, counts = np.unique(want, return_counts=True)
        wanted = dict(zip(values.tolist(), counts.tolist()))
        for value, count in zip(*np.unique(got[got >= 0], return_counts=True)):
            hits += min(int(count), wanted.get(int(value), 0))
    return hits / exact.size


def _wait_indexed(client, collection: str, n: int, most_s: float = 120.0) -> int:
    """Wait until the IVF index covers the rows (Milvus builds it after flush, in the background)."""
    began, indexed = time.monotonic(), 0
    while time.monotonic() - began < most_s:
        name = client.list_indexes(collection)[0]
        indexed = int(client.describe_index(collection, name).get("indexed_rows", 0))
        if indexed >= n:
            break
        time.sleep(1)
    client.release_collection(collection)  # reload: searches then use the sealed, indexed segments
    client.load_collection(collection)
    return indexed


def main(out: str, n: int = 20_000, bits: int = 48) -> None:
    from milvus import default_server

    from dagh.runtime import HammingIndex
    from dagh.runtime.gallery.milvus import MilvusGallery, MilvusGalleryError

    results: dict = {"n": n, "bits": bits}
    with tempfile.TemporaryDirectory() as base:
        default_server.set_base_dir(base)
        start = time.perf_counter()
        default_server.start()
        results["server_start_s"] = time.perf_counter() - start
        uri = f"http://127.0.0.1:{default_server.listen_port}"
        try:
            rng = np.random.default_rng(0)
            codes = rng.integers(0, 256, (n, (bits + 7) // 8), dtype=np.uint8)
            ids = np.arange(n, dtype=np.int64)
            queries = codes[rng.integers(0, n, 100)] ^ np.uint8(5)
            reference = HammingIndex(bits)
            reference.add(codes, ids)
            exact_d, exact_i = reference.search(queries, 10)
            flat = MilvusGallery.open(uri, "flat", bits, consistency="Strong")  # sees the rows just added
            flat.add(codes, ids)
            flat.client.flush("flat")
            got_d, got_i = flat.search(queries, 10)
            results["bin_flat_equal"] = bool(np.array_equal(got_d, exact_d))
            results["bin_flat_ids_equal"] = bool(np.array_equal(got_i, exact_i))
            flat.close()
            ivf = MilvusGallery.open(uri, "ivf", bits, index="BIN_IVF_FLAT", nlist=256)  # Bounded: after a reload
            ivf.add(codes, ids)
            ivf.client.flush("ivf")
            results["ivf_indexed_rows"] = _wait_indexed(ivf.client, "ivf", n)  # until then Milvus scans: exact
            random_queries = rng.integers(0, 256, (100, (bits + 7) // 8), dtype=np.uint8)
            exact_random = reference.search(random_queries, 10)[0]
            results["ivf_recall_at_10"] = {"near-duplicate queries": {}, "random queries": {}}
            for nprobe in (8, 32, 64, 128):
                ivf.nprobe = nprobe
                for kind, q, exact in (("near-duplicate queries", queries, exact_d),
                                       ("random queries", random_queries, exact_random)):
                    results["ivf_recall_at_10"][kind][nprobe] = _recall(exact, ivf.search(q, 10)[0])
            # the server-side record: rows deleted behind dagh's back are refused at the next open
            ivf.client.delete("ivf", ids=[0, 1])
            ivf.close()
            try:
                MilvusGallery.open(uri, "ivf", bits, index="BIN_IVF_FLAT")
                results["record_refused_shrink"] = False
            except MilvusGalleryError as exc:
                results["record_refused_shrink"] = "dagh committed" in str(exc)
        finally:
            default_server.stop()
    with open(out, "w") as handle:
        json.dump(results, handle, indent=1)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
