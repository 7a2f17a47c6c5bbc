"""Bit packing between +1/-1 (or 0/1) codes and packed rows, and the word layout the index scans.

Bit order (documented, stable): bit ``i`` of a code (column ``i`` of the +1/-1
array, +1 -> 1) is stored in byte ``i // 8`` at bit ``7 - i % 8`` (most
significant bit first, as ``numpy.packbits``). A packed row has
``ceil(bits / 8)`` bytes; padding bits are 0.

The index keeps codes as machine words: one uint64 per code up to 64 bits,
``ceil(bits / 64)`` words for longer codes; a row's bytes are zero-padded to
whole words and read little-endian. Codes of up to 16 or 32 bits live in
narrower lanes (``lane_dtype``): the same value, more codes per vector.
Hamming distance is the popcount of the XOR of the words, whatever the bit
order inside them.
"""

from __future__ import annotations

import numpy as np

from dagh.errors import DataError


def packed_bytes(bits: int) -> int:
    return (bits + 7) // 8


def words_per_code(bits: int) -> int:
    return (bits + 63) // 64


def lane_dtype(bits: int) -> np.dtype:
    """The unsigned type the index stores a code's words in: uint16 up to 16 bits, uint32 up to 32, else uint64."""
    return np.dtype(np.uint16 if bits <= 16 else np.uint32 if bits <= 32 else np.uint64)


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """[n, bits] of +1/-1 or 0/1 -> uint8 [n, ceil(bits/8)] packed rows."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None]
    if codes.ndim != 2:
        raise DataError(f"codes must be [n, bits], got shape {codes.shape}")
    if codes.dtype == np.bool_:
        ones = codes
    else:
        if codes.size and not np.all((codes == 1) | (codes == -1) | (codes == 0)):
            raise DataError("codes must hold only +1/-1 or 0/1 values")
        ones = codes > 0
    return np.packbits(ones, axis=1, bitorder="big")


def unpack_codes(packed: np.ndarray, bits: int, *, signed: bool = True) -> np.ndarray:
    """uint8 packed rows -> [n, bits] int8 of +1/-1 (``signed``) or 0/1."""
    packed = check_packed(packed, bits)
    ones = np.unpackbits(packed, axis=1, count=bits, bitorder="big").astype(np.int8)
    return ones * 2 - 1 if signed else ones


def check_packed(packed: np.ndarray, bits: int, name: str = "codes") -> np.ndarray:
    packed = np.asarray(packed)
    if packed.ndim == 1:
        packed = packed[None]
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise DataError(f"{name} must be packed uint8 rows [n, {packed_bytes(bits)}], "
                        f"got {packed.dtype} {packed.shape}; pack +1/-1 codes with dagh.runtime.bits.pack_codes")
    if packed.shape[1] != packed_bytes(bits):
        raise DataError(f"{name} have {packed.shape[1]} bytes per row, but {bits}-bit codes need "
                        f"{packed_bytes(bits)}: a code-length mismatch")
    return packed


def to_words(packed: np.ndarray, bits: int) -> np.ndarray:
    """Packed uint8 rows -> uint64 [n, words] (zero-padded, little-endian words)."""
    packed = check_packed(packed, bits)
    n, nbytes = packed.shape
    words = words_per_code(bits)
    buffer = np.zeros((n, words * 8), dtype=np.uint8)
    buffer[:, :nbytes] = packed
    return buffer.view("<u8").reshape(n, words)


def lanes_of_checked(packed: np.ndarray, bits: int) -> np.ndarray:
    """Packed uint8 rows, already checked by ``check_packed`` -> [n, words] in ``lane_dtype(bits)``.

    What HammingIndex stores: zero-padded, little-endian; a view where rows are whole lanes."""
    dtype = lane_dtype(bits)
    width = words_per_code(bits) * dtype.itemsize
    little = dtype.newbyteorder("<")
    if packed.shape[1] == width and packed.flags.c_contiguous:
        return packed.view(little).astype(dtype, copy=False)
    buffer = np.zeros((len(packed), width), np.uint8)
    buffer[:, :packed.shape[1]] = packed
    return buffer.view(little).astype(dtype, copy=False)


def from_words(words: np.ndarray, bits: int) -> np.ndarray:
    """uint64 [n, words] -> packed uint8 rows."""
    words = np.ascontiguousarray(words, dtype="<u8")
    return words.view(np.uint8).reshape(len(words), -1)[:, :packed_bytes(bits)].copy()
