"""ggml tensor types: sizes, dequantizers and two reference quantizers, in vectorized numpy.

Written from the block-format definitions (all multi-byte fields little-endian; "f16" is IEEE half):
    Q8_0  32 elems, 34 B: d f16, qs[32] int8                         x = d*q
    Q4_0  32 elems, 18 B: d f16, qs[16]                              x = d*(q-8)
    Q4_1  32 elems, 20 B: d f16, m f16, qs[16]                       x = d*q + m
    Q5_0  32 elems, 22 B: d f16, qh u32, qs[16]                      x = d*(q-16)
    Q5_1  32 elems, 24 B: d f16, m f16, qh u32, qs[16]               x = d*q + m
      (4-bit nibbles: byte j holds element j in its low nibble and element j+16 in its high
       nibble; for Q5 the 5th bit of element j is bit j of qh)
    Q4_K 256 elems, 144 B: d f16, dmin f16, scales[12], qs[128]      x = d*sc*q - dmin*m
    Q5_K 256 elems, 176 B: d f16, dmin f16, scales[12], qh[32], qs[128]
      (8 sub-blocks of 32 with 6-bit scale sc and 6-bit min m packed into scales[12]; qs is
       4 chunks of 32 bytes, chunk c holds sub-block 2c in its low nibbles and 2c+1 in its high
       nibbles; for Q5_K bit s of qh[l] is the 5th bit of element l of sub-block s)
    Q6_K 256 elems, 210 B: ql[128], qh[64], scales[16] int8, d f16   x = d*sc*(q-32)
      (16 sub-blocks of 16 elements, one int8 scale each; see _dequant_q6_k for the bit layout)
Dequantizers compute in float64 and cast to the requested dtype at the end.
"""

import numpy as np

QK_K = 256

# type id -> (name, elements per block, bytes per block). Types without a dequantizer below are
# listed so that files holding them can still be parsed (the reader needs their byte sizes).
DTYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", QK_K, 84),
    11: ("Q3_K", QK_K, 110),
    12: ("Q4_K", QK_K, 144),
    13: ("Q5_K", QK_K, 176),
    14: ("Q6_K", QK_K, 210),
    15: ("Q8_K", QK_K, 292),
    20: ("IQ4_NL", 32, 18),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    30: ("BF16", 1, 2),
}
TYPE_IDS = {name: type_id for type_id, (name, _, _) in DTYPES.items()}


def type_name(type_id):
    return DTYPES[type_id][0] if type_id in DTYPES else f"type{type_id}"


def type_id(name):
    if name not in TYPE_IDS:
        raise ValueError(f"unknown ggml type name '{name}'")
    return TYPE_IDS[name]


def n_bytes(type_id, n_elements, what="tensor"):
    """Bytes taken by n_elements of a type; the count must be a whole number of blocks."""
    if type_id not in DTYPES:
        raise ValueError(f"{what}: unknown ggml type id {type_id}")
    name, block, size = DTYPES[type_id]
    if n_elements % block:
        raise ValueError(f"{what}: {n_elements} elements is not a multiple of the {name} block size {block}")
    return n_elements // block * size


# ---------------------------------------------------------------- field helpers

def _f16(blocks, at):
    """The f16 field at byte `at` of every block, as float64 of shape (n_blocks, 1)."""
    return np.ascontiguousarray(blocks[:, at:at + 2]).view("<f2").astype(np.float64)


def _nibbles32(qs):
    """(n_blocks, 16) bytes -> (n_blocks, 32): low nibbles are elements 0..15, high ones 16..31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int64)


def _qh_bits32(blocks, at):
    """The u32 at byte `at`, expanded to (n_blocks, 32) bits, bit j belongs to element j."""
    qh = np.ascontiguousarray(blocks[:, at:at + 4]).view("<u4").astype(np.int64)  # (n_blocks, 1)
    return (qh >> np.arange(32)) & 1


def unpack_scale_min_k4(scales):
    """Q4_K/Q5_K 12-byte packing of 8 six-bit scales and 8 six-bit mins.

    Sub-blocks 0..3: scale = low 6 bits of byte j, min = low 6 bits of byte j+4.
    Sub-blocks 4..7: the low 4 bits come from byte j+4 (scale: low nibble, min: high nibble)
    and the top 2 bits from the spare top bits of bytes j-4 (scale) and j (min).
    """
    s = scales.astype(np.int64)  # (n_blocks, 12)
    sc = np.empty(s.shape[:-1] + (8,), dtype=np.int64)
    mn = np.empty_like(sc)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


# ---------------------------------------------------------------- per-type dequantizers
# Each takes blocks: uint8 (n_blocks, bytes per block) and returns float64 (n_blocks, elements).

def _dequant_q8_0(b):
    return _f16(b, 0) * b[:, 2:34].view(np.int8).astype(np.float64)


def _dequant_q4_0(b):
    return _f16(b, 0) * (_nibbles32(b[:, 2:18]) - 8)


def _dequant_q4_1(b):
    return _f16(b, 0) * _nibbles32(b[:, 4:20]) + _f16(b, 2)


def _dequant_q5_0(b):
    q = _nibbles32(b[:, 6:22]) | (_qh_bits32(b, 2) << 4)
    return _f16(b, 0) * (q - 16)


def _dequant_q5_1(b):
    q = _nibbles32(b[:, 8:24]) | (_qh_bits32(b, 4) << 4)
    return _f16(b, 0) * q + _f16(b, 2)


def _k4_nibbles(qs):
    """(n_blocks, 128) -> (n_blocks, 8, 32): chunk c gives sub-block 2c (low) and 2c+1 (high)."""
    qs = qs.reshape(-1, 4, 32).astype(np.int64)
    return np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 8, 32)


def _dequant_q4_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = unpack_scale_min_k4(b[:, 4:16])
    q = _k4_nibbles(b[:, 16:144])
    x = (d * sc)[:, :, None] * q - (dmin * mn)[:, :, None]
    return x.reshape(-1, QK_K)


def _dequant_q5_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = unpack_scale_min_k4(b[:, 4:16])
    qh = b[:, 16:48].astype(np.int64)                                   # (n_blocks, 32)
    high = (qh[:, None, :] >> np.arange(8)[None, :, None]) & 1          # (n_blocks, 8, 32)
    q = _k4_nibbles(b[:, 48:176]) | (high << 4)
    x = (d * sc)[:, :, None] * q - (dmin * mn)[:, :, None]
    return x.reshape(-1, QK_K)


def _dequant_q6_k(b):
    """Each 128-element half uses 64 bytes of ql, 32 of qh and 8 scales. Within a half, group
    g = 0..3 of 32 elements takes its low 4 bits from ql[32*(g%2) + l] (low nibble for g < 2,
    high nibble for g >= 2) and its top 2 bits from bits 2g, 2g+1 of qh[l]. Element e of the
    block (0..255) uses scale e // 16."""
    ql = b[:, 0:128].astype(np.int64).reshape(-1, 2, 2, 32)             # [half][g%2][l]
    qh = b[:, 128:192].astype(np.int64).reshape(-1, 2, 1, 32)           # [half][.][l]
    g = np.arange(4)
    low = (ql[:, :, g % 2, :] >> (4 * (g // 2))[None, None, :, None]) & 0x0F   # (n_blocks, 2, 4, 32)
    high = (qh >> (2 * g)[None, None, :, None]) & 3
    q = ((high << 4) | low).reshape(-1, QK_K) - 32
    scales = b[:, 192:208].view(np.int8).astype(np.float64)             # (n_blocks, 16)
    d = _f16(b, 208)
    return d * np.repeat(scales, 16, axis=1) * q


_BLOCK_DEQUANT = {
    2: _dequant_q4_0,
    3: _dequant_q4_1,
    6: _dequant_q5_0,
    7: _dequant_q5_1,
    8: _dequant_q8_0,
    12: _dequant_q4_k,
    13: _dequant_q5_k,
    14: _dequant_q6_k,
}

_PLAIN = {0: "<f4", 1: "<f2", 24: "<i1", 25: "<i2", 26: "<i4", 27: "<i8", 28: "<f8"}

# Blocks per chunk, to bound the float64 temporaries when dequantizing big tensors.
_CHUNK_BLOCKS = 1 << 15


def dequantize(raw, type_id, n_elements, dtype=np.float32):
    """Flat array of n_elements decoded from raw bytes (a uint8 array or bytes) of a ggml type."""
    raw = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray)) else raw
    name = type_name(type_id)
    expected = n_bytes(type_id, n_elements, name)
    if raw.size != expected:
        raise ValueError(f"{name}: expected {expected} bytes for {n_elements} elements, got {raw.size}")
    raw = np.ascontiguousarray(raw)
    if type_id in _PLAIN:
        return raw.view(_PLAIN[type_id]).astype(dtype)
    if type_id == 30:
        # BF16 is the top half of an IEEE f32: shift it back into place.
        return (raw.view("<u2").astype(np.uint32) << 16).view("<f4").astype(dtype)
    if type_id not in _BLOCK_DEQUANT:
        raise NotImplementedError(f"no dequantizer for ggml type {name}")
    _, block, size = DTYPES[type_id]
    blocks = raw.reshape(-1, size)
    out = np.empty(n_elements, dtype=dtype)
    for start in range(0, blocks.shape[0], _CHUNK_BLOCKS):
        chunk = blocks[start:start + _CHUNK_BLOCKS]
        out[start * block:(start + chunk.shape[0]) * block] = _BLOCK_DEQUANT[type_id](chunk).reshape(-1)
    return out


# ---------------------------------------------------------------- reference quantizers
# These follow the formats' reference (deterministic) quantizers, computing in float32 as the
# definition does, so files they write match other writers byte for byte in ordinary cases.

def _as_blocks_f32(x, block):
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size % block:
        raise ValueError(f"{x.size} values is not a multiple of the block size {block}")
    return x.reshape(-1, block)


def _round_half_away(v):
    """C roundf(): halves go away from zero (numpy's round goes to even). float64 keeps v+0.5 exact."""
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantize_q8_0(x):
    """Q8_0: d = absmax/127, q = round(x/d). Returns the raw bytes as a uint8 array."""
    xb = _as_blocks_f32(x, 32)
    amax = np.abs(xb).max(axis=1, keepdims=True)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        inv_d = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = _round_half_away(xb * inv_d).astype(np.int8)
    out = np.empty(xb.shape[0], dtype=np.dtype([("d", "<f2"), ("qs", "i1", 32)]))
    out["d"] = d[:, 0].astype(np.float16)
    out["qs"] = q
    return out.view(np.uint8)


def quantize_q4_0(x):
    """Q4_0: the value m of largest magnitude maps to -8, so d = m / -8 and q = trunc(x/d + 8.5)
    clipped to 15 (the opposite extreme -m would need 16). Returns the raw bytes as uint8."""
    xb = _as_blocks_f32(x, 32)
    idx = np.abs(xb).argmax(axis=1)                      # first of equal magnitudes, as the definition
    m = xb[np.arange(xb.shape[0]), idx][:, None]
    d = (m / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv_d = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (xb * inv_d).astype(np.float32) + np.float32(8.5)
    q = np.minimum(15, np.trunc(v).astype(np.int64)).astype(np.uint8)
    out = np.empty(xb.shape[0], dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    out["d"] = d[:, 0].astype(np.float16)
    out["qs"] = q[:, :16] | (q[:, 16:] << 4)
    return out.view(np.uint8)
