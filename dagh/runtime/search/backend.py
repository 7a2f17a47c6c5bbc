"""The backend protocol of HammingIndex, and the result helpers its backends share.

A backend module imports this one, never the index that uses it: the index
picks a backend by name (dagh.runtime.search.index.make_backend) and imports
its module lazily.
"""

from __future__ import annotations

import numpy as np

from dagh.runtime.bits import lane_dtype, words_per_code


class Backend:
    """What HammingIndex asks of a backend: ``search``, ``within``, and optionally a copy of the gallery.

    ``search(snapshot, packed, k)`` gets the queries as checked packed rows
    (``lanes_of_checked`` makes them lanes); ``within(snapshot, queries,
    radius)`` gets them as lanes.
    """

    def mirror(self, columns, copy, start, end):
        """A copy of codes [0, end) in the backend's own layout, given the copy of [0, start); None: none kept."""
        return None

    def scanned_bytes_per_code(self, bits: int) -> float:
        """Bytes a search reads per gallery code: by default the stored words."""
        return float(lane_dtype(bits).itemsize * words_per_code(bits))

    def one_query_bytes_per_code(self, bits: int, n: int) -> float:
        """Bytes per code a one-query search of ``n`` codes reads at most: by default as any search."""
        return self.scanned_bytes_per_code(bits)

    def search(self, snapshot, packed, k):
        """(distances int32 [nq, k], ids int64 [nq, k]), rows padded with -1 past the gallery."""
        raise NotImplementedError

    def within(self, snapshot, queries, radius):
        """(distances [nq, w], positions [nq, w], counts [nq]): row g's first counts[g] entries, in order."""
        raise NotImplementedError


def padded(distances, positions, ids, k):
    """Final rows: gallery positions mapped to ids, padded with -1 where k exceeds the gallery."""
    nq, m = distances.shape
    out_d = np.full((nq, k), -1, np.int32)
    out_i = np.full((nq, k), -1, np.int64)
    out_d[:, :m] = distances
    out_i[:, :m] = ids[positions]
    return out_d, out_i


def stack_groups(parts):
    """Groups' (distances, positions, counts) as one, rows padded to the widest (past a row's count: not results)."""
    width = max(p[0].shape[1] for p in parts)
    d = np.concatenate([np.pad(p[0], ((0, 0), (0, width - p[0].shape[1]))) for p in parts])
    i = np.concatenate([np.pad(p[1], ((0, 0), (0, width - p[1].shape[1]))) for p in parts])
    return d, i, np.concatenate([p[2] for p in parts])
