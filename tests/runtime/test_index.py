"""HammingIndex against a brute-force reference, on every backend available here."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagh.errors import ConfigError, DataError
from dagh.runtime.bits import pack_codes, packed_bytes, to_words, unpack_codes
from dagh.runtime.search.index import HammingIndex


@pytest.fixture(autouse=True)
def small_query_groups(monkeypatch):
    """Four queries per pass over the gallery, so small tests cover several passes and uneven groups."""
    import dagh.runtime.search.cpu as cpu_backend

    monkeypatch.setattr(cpu_backend, "QUERY_GROUP", 4)
    monkeypatch.setattr(cpu_backend, "RANGE_GROUP", 3)


BACKENDS = ["cpu", "numpy"] + (["faiss"] if __import__("importlib").util.find_spec("faiss") else [])


def brute_force(gallery, ids, queries, k):
    """(distance, insertion position) order, the slow obvious way."""
    out = []
    for q in queries:
        d = [int((g != q).sum()) for g in gallery]
        order = sorted(range(len(gallery)), key=lambda j: (d[j], j))[:k]
        out.append(([d[j] for j in order], [ids[j] for j in order]))
    return out


def paged(bits, min_codes=0):
    """A CPU index that keeps the page copy (dagh.runtime.search.kernels.pages) from ``min_codes`` codes on."""
    index = HammingIndex(bits)
    index.backend.pages_min_codes = min_codes
    return index


def one_by_one(index, queries, k):
    """Each query searched alone: a one-query pass, which reads the page copy where the index keeps one."""
    rows = [index.search(np.asarray(q)[None], k) for q in queries]
    return np.concatenate([d for d, _ in rows]), np.concatenate([i for _, i in rows])


@st.composite
def case(draw):
    bits = draw(st.sampled_from([1, 7, 8, 12, 24, 36, 48, 63, 64, 65, 128, 130, 256]))
    n = draw(st.integers(0, 60))
    nq = draw(st.integers(1, 11))  # several query groups: the tests set QUERY_GROUP to 4
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Few distinct codes: many ties.
    pool = rng.choice([-1, 1], (draw(st.integers(1, 6)), bits))
    gallery = pool[rng.integers(0, len(pool), n)] if n else np.zeros((0, bits), int)
    queries = rng.choice([-1, 1], (nq, bits))
    ids = rng.permutation(1000)[:n]
    return bits, gallery, ids, queries, draw(st.integers(1, 70))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None)
@given(c=case())
def test_search_matches_brute_force(backend, c):
    bits, gallery, ids, queries, k = c
    index = HammingIndex(bits, backend=backend)
    if len(gallery):
        index.add(gallery, ids)
    d, i = index.search(queries, k)
    assert d.shape == i.shape == (len(queries), k)
    for row, (ref_d, ref_i) in enumerate(brute_force(gallery, ids, queries, k)):
        n = len(ref_d)
        assert d[row, :n].tolist() == ref_d and i[row, :n].tolist() == ref_i
        assert (d[row, n:] == -1).all() and (i[row, n:] == -1).all()  # k larger than the gallery


@settings(max_examples=60, deadline=None)
@given(c=case())
def test_one_query_searches_of_the_page_copy_match_brute_force(c):
    bits, gallery, ids, queries, k = c
    index = paged(bits)
    if len(gallery):
        index.add(gallery, ids)
    d, i = one_by_one(index, queries, k)
    for row, (ref_d, ref_i) in enumerate(brute_force(gallery, ids, queries, k)):
        n = len(ref_d)
        assert d[row, :n].tolist() == ref_d and i[row, :n].tolist() == ref_i
        assert (d[row, n:] == -1).all() and (i[row, n:] == -1).all()


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@settings(max_examples=40, deadline=None)
@given(c=case(), radius=st.integers(0, 9))
def test_range_search_matches_brute_force(backend, c, radius):
    bits, gallery, ids, queries, _ = c
    index = HammingIndex(bits, backend=backend)
    if len(gallery):
        index.add(gallery, ids)
    hits = index.range_search(queries, radius)
    for (d, i), (ref_d, ref_i) in zip(hits, brute_force(gallery, ids, queries, len(gallery))):
        keep = [j for j, dist in enumerate(ref_d) if dist <= radius]
        assert d.tolist() == [ref_d[j] for j in keep] and i.tolist() == [ref_i[j] for j in keep]


def test_radius_zero_finds_exact_duplicates_only(rng):
    codes = rng.choice([-1, 1], (50, 48))
    codes[10] = codes[3]
    index = HammingIndex(48)
    index.add(codes)
    d, i = index.range_search(codes[3:4], 0)[0]
    assert i.tolist() == [3, 10] and d.tolist() == [0, 0]


def test_large_gallery_many_chunks(rng):
    codes = rng.integers(0, 256, (50_000, 6), dtype=np.uint8)
    queries = rng.integers(0, 256, (20, 6), dtype=np.uint8)
    cpu, ref = HammingIndex(48), HammingIndex(48, "numpy")
    for index in (cpu, ref):
        index.add(codes)
    for got, want in zip(cpu.search(queries, 100), ref.search(queries, 100)):
        assert np.array_equal(got, want)


def test_remove_and_ids(rng):
    codes = rng.choice([-1, 1], (10, 16))
    index = HammingIndex(16)
    index.add(codes, np.arange(100, 110))
    assert index.remove([101, 105, 999]) == 2 and len(index) == 8
    assert 105 not in index.ids.tolist()
    d, i = index.search(codes[5:6], 1)
    assert i[0, 0] != 105
    index.add(codes[5:6], [105])
    assert index.search(codes[5:6], 1)[1][0, 0] == 105


def test_empty_index_and_bad_input(rng):
    index = HammingIndex(24)
    d, i = index.search(rng.choice([-1, 1], (2, 24)), 3)
    assert (i == -1).all() and (d == -1).all()
    assert index.range_search(rng.choice([-1, 1], (1, 24)), 2)[0][0].size == 0
    with pytest.raises(DataError, match="mismatch|24-bit"):
        index.add(np.zeros((2, 4), np.uint8))  # 32-bit packed rows into a 24-bit index
    with pytest.raises(DataError):
        index.add(np.full((2, 24), 3))
    with pytest.raises(ConfigError):
        index.search(rng.choice([-1, 1], (1, 24)), 0)
    with pytest.raises(ConfigError):
        HammingIndex(24, backend="quantum")


def test_concurrent_searches_and_writes_are_safe(rng):
    codes = rng.choice([-1, 1], (20_000, 64))
    index = HammingIndex(64)
    index.add(codes[:10_000])
    queries = codes[:32]
    expected = HammingIndex(64, "numpy")
    expected.add(codes[:10_000])
    want = expected.search(queries, 5)
    errors = []

    def searcher():
        try:
            for _ in range(5):
                d, i = index.search(queries, 5)
                # each query's own code (distance 0) is always there, whatever the writer does
                assert (d[:, 0] == 0).all()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    index.add(codes[10_000:], np.arange(10_000, 20_000))
    index.remove(np.arange(15_000, 20_000))
    for t in threads:
        t.join()
    assert not errors
    assert len(index) == 15_000
    index.remove(np.arange(10_000, 15_000))
    assert all(np.array_equal(a, b) for a, b in zip(index.search(queries, 5), want))


def test_bits_pack_unpack_and_words(rng):
    for bits in (1, 12, 48, 64, 65, 200):
        codes = rng.choice([-1, 1], (7, bits))
        packed = pack_codes(codes)
        assert packed.shape == (7, packed_bytes(bits))
        assert np.array_equal(unpack_codes(packed, bits), codes)
        words = to_words(packed, bits)
        assert words.shape == (7, (bits + 63) // 64)
        d = np.bitwise_count(words[0] ^ words[1]).sum()
        assert d == (codes[0] != codes[1]).sum()
    # documented order: bit 0 is the most significant bit of byte 0
    assert pack_codes(np.array([[1] + [-1] * 7]))[0, 0] == 0b1000_0000


# Up to 255 bits the scan is bit-sliced (uint16, uint32, uint64 lanes; 1..4 words), beyond word by word.
@pytest.mark.parametrize("layout", ["blocks", "pages"])
@pytest.mark.parametrize("bits", [12, 24, 48, 64, 65, 128, 200, 255, 256, 300])
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([1, 10, 100, 700]), pool=st.integers(2, 40))
def test_block_scan_over_many_chunks_matches_numpy(layout, bits, seed, k, pool):
    """The vectorized block path and the thresholds chunks share, with many ties, against numpy.

    ``pages``: the page copy kept and each query searched alone (5,000 codes: two page groups)."""
    rng = np.random.default_rng(seed)
    codes = rng.choice([-1, 1], (pool, bits))[rng.integers(0, pool, 5000)]
    flips = rng.random(codes.shape) < 0.02  # near-duplicates around each pool code
    codes = np.where(flips, -codes, codes)
    queries = np.concatenate([codes[rng.integers(0, len(codes), 12)], rng.choice([-1, 1], (8, bits))])
    cpu, ref = (paged(bits) if layout == "pages" else HammingIndex(bits)), HammingIndex(bits, "numpy")
    for index in (cpu, ref):
        index.add(codes)
    cpu.backend.min_chunk, cpu.backend.tasks_per_thread = 300, 8  # 5,000 codes -> 10 chunks of 2 blocks (2 threads)
    got = one_by_one(cpu, queries, k) if layout == "pages" else cpu.search(queries, k)
    want = ref.search(queries, k)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("bits", [48, 300])  # the bit-sliced scan and the word-by-word one
@pytest.mark.parametrize("k", [1, 10, 100])
def test_codes_arriving_ever_closer_force_candidate_compaction(rng, k, bits):
    """Each code closer to the query than the last: the candidate list fills and compacts many times."""
    n = 6000
    distance = bits - (np.arange(n) * (bits + 1)) // n      # 48 .. 0, ~120 codes per distance
    codes = np.ones((n, bits), np.int8)
    for row, d in enumerate(distance):
        codes[row, rng.choice(bits, d, replace=False)] = -1
    query = np.ones((1, bits), np.int8)
    cpu, ref = HammingIndex(bits), HammingIndex(bits, "numpy")
    for index in (cpu, ref):
        index.add(codes)
    got, want = cpu.search(query, k), ref.search(query, k)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("bits", [8, 12, 16, 17, 24, 32, 33, 48, 64, 65, 128, 200])
def test_packed_codes_round_trip_in_every_lane_width(rng, bits):
    codes = pack_codes(rng.choice([-1, 1], (40, bits)))
    index = HammingIndex(bits)
    index.add(codes[:25], np.arange(25))
    index.add(codes[25:], np.arange(25, 40))  # a second add grows the storage
    index.remove([3, 30])
    keep = [i for i in range(40) if i not in (3, 30)]
    assert np.array_equal(index.packed_codes(), codes[keep])
    assert index.ids.tolist() == keep


@pytest.mark.parametrize("layout", ["blocks", "pages"])
@pytest.mark.parametrize("bits", [12, 36, 64, 128, 255, 256])
def test_appends_of_odd_sizes_and_removals_keep_the_bit_sliced_copy_exact(rng, bits, layout):
    """Appends fill blocks of 256 codes part by part (a lane shared by old and new codes); remove rebuilds.

    ``pages``: the page copy starts at 300 codes (midway) and grows with the gallery; queries searched alone."""
    cpu, ref = (paged(bits, 300) if layout == "pages" else HammingIndex(bits)), HammingIndex(bits, "numpy")
    search = (lambda q, k: one_by_one(cpu, q, k)) if layout == "pages" else cpu.search
    queries = rng.choice([-1, 1], (5, bits))
    start = 0
    for size in [1, 63, 64, 65, 200, 7, 256, 300, 1]:
        codes = rng.choice([-1, 1], (size, bits))
        for index in (cpu, ref):
            index.add(codes, np.arange(start, start + size))
        start += size
        for k in (1, 17, 2000):
            got, want = search(queries, k), ref.search(queries, k)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (size, k)
    for index in (cpu, ref):
        index.remove(np.arange(0, start, 3))
    got, want = search(queries, 50), ref.search(queries, 50)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("layout", ["blocks", "pages"])
def test_a_search_holding_a_snapshot_is_not_disturbed_by_appends(rng, layout):
    """Appends write the bit-sliced copies in place past the snapshot's codes: an older snapshot sees its own gallery."""
    bits = 64
    index = paged(bits) if layout == "pages" else HammingIndex(bits)
    index.add(rng.choice([-1, 1], (300, bits)))  # the second block is partly filled
    queries = pack_codes(rng.choice([-1, 1], (3, bits)))  # backend.search takes checked packed rows
    snapshot = index._snapshot()
    before = [index.backend.search(snapshot, q[None], 400) for q in queries]
    # Codes equal to the queries: distance 0, they would come first if the old snapshot saw them.
    index.add(np.zeros((0, bits)))  # an empty append changes nothing
    index.add(np.concatenate([queries] * 30))
    after = [index.backend.search(snapshot, q[None], 400) for q in queries]
    for b, a in zip(before, after):
        assert np.array_equal(b[0], a[0]) and np.array_equal(b[1], a[1])
    assert (b[0][0, :300] >= 0).all() and (b[0][0, 300:] == -1).all()  # the old snapshot's 300 codes, no more
    assert (index.search(queries, 1)[0] == 0).all()


@pytest.mark.parametrize("bits", [255, 256])
def test_the_longest_distances_are_counted_exactly(bits):
    """A code's complement is at distance ``bits``: 255 must fit the bit-sliced count, 256 the word path."""
    code = np.where(np.arange(bits) % 3 == 0, 1, -1)[None]
    index, ref = HammingIndex(bits), HammingIndex(bits, "numpy")
    gallery = np.concatenate([-code, code, -code])
    for each in (index, ref):
        each.add(gallery)
    got, want = index.search(code, 3), ref.search(code, 3)
    assert got[0].tolist() == want[0].tolist() == [[0, bits, bits]]
    assert got[1].tolist() == want[1].tolist() == [[1, 0, 2]]


def test_scanned_bytes_per_code_follow_the_layout_searched():
    """GB/s figures use the bytes a search reads: the bit-sliced copy up to 255 bits, words beyond.

    Bit-sliced: a plane (a bit of 256 codes) per code bit and per bit of the code's popcount, a zero plane,
    even planes a block."""
    assert [HammingIndex(bits).scanned_bytes_per_code for bits in (12, 36, 255, 300)] == [
        (4 + 12 + 2) / 8, (6 + 36 + 2) / 8, (8 + 255 + 1) / 8, 40.0]
    assert HammingIndex(36, "numpy").scanned_bytes_per_code == 8.0


def test_one_query_bytes_per_code_count_the_page_copy_where_one_is_read(rng):
    """With a page copy a one-query search reads the popcount's planes and at most half the code's planes."""
    index = paged(128, min_codes=1000)
    index.add(rng.choice([-1, 1], (999, 128)))
    assert index.one_query_bytes_per_code == index.scanned_bytes_per_code == 138 / 8  # no page copy yet
    index.add(rng.choice([-1, 1], (1, 128)))
    assert index.one_query_bytes_per_code == (8 + 64) / 8
    assert HammingIndex(300).one_query_bytes_per_code == 40.0


@pytest.mark.parametrize("bits", [1, 2, 3, 12, 24, 36, 64, 127, 128, 255])
def test_every_query_weight_is_counted_exactly(rng, bits):
    """The bit-sliced scan counts over the query's rarer bit value (its one bits or its zero bits) and pads
    that plane list to a multiple of 8: every number of one bits in a query (both sides, every padding),
    against galleries holding the lightest and heaviest codes too (the popcount planes' extremes)."""
    weights = range(bits + 1) if bits <= 64 else sorted({*range(0, bits + 1, 7), bits // 2, bits // 2 + 1, bits})
    queries = np.zeros((len(weights), bits), np.int8)
    for row, w in enumerate(weights):
        queries[row, rng.permutation(bits)[:w]] = 1
    gallery = np.concatenate([np.zeros((1, bits), np.int8), np.ones((1, bits), np.int8),
                              rng.integers(0, 2, (700, bits), dtype=np.int8)])
    index, ref = HammingIndex(bits), HammingIndex(bits, "numpy")
    for each in (index, ref):
        each.add(gallery)
    got, want = index.search(queries, 5), ref.search(queries, 5)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_chunking_follows_numba_set_num_threads():
    """Searches read numba's thread count for the calling thread in compiled code (set_num_threads changes it)."""
    import numba

    from dagh.runtime.search.kernels.scan import _thread_count, chunk_codes

    @numba.njit
    def threads_seen():
        return _thread_count()

    original = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert threads_seen() == 1
        if original >= 2:
            numba.set_num_threads(2)
            assert threads_seen() == 2
    finally:
        numba.set_num_threads(original)
    assert threads_seen() == original
    assert chunk_codes(100_000, 8192, 1, 1) == 100_096    # one chunk: 391 whole blocks
    assert chunk_codes(100_000, 8192, 1, 2) == 50_176     # 196 blocks each
    assert chunk_codes(100_000, 8192, 4, 1) == 25_088     # four tasks: 98 blocks each
    assert chunk_codes(10_000, 8192, 1, 2) == 8192        # not split below min_chunk
    assert chunk_codes(10_000, 300, 1, 2) == 5120         # 20 blocks each


def _sampled_blocks(n, k):
    """The gallery blocks the bit-sliced scan samples for its starting threshold (dagh.runtime.search.kernels.bitsliced)."""
    from dagh.runtime.search.kernels.bitsliced import sample_block, sample_plan

    blocks, _ = sample_plan(n, k)
    return [sample_block(i, n, blocks) for i in range(blocks)]


@pytest.mark.parametrize("bits", [12, 48, 128, 255])
@pytest.mark.parametrize("k", [100, 700])
def test_searches_starting_from_a_guessed_threshold_stay_exact(rng, bits, k):
    """Large galleries and k: each query starts from a threshold guessed from sampled blocks."""
    n = 20000
    assert _sampled_blocks(n, k), "the guess must be in play for this test to mean anything"
    pool = rng.choice([-1, 1], (30, bits))
    codes = pool[rng.integers(0, len(pool), n)]
    codes = np.where(rng.random(codes.shape) < 0.05, -codes, codes)   # clusters of near-duplicates: many ties
    queries = np.concatenate([codes[rng.integers(0, n, 6)], rng.choice([-1, 1], (6, bits))])
    cpu, ref = HammingIndex(bits), HammingIndex(bits, "numpy")
    for index in (cpu, ref):
        index.add(codes)
    for group in (queries, queries[:1]):  # a batch (guesses in parallel) and a single query
        got, want = cpu.search(group, k), ref.search(group, k)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("layout", ["blocks", "pages"])
@pytest.mark.parametrize("bits", [24, 128])
def test_a_guess_fooled_by_clusters_in_the_sample_is_searched_again(rng, bits, layout):
    """Copies of the query fill sampled blocks of both halves: the guessed bound falls below the true k-th
    distance (checked), fewer than k codes lie under it, and the search runs again from no threshold."""
    from dagh.runtime.bits import pack_codes
    from dagh.runtime.search.kernels import bitsliced as _bitsliced

    n, k = 20000, 100
    codes = rng.choice([-1, 1], (n, bits))
    query = rng.choice([-1, 1], (1, bits))
    for block in _sampled_blocks(n, k)[:2]:   # the first block of each half
        codes[block * 256: block * 256 + 40] = query
    index, ref = (paged(bits) if layout == "pages" else HammingIndex(bits)), HammingIndex(bits, "numpy")
    for each in (index, ref):
        each.add(codes)
    packed = pack_codes(query)
    offsets, plan = _bitsliced.query_plans(packed, bits)
    limits = np.empty(1, np.int64)
    _bitsliced.guessed_limits_serial(index._published.mirror.blocks, bits, n, offsets, plan, k, limits)
    true_kth = np.sort((codes != query).sum(axis=1))[k - 1]
    assert limits[0] <= true_kth, "the clusters should have fooled the guess"
    got, want = index.search(query, k), ref.search(query, k)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_the_page_copy_holds_the_block_copy_re_laid_and_only_from_its_threshold(rng):
    """Pages appear once the gallery reaches pages_min_codes, hold each block's planes at their page positions
    (group, slot, block in group, lane), start on a page boundary, and grow with appends."""
    from dagh.runtime.search.kernels import bitsliced as _bitsliced
    from dagh.runtime.search.kernels import pages as _pages

    bits = 48
    stride = int(_bitsliced.block_stride(bits))
    index = paged(bits, 1000)
    index.add(rng.choice([-1, 1], (999, bits)))
    assert index._published.mirror.pages.size == 0  # below the threshold: no page copy
    for size in (1, 40000):  # reaching it, then past a second page group
        index.add(rng.choice([-1, 1], (size, bits)))
        copies = index._published.mirror
        assert copies.pages.ctypes.data % _pages.PAGE_BYTES == 0
        n_blocks = -(-len(index) // _bitsliced.BLOCK_CODES)
        blocks = copies.blocks[:n_blocks * stride * 4].reshape(n_blocks, stride, 4)
        groups = -(-n_blocks // _pages.SUPER)
        pages = copies.pages[:groups * stride * _pages.SUPER * 4].reshape(groups, stride, _pages.SUPER, 4)
        re_laid = pages.transpose(0, 2, 1, 3).reshape(groups * _pages.SUPER, stride, 4)[:n_blocks]
        assert np.array_equal(re_laid, blocks)


def test_the_page_copy_threshold_follows_the_l2_cache(tmp_path):
    """min_codes: the block copy as large as the largest level-2 data cache sysfs lists; a default where none."""
    from dagh.runtime.search.kernels import bitsliced as _bitsliced
    from dagh.runtime.search.kernels import pages as _pages

    for name, level, kind, size in (("index0", 1, "Data", "32K"), ("index1", 2, "Instruction", "4096K"),
                                     ("index2", 2, "Unified", "512K"), ("index3", 3, "Unified", "32768K")):
        (tmp_path / name).mkdir()
        for field, value in (("level", level), ("type", kind), ("size", size)):
            (tmp_path / name / field).write_text(f"{value}\n")
    (tmp_path / "index9").mkdir()  # unreadable entries are skipped
    assert _pages.cache_bytes(2, str(tmp_path)) == 512 << 10  # not the instruction cache
    assert _pages.cache_bytes(3, str(tmp_path)) == 32 << 20
    assert _pages.cache_bytes(2, str(tmp_path / "nothing")) is None
    per_code = _bitsliced.block_stride(64) / 8  # 9 bytes
    assert _pages.min_codes(64, 1 << 20) == int(np.ceil((1 << 20) / per_code))
    assert _pages.min_codes(32, 4 << 20) > _pages.min_codes(64, 4 << 20)  # shorter codes: more of them fit
    # Where a one-query scan would touch most planes anyway (the list padded to 8, the popcount's): never.
    assert [bits for bits in (12, 16, 24, 32, 36, 48, 64, 128) if _pages.min_codes(bits, 1 << 20) == _pages.NEVER] \
        == [12, 24, 36]
    assert _pages.min_codes(128, 64 << 10) == _pages.SUPER * _bitsliced.BLOCK_CODES  # never below one page group


@pytest.mark.parametrize("bits", [12, 48, 128, 255])
def test_batch_query_plans_over_threads_equal_the_serial_ones(rng, bits):
    """A batch plans its queries in parallel (query_plans_parallel); a single query on the calling thread."""
    from dagh.runtime.search.kernels import bitsliced as _bitsliced

    packed = pack_codes(rng.choice([-1, 1], (37, bits)))
    serial, parallel = _bitsliced.query_plans(packed, bits), _bitsliced.query_plans_parallel(packed, bits)
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])
