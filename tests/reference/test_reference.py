"""Tests of the numpy reference itself: run with `/usr/bin/python3 -m pytest tests/reference`.

The reference must be right before it can judge the engine, so it is checked three ways:
  - on a real trained model: stories260K greedy output equals llama2.c's expected output;
  - dequantizers against blocks built by hand from the format definitions;
  - the vectorized forward pass against a deliberately naive per-token, per-head loop (with
    RoPE written as complex multiplication) on small synthetic GGUF files of each architecture.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gguf_reader  # noqa: E402
import quants  # noqa: E402
from gguf_writer import GGUFWriter  # noqa: E402
from model import Model, compute_logits, generate_greedy, llama3_rope_factors  # noqa: E402

TESTDATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "testdata"))
MODELS = os.path.join(TESTDATA, "models")
STORIES = os.path.join(MODELS, "stories260K.gguf")
TINY_RANDOM = os.path.join(MODELS, "llama-2-tiny-random.gguf")


def need(path):
    if not os.path.exists(path):
        pytest.skip(f"test data {path} is absent (expected under ../shared/testdata, see its README.md)")
    return path


def f16_bytes(x):
    return np.array([x], dtype="<f2").tobytes()


# ================================================================ real model: stories260K

def read_ids(path):
    with open(path) as fh:
        return [int(t) for t in fh.read().split()]


def decode_llama2c(tokens, ids):
    """llama2.c's decoding: '▁' is a space, a piece right after BOS loses its leading space,
    and <0xXX> pieces are raw bytes."""
    out, prev = b"", ids[0]
    for t in ids[1:]:
        piece = tokens[t]
        if prev == 1 and piece.startswith("▁"):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out += bytes([int(piece[3:5], 16)])
        else:
            out += piece.replace("▁", " ").encode("utf-8")
        prev = t
    return out


@pytest.fixture(scope="module")
def stories():
    return Model(need(STORIES))


def test_stories260K_greedy_reproduces_llama2c(stories):
    # The ids file holds BOS then one argmax id per position run: llama2.c's `-n 200` runs
    # positions 0..199 and prints 200 tokens, so the file has 201 ids.
    expected = read_ids(need(os.path.join(MODELS, "stories260K.greedy200.ids.txt")))
    assert expected[0] == 1
    got = generate_greedy(stories, [1], steps=len(expected) - 1)
    first_diff = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    assert got == expected, f"first difference at index {first_diff}"

    with open(need(os.path.join(MODELS, "stories260K.greedy200.expected.txt")), "rb") as fh:
        text = fh.read()
    assert decode_llama2c(stories.gguf.metadata["tokenizer.ggml.tokens"], got) == text
    # A longer prompt goes through as one prefill chunk and must continue the same way.
    assert generate_greedy(stories, expected[:9], steps=60) == expected[:61]


def test_stories260K_greedy_f32_matches_too():
    expected = read_ids(need(os.path.join(MODELS, "stories260K.greedy200.ids.txt")))
    assert generate_greedy(Model(STORIES, dtype=np.float32), [1], len(expected) - 1) == expected


def test_stories260K_config(stories):
    c = stories.config
    assert (c.arch, c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.n_ff) == \
        ("llama", 512, 64, 5, 8, 4, 172)
    assert (c.head_dim_k, c.rope_dim, c.rope_layout, c.rope_base) == (8, 8, "normal", 10000.0)
    assert c.rms_eps == pytest.approx(1e-5)


def test_prefill_equals_incremental_decode(stories):
    """One chunk of 40 tokens must give the same logits as 40 single-token steps (KV cache),
    and as chunks of uneven sizes."""
    tokens = read_ids(need(os.path.join(MODELS, "stories260K.greedy200.ids.txt")))[:40]
    full = compute_logits(stories, tokens)
    stories.reset()
    steps = np.concatenate([stories.forward([t]) for t in tokens])
    stories.reset()
    chunks = np.concatenate([stories.forward(tokens[a:b]) for a, b in ((0, 7), (7, 8), (8, 31), (31, 40))])
    np.testing.assert_allclose(steps, full, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunks, full, rtol=0, atol=1e-12)
    assert np.array_equal(compute_logits(stories, tokens, "last"), full[-1:])


def test_trace_names_every_intermediate(stories):
    seen = []
    stories.trace = lambda name, layer, x: seen.append((name, layer, x.shape))
    try:
        compute_logits(stories, [1, 403, 407])
    finally:
        stories.trace = None
    names = {(n, l) for n, l, _ in seen}
    for il in range(5):
        for n in ("attn_norm", "Qcur_rope", "Kcur_rope", "kq_soft_max", "attn_out", "ffn_out", "l_out"):
            assert (n, il) in names
    assert ("result_output", -1, (3, 512)) in seen
    assert ("kq_soft_max", 0, (8, 3, 3)) in seen


def test_cli_logits_generate_dequant(tmp_path):
    need(STORIES)
    ref = [sys.executable, os.path.join(HERE, "ref.py")]
    out = tmp_path / "logits.npy"
    subprocess.run(ref + ["logits", "--model", STORIES, "--tokens", "1,403,407", "--out", str(out)], check=True,
                   capture_output=True)
    logits = np.load(out)
    assert logits.dtype == np.float32 and logits.shape == (3, 512)
    np.testing.assert_allclose(logits, compute_logits(Model(STORIES), [1, 403, 407]), rtol=1e-6, atol=1e-6)

    subprocess.run(ref + ["logits", "--model", STORIES, "--tokens", "1,403,407", "--positions", "last",
                          "--out", str(out)], check=True, capture_output=True)
    assert np.load(out).shape == (1, 512)

    res = subprocess.run(ref + ["generate", "--model", STORIES, "--tokens", "1", "--steps", "20"],
                         check=True, capture_output=True, text=True)
    expected = read_ids(os.path.join(MODELS, "stories260K.greedy200.ids.txt"))[:21]
    assert [int(t) for t in res.stdout.split()] == expected

    subprocess.run(ref + ["dequant", "--model", STORIES, "--tensor", "blk.0.ffn_down.weight", "--out", str(out)],
                   check=True, capture_output=True)
    assert np.load(out).shape == (64, 172)

    bad = subprocess.run(ref + ["dequant", "--model", STORIES, "--tensor", "nope", "--out", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "no tensor named 'nope'" in bad.stderr


# ================================================================ real model: llama-2-tiny-random (F16)

def test_tiny_random_f16_loads_and_gives_finite_logits():
    m = Model(need(TINY_RANDOM))
    f = m.gguf
    t = f.tensors["blk.0.attn_q.weight"]
    assert t.type_name == "F16" and t.shape == (8, 8)
    # F16 dequantization is the IEEE half decoding of the raw bytes.
    np.testing.assert_array_equal(f.dequantize("token_embd.weight"),
                                  np.frombuffer(f.tensors["token_embd.weight"].data, "<f2")
                                  .astype(np.float32).reshape(32000, 8))
    assert (m.config.n_embd, m.config.n_head, m.config.head_dim_k, m.config.rope_dim) == (8, 2, 4, 4)
    logits = compute_logits(m, [1, 15043, 3186, 29871, 13])
    assert logits.shape == (5, 32000)
    assert np.isfinite(logits).all() and np.abs(logits).max() > 0


# ================================================================ GGUF reader

def test_reader_metadata_of_every_type_and_nested_arrays(tmp_path):
    w = GGUFWriter(version=3, alignment=64)
    values = [
        ("t.u8", 200, "uint8"), ("t.i8", -100, "int8"), ("t.u16", 60000, "uint16"), ("t.i16", -30000, "int16"),
        ("t.u32", 4000000000, "uint32"), ("t.i32", -2000000000, "int32"), ("t.f32", 0.5, "float32"),
        ("t.bool", True, "bool"), ("t.str", "héllo ▁world", "string"), ("t.u64", 2**63 + 5, "uint64"),
        ("t.i64", -2**62, "int64"), ("t.f64", 1.0 / 3.0, "float64"),
        ("t.arr_str", ["a", "", "▁b"], "array[string]"), ("t.arr_f32", [1.5, -2.0], "array[float32]"),
        ("t.arr_bool", [True, False], "array[bool]"), ("t.arr_empty", [], "array[int32]"),
        ("t.nested", [[1, 2], [], [3]], "array[array[int32]]"),
        ("t.nested_str", [["x"], ["y", "z"]], "array[array[string]]"),
    ]
    for key, value, type_name in values:
        w.add(key, value, type_name)
    w.add_tensor("a", np.arange(6, dtype=np.float32).reshape(2, 3))
    # Integers with absmax 127 in each block of 32: d = 1, so Q8_0 stores them exactly.
    b = np.concatenate([np.arange(-16, 15), [127], np.arange(96, 128)]).astype(np.float32).reshape(2, 32)
    w.add_tensor("b", b, "Q8_0")
    path = tmp_path / "meta.gguf"
    w.write(path)

    f = gguf_reader.read_gguf(str(path))
    assert f.version == 3 and f.alignment == 64 and f.data_offset % 64 == 0
    for key, value, type_name in values:
        assert f.metadata[key] == value, key
        assert f.metadata_types[key] == type_name, key
    assert f.metadata_types["general.alignment"] == "uint32"
    assert f.tensors["a"].shape == (3, 2) and f.tensors["a"].numpy_shape == (2, 3)
    assert f.tensors["b"].offset % 64 == 0 and f.tensors["b"].type_name == "Q8_0"
    np.testing.assert_array_equal(f.dequantize("a"), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(f.dequantize("b"), b)


def test_reader_version2_and_default_alignment(tmp_path):
    w = GGUFWriter(version=2)
    w.add("general.architecture", "llama")
    w.add_tensor("x", np.ones((3, 5), np.float32))
    w.add_tensor("y", np.ones(7, np.float32) * 2)
    w.write(tmp_path / "v2.gguf")
    f = gguf_reader.read_gguf(str(tmp_path / "v2.gguf"))
    assert f.version == 2 and f.alignment == 32 and f.tensors["y"].offset == 64
    np.testing.assert_array_equal(f.dequantize("y"), 2 * np.ones(7))


def test_reader_real_file_header(stories):
    f = stories.gguf
    assert f.version == 3 and len(f.tensors) == 48 and len(f.metadata) == 19
    assert f.metadata["tokenizer.ggml.tokens"][:3] == ["<unk>", "<s>", "</s>"]
    assert f.metadata_types["tokenizer.ggml.scores"] == "array[float32]"
    assert f.tensors["token_embd.weight"].shape == (64, 512)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"GGUX" + b[4:], "bad magic"),
    (lambda b: b[:4] + (7).to_bytes(4, "little") + b[8:], "unsupported GGUF version 7"),
    (lambda b: b[:60], "truncated"),
    (lambda b: b[:-8], "runs past the end"),
])
def test_reader_rejects_bad_files(tmp_path, mutate, message):
    w = GGUFWriter()
    w.add("general.name", "x" * 40)
    w.add_tensor("t", np.ones(16, np.float32))
    path = tmp_path / "bad.gguf"
    path.write_bytes(mutate(w.to_bytes()))
    with pytest.raises(gguf_reader.GGUFError, match=message):
        gguf_reader.read_gguf(str(path))


# ================================================================ dequantizers: hand-built blocks

def test_plain_types_by_hand():
    raw = bytes.fromhex("003c" "00c0" "0000" "0080")  # f16: 1.0, -2.0, 0.0, -0.0
    np.testing.assert_array_equal(quants.dequantize(raw, quants.type_id("F16"), 4), [1.0, -2.0, 0.0, -0.0])
    # BF16 is the top half of an f32: 0x3F80 -> 1.0, 0xC000 -> -2.0, 0x4049 -> 3.140625.
    raw = np.array([0x3F80, 0xC000, 0x4049], "<u2").tobytes()
    np.testing.assert_array_equal(quants.dequantize(raw, quants.type_id("BF16"), 3), [1.0, -2.0, 3.140625])
    raw = np.array([1.25, -7.0], "<f4").tobytes()
    np.testing.assert_array_equal(quants.dequantize(raw, quants.type_id("F32"), 2), [1.25, -7.0])


def nibble_qs():
    """qs[j] = j | (15 - j) << 4: element j gets j, element j+16 gets 15-j."""
    return bytes(j | ((15 - j) << 4) for j in range(16))


def test_q4_0_q4_1_by_hand():
    blk = f16_bytes(0.5) + nibble_qs()
    x = quants.dequantize(blk, quants.type_id("Q4_0"), 32)
    np.testing.assert_array_equal(x[:16], 0.5 * (np.arange(16) - 8))
    np.testing.assert_array_equal(x[16:], 0.5 * (15 - np.arange(16) - 8))
    blk = f16_bytes(0.25) + f16_bytes(2.0) + nibble_qs()
    x = quants.dequantize(blk, quants.type_id("Q4_1"), 32)
    assert (x[0], x[15], x[16], x[31]) == (2.0, 0.25 * 15 + 2, 0.25 * 15 + 2, 2.0)


def test_q5_0_q5_1_by_hand():
    qh = (0x80000001).to_bytes(4, "little")  # 5th bit set for elements 0 and 31 only
    x = quants.dequantize(f16_bytes(0.5) + qh + nibble_qs(), quants.type_id("Q5_0"), 32)
    assert (x[0], x[1], x[15], x[16], x[30], x[31]) == (0.0, -7.5, -0.5, -0.5, -7.5, 0.0)
    x = quants.dequantize(f16_bytes(0.5) + f16_bytes(-1.0) + qh + nibble_qs(), quants.type_id("Q5_1"), 32)
    assert (x[0], x[1], x[16], x[31]) == (7.0, -0.5, 6.5, 7.0)


def test_q8_0_by_hand():
    qs = np.array(list(range(-16, 15)) + [127], np.int8)
    x = quants.dequantize(f16_bytes(-0.5) + qs.tobytes(), quants.type_id("Q8_0"), 32)
    np.testing.assert_array_equal(x, -0.5 * qs)


def pack_scale_min_k4(sc, mn):
    """Inverse of the 12-byte 6-bit packing: sub-blocks 0..3 in the low 6 bits of bytes 0..3
    (scales) and 4..7 (mins); sub-blocks 4..7 split into a nibble in bytes 8..11 (scale low,
    min high) and 2 top bits in the spare top bits of bytes 0..3 (scale) and 4..7 (min)."""
    b = [0] * 12
    for j in range(4):
        b[j] = sc[j] | ((sc[j + 4] >> 4) << 6)
        b[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6)
        b[j + 8] = (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4)
    return bytes(b)


K_SC = [1, 2, 3, 4, 60, 33, 17, 63]
K_MN = [5, 6, 7, 8, 9, 40, 50, 62]
K_QS = bytes((i * 7 + 3) & 0xFF for i in range(128))
K_QH = bytes((i * 37 + 11) & 0xFF for i in range(32))


def q4_k_block():
    return f16_bytes(0.5) + f16_bytes(0.25) + pack_scale_min_k4(K_SC, K_MN) + K_QS


def q5_k_block():
    return f16_bytes(0.5) + f16_bytes(0.25) + pack_scale_min_k4(K_SC, K_MN) + K_QH + K_QS


def slow_q4_k_q5_k(d, dmin, qs, qh=None):
    """Element by element: element e is in sub-block s = e // 32, chunk c = e // 64 and
    position l = e % 32; the low 4 bits are the low (s even) or high (s odd) nibble of qs[32c+l];
    for Q5_K the 5th bit is bit s of qh[l]."""
    out = []
    for e in range(256):
        s, c, l = e // 32, e // 64, e % 32
        q = qs[32 * c + l] & 0xF if s % 2 == 0 else qs[32 * c + l] >> 4
        if qh is not None:
            q += 16 * ((qh[l] >> s) & 1)
        out.append(d * K_SC[s] * q - dmin * K_MN[s])
    return np.array(out)


def test_q4_k_by_hand():
    x = quants.dequantize(q4_k_block(), quants.type_id("Q4_K"), 256)
    # Worked by hand: e=0: 0.5*1*3 - 0.25*5; e=32: high nibble of qs[0]=3 is 0 -> -0.25*6;
    # e=200 (sub-block 6, low nibble of qs[104]=0xDB): 0.5*17*11 - 0.25*50;
    # e=255 (sub-block 7, high nibble of qs[127]=0x7C): 0.5*63*7 - 0.25*62.
    assert (x[0], x[32], x[200], x[255]) == (0.25, -1.5, 81.0, 205.0)
    np.testing.assert_array_equal(x, slow_q4_k_q5_k(0.5, 0.25, K_QS))
    sc, mn = quants.unpack_scale_min_k4(np.frombuffer(pack_scale_min_k4(K_SC, K_MN), np.uint8)[None])
    assert sc.tolist() == [K_SC] and mn.tolist() == [K_MN]


def test_q5_k_by_hand():
    x = quants.dequantize(q5_k_block(), quants.type_id("Q5_K"), 256)
    # e=0: qh[0]=11 has bit 0 -> q=3+16: 0.5*19 - 1.25; e=32: bit 1 of qh[0] set -> q=16: 0.5*2*16 - 1.5;
    # e=255: qh[31]=134 has bit 7 -> q=7+16: 0.5*63*23 - 15.5.
    assert (x[0], x[32], x[255]) == (8.25, 14.5, 709.0)
    np.testing.assert_array_equal(x, slow_q4_k_q5_k(0.5, 0.25, K_QS, K_QH))


Q6_QL = bytes((i * 13 + 5) & 0xFF for i in range(128))
Q6_QH = bytes((i * 29 + 7) & 0xFF for i in range(64))
Q6_SC = [-3, 5, 7, -8, 10, 11, -12, 13, 1, 2, 3, 4, 5, 6, 127, -128]


def q6_k_block():
    return Q6_QL + Q6_QH + np.array(Q6_SC, np.int8).tobytes() + f16_bytes(0.125)


def slow_q6_k(d):
    """Element e: half n = e // 128, group g = (e % 128) // 32, position l = e % 32. Low 4 bits:
    ql[64n + 32*(g % 2) + l], low nibble for g < 2 else high nibble; top 2 bits: bits 2g, 2g+1
    of qh[32n + l]; value d * scales[e // 16] * (q - 32)."""
    out = []
    for e in range(256):
        n, g, l = e // 128, (e % 128) // 32, e % 32
        byte = Q6_QL[64 * n + 32 * (g % 2) + l]
        low = byte & 0xF if g < 2 else byte >> 4
        high = (Q6_QH[32 * n + l] >> (2 * g)) & 3
        out.append(d * Q6_SC[e // 16] * ((low | (high << 4)) - 32))
    return np.array(out)


def test_q6_k_by_hand():
    x = quants.dequantize(q6_k_block(), quants.type_id("Q6_K"), 256)
    # e=0: ql[0]=5, qh[0]=7 -> q=5|3<<4=53: 0.125*-3*21; e=40: ql[40]=13, bits 2-3 of qh[8]=239 are 3
    # -> q=61: 0.125*7*29; e=100: high nibble of ql[36]=0xD9, bits 6-7 of qh[4]=123 are 1 -> q=29:
    # 0.125*-12*-3; e=255: high nibble of ql[127]=0x78, bits 6-7 of qh[63]=42 are 0 -> q=7:
    # 0.125*-128*-25.
    assert (x[0], x[40], x[100], x[255]) == (-7.875, 25.375, 4.5, 400.0)
    np.testing.assert_array_equal(x, slow_q6_k(0.125))


def test_k_quants_many_blocks_and_dtypes():
    """Vectorization across blocks: each block decodes as if alone, in f32 and f64 alike."""
    for name, block in (("Q4_K", q4_k_block()), ("Q5_K", q5_k_block()), ("Q6_K", q6_k_block())):
        one = quants.dequantize(block, quants.type_id(name), 256, np.float64)
        zero = bytes(len(block))
        many = quants.dequantize(block + zero + block, quants.type_id(name), 768, np.float32)
        np.testing.assert_array_equal(many, np.concatenate([one, np.zeros(256), one]))


def test_dequantize_rejects_wrong_size():
    with pytest.raises(ValueError, match="expected 34 bytes"):
        quants.dequantize(bytes(33), quants.type_id("Q8_0"), 32)
    with pytest.raises(ValueError, match="not a multiple"):
        quants.dequantize(bytes(34), quants.type_id("Q8_0"), 31)
    with pytest.raises(NotImplementedError, match="Q2_K"):
        quants.dequantize(bytes(84), quants.type_id("Q2_K"), 256)


# ================================================================ reference quantizers

def test_q8_0_round_trip_bound():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(32 * 500) * rng.uniform(0.01, 10, 500).repeat(32)).astype(np.float32)
    raw = quants.quantize_q8_0(x)
    assert raw.size == 500 * 34
    y = quants.dequantize(raw, quants.type_id("Q8_0"), x.size, np.float64).reshape(-1, 32)
    d = np.abs(x.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
    # Half a step from rounding, plus up to 127 steps' worth of the f16 rounding of d (2^-11).
    err = np.abs(y - x.reshape(-1, 32))
    assert np.all(err <= d * (0.5 + 127 * 2.0 ** -11) + 1e-12)
    assert np.all(quants.dequantize(quants.quantize_q8_0(np.zeros(32)), 8, 32) == 0)


def test_q8_0_bytes_by_hand():
    x = np.array(list(range(-16, 15)) + [127], np.float32)     # absmax 127 -> d = 1
    raw = quants.quantize_q8_0(x).tobytes()
    assert raw == f16_bytes(1.0) + x.astype(np.int8).tobytes()


def test_q4_0_round_trip_bound():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(32 * 500) * rng.uniform(0.01, 10, 500).repeat(32)).astype(np.float32)
    y = quants.dequantize(quants.quantize_q4_0(x), quants.type_id("Q4_0"), x.size, np.float64).reshape(-1, 32)
    xb = x.reshape(-1, 32)
    d = np.abs(xb).max(axis=1, keepdims=True) / 8
    err = np.abs(y - xb)
    # The extreme value m maps to q=0 exactly; the clipped opposite end (-m would need q=16) is
    # off by at most one step; everything else by half a step (plus f16 rounding of d).
    assert np.all(err <= d * (1 + 8 * 2.0 ** -11) + 1e-12)
    inside = xb * np.sign(xb[np.arange(len(xb)), np.abs(xb).argmax(1)])[:, None] > -7.5 * d
    assert np.all(err[inside] <= (d * (0.5 + 8 * 2.0 ** -11) + 1e-12).repeat(32, 1)[inside])


def test_q4_0_bytes_by_hand():
    # The largest magnitude is -8 (first element), so d = -8 / -8 = 1 and q = x + 8.
    x = np.array([j - 8 for j in range(16)] + [7 - j for j in range(16)], np.float32)
    raw = quants.quantize_q4_0(x).tobytes()
    assert raw == f16_bytes(1.0) + bytes(j | ((15 - j) << 4) for j in range(16))
    np.testing.assert_array_equal(quants.dequantize(raw, quants.type_id("Q4_0"), 32), x)


# ================================================================ synthetic models vs a naive loop

def permute_for_normal_rope(w, n_head):
    """What the llama converter does to Wq/Wk: within each head, move row i (first half) and row
    i + d/2 (second half) next to each other, so that rotating adjacent pairs equals rotate_half."""
    n_out, n_in = w.shape
    return w.reshape(n_head, 2, n_out // n_head // 2, n_in).swapaxes(1, 2).reshape(n_out, n_in)


def make_weights(rng, n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, bias=False, qk_norm=False):
    def mat(n_out, n_in):
        return rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)
    w = {"token_embd": rng.standard_normal((n_vocab, n_embd)),
         "output_norm": rng.uniform(0.5, 1.5, n_embd), "output": mat(n_vocab, n_embd), "layers": []}
    for _ in range(n_layer):
        L = {"attn_norm": rng.uniform(0.5, 1.5, n_embd), "ffn_norm": rng.uniform(0.5, 1.5, n_embd),
             "wq": mat(n_head * head_dim, n_embd), "wk": mat(n_head_kv * head_dim, n_embd),
             "wv": mat(n_head_kv * head_dim, n_embd), "wo": mat(n_embd, n_head * head_dim),
             "w_gate": mat(n_ff, n_embd), "w_up": mat(n_ff, n_embd), "w_down": mat(n_embd, n_ff)}
        if bias:
            L.update(bq=rng.standard_normal(n_head * head_dim), bk=rng.standard_normal(n_head_kv * head_dim),
                     bv=rng.standard_normal(n_head_kv * head_dim))
        if qk_norm:
            L.update(q_norm=rng.uniform(0.5, 1.5, head_dim), k_norm=rng.uniform(0.5, 1.5, head_dim))
        w["layers"].append(L)
    return w


def quantized(x, type_name):
    """x as the model will see it after storing it as type_name."""
    x = np.asarray(x, np.float32)
    if type_name == "F32":
        return x.astype(np.float64)
    if type_name == "F16":
        return x.astype(np.float16).astype(np.float64)
    raw = {"Q8_0": quants.quantize_q8_0, "Q4_0": quants.quantize_q4_0}[type_name](x)
    return quants.dequantize(raw, quants.type_id(type_name), x.size, np.float64).reshape(x.shape)


def write_model(path, arch, w, hp, matrix_type="F32", tied=False, permute=False, extra_kv=(), extra_tensors=()):
    """Write weights w (HF layout) as a GGUF of `arch`; returns w as stored (after quantization)."""
    gw = GGUFWriter()
    gw.add("general.architecture", arch)
    for key in ("embedding_length", "block_count", "feed_forward_length"):
        gw.add(f"{arch}.{key}", hp[key], "uint32")
    gw.add(f"{arch}.attention.head_count", hp["n_head"], "uint32")
    gw.add(f"{arch}.attention.head_count_kv", hp["n_head_kv"], "uint32")
    gw.add(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5, "float32")
    for key, value, type_name in extra_kv:
        gw.add(key, value, type_name)
    stored = {"layers": []}

    def put(name, x, type_name="F32"):
        gw.add_tensor(name, np.asarray(x, np.float32), type_name)
        return quantized(x, type_name)

    stored["token_embd"] = put("token_embd.weight", w["token_embd"], matrix_type)
    stored["output_norm"] = put("output_norm.weight", w["output_norm"])
    stored["output"] = stored["token_embd"] if tied else put("output.weight", w["output"], matrix_type)
    for i, L in enumerate(w["layers"]):
        S, p = {}, f"blk.{i}."
        for key, name in (("attn_norm", "attn_norm"), ("ffn_norm", "ffn_norm"), ("bq", "attn_q.bias"),
                          ("bk", "attn_k.bias"), ("bv", "attn_v.bias"), ("q_norm", "attn_q_norm"),
                          ("k_norm", "attn_k_norm")):
            if key in L:
                suffix = "" if name.endswith(".bias") else ".weight"
                S[key] = put(p + name + suffix, L[key])
        for key, name in (("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
                          ("w_gate", "ffn_gate"), ("w_up", "ffn_up"), ("w_down", "ffn_down")):
            x = L[key]
            if permute and key in ("wq", "wk"):
                x = permute_for_normal_rope(x, hp["n_head"] if key == "wq" else hp["n_head_kv"])
            S[key] = put(p + name + ".weight", x, matrix_type)
            if permute and key in ("wq", "wk"):  # the naive loop wants the unpermuted (HF) layout
                n = hp["n_head"] if key == "wq" else hp["n_head_kv"]
                inv = S[key].reshape(n, -1, 2, S[key].shape[1]).swapaxes(1, 2).reshape(S[key].shape)
                S[key] = inv
        stored["layers"].append(S)
    for name, x in extra_tensors:
        gw.add_tensor(name, x)
    gw.write(path)
    return stored


def naive_forward(w, tokens, n_head, n_head_kv, head_dim, rope_dim, inv_freq, layout, eps=1e-5):
    """Token by token, head by head; RoPE as multiplication of (a + ib) by e^(i*pos*freq), where
    the pair (a, b) is (x[i], x[i + rope_dim/2]) for neox and (x[2i], x[2i+1]) for normal."""
    def norm(v, g):
        return v / math.sqrt(float(np.dot(v, v)) / len(v) + eps) * g

    def rotate(v, pos):
        v = v.copy()
        for i in range(rope_dim // 2):
            a, b = (i, i + rope_dim // 2) if layout == "neox" else (2 * i, 2 * i + 1)
            z = complex(v[a], v[b]) * complex(math.cos(pos * inv_freq[i]), math.sin(pos * inv_freq[i]))
            v[a], v[b] = z.real, z.imag
        return v

    keys = [[] for _ in w["layers"]]
    values = [[] for _ in w["layers"]]
    all_logits = []
    for pos, tok in enumerate(tokens):
        x = w["token_embd"][tok].copy()
        for il, L in enumerate(w["layers"]):
            h = norm(x, L["attn_norm"])
            q, k, v = L["wq"] @ h, L["wk"] @ h, L["wv"] @ h
            if "bq" in L:
                q, k, v = q + L["bq"], k + L["bk"], v + L["bv"]
            qs = [q[j * head_dim:(j + 1) * head_dim] for j in range(n_head)]
            ks = [k[j * head_dim:(j + 1) * head_dim] for j in range(n_head_kv)]
            if "q_norm" in L:
                qs = [norm(qh, L["q_norm"]) for qh in qs]
                ks = [norm(kh, L["k_norm"]) for kh in ks]
            qs = [rotate(qh, pos) for qh in qs]
            keys[il].append([rotate(kh, pos) for kh in ks])
            values[il].append([v[j * head_dim:(j + 1) * head_dim] for j in range(n_head_kv)])
            out = []
            for j in range(n_head):
                g = j // (n_head // n_head_kv)
                scores = [float(np.dot(qs[j], keys[il][s][g])) / math.sqrt(head_dim) for s in range(pos + 1)]
                m = max(scores)
                p = [math.exp(s - m) for s in scores]
                out.append(sum(p[s] / sum(p) * values[il][s][g] for s in range(pos + 1)))
            x = x + L["wo"] @ np.concatenate(out)
            h = norm(x, L["ffn_norm"])
            gate = L["w_gate"] @ h
            x = x + L["w_down"] @ (gate / (1 + np.exp(-gate)) * (L["w_up"] @ h))
        all_logits.append(w["output"] @ norm(x, w["output_norm"]))
    return np.array(all_logits)


TOKENS = [3, 17, 0, 42, 17, 9, 30, 1]


def hparams(n_embd, n_head, n_head_kv, n_ff, n_layer=2):
    return dict(embedding_length=n_embd, block_count=n_layer, feed_forward_length=n_ff,
                n_head=n_head, n_head_kv=n_head_kv)


def default_inv_freq(rope_dim, base=10000.0):
    return base ** (-np.arange(0, rope_dim, 2) / rope_dim)


def test_llama_gqa_permuted_weights_tied_linear_scaling(tmp_path):
    """llama: the converter's Q/K permutation + adjacent-pair RoPE == HF rotate_half RoPE;
    GQA 4:2, tied output, linear rope scaling (positions divided by the factor)."""
    rng = np.random.default_rng(10)
    hp = hparams(n_embd=32, n_head=4, n_head_kv=2, n_ff=48)
    w = make_weights(rng, 48, 32, 2, 4, 2, 8, 48)
    path = str(tmp_path / "llama.gguf")
    stored = write_model(path, "llama", w, hp, tied=True, permute=True,
                         extra_kv=[("llama.rope.scaling.type", "linear", "string"),
                                   ("llama.rope.scaling.factor", 2.0, "float32")])
    m = Model(path)
    assert m.config.rope_layout == "normal" and m.config.n_head_kv == 2
    expected = naive_forward(stored, TOKENS, 4, 2, 8, 8, default_inv_freq(8) / 2, "neox")
    np.testing.assert_allclose(compute_logits(m, TOKENS), expected, rtol=1e-10, atol=1e-10)


def test_llama_partial_rope_q8_0(tmp_path):
    """rope.dimension_count < head size: only the first dims rotate. Q8_0 matrices."""
    rng = np.random.default_rng(11)
    hp = hparams(n_embd=64, n_head=4, n_head_kv=4, n_ff=64)
    w = make_weights(rng, 48, 64, 2, 4, 4, 16, 64)
    path = str(tmp_path / "llama_q8.gguf")
    stored = write_model(path, "llama", w, hp, matrix_type="Q8_0",
                         extra_kv=[("llama.rope.dimension_count", 8, "uint32"),
                                   ("llama.rope.freq_base", 500.0, "float32")])
    expected = naive_forward(stored, TOKENS, 4, 4, 16, 8, default_inv_freq(8, 500.0), "normal")
    np.testing.assert_allclose(compute_logits(Model(path), TOKENS), expected, rtol=1e-10, atol=1e-10)


def test_qwen2_bias_neox_f16(tmp_path):
    rng = np.random.default_rng(12)
    hp = hparams(n_embd=32, n_head=4, n_head_kv=1, n_ff=40)
    w = make_weights(rng, 50, 32, 2, 4, 1, 8, 40, bias=True)
    path = str(tmp_path / "qwen2.gguf")
    stored = write_model(path, "qwen2", w, hp, matrix_type="F16",
                         extra_kv=[("qwen2.rope.freq_base", 1000000.0, "float32")])
    expected = naive_forward(stored, TOKENS, 4, 1, 8, 8, default_inv_freq(8, 1e6), "neox")
    np.testing.assert_allclose(compute_logits(Model(path), TOKENS), expected, rtol=1e-10, atol=1e-10)


def test_qwen3_qk_norm_key_length_q4_0(tmp_path):
    """qwen3: per-head RMSNorm of q and k before RoPE; head size from key_length (16), not
    n_embd / n_head (8); tied output; Q4_0 matrices."""
    rng = np.random.default_rng(13)
    hp = hparams(n_embd=32, n_head=4, n_head_kv=2, n_ff=64)
    w = make_weights(rng, 64, 32, 2, 4, 2, 16, 64, qk_norm=True)
    path = str(tmp_path / "qwen3.gguf")
    stored = write_model(path, "qwen3", w, hp, matrix_type="Q4_0", tied=True,
                         extra_kv=[("qwen3.attention.key_length", 16, "uint32"),
                                   ("qwen3.attention.value_length", 16, "uint32"),
                                   ("qwen3.rope.freq_base", 1000000.0, "float32")])
    m = Model(path)
    assert m.config.head_dim_k == 16 and m.config.rope_dim == 16
    expected = naive_forward(stored, TOKENS, 4, 2, 16, 16, default_inv_freq(16, 1e6), "neox")
    np.testing.assert_allclose(compute_logits(m, TOKENS), expected, rtol=1e-10, atol=1e-10)
    m.reset()
    steps = np.concatenate([m.forward([t]) for t in TOKENS])
    np.testing.assert_allclose(steps, expected, rtol=1e-10, atol=1e-10)


def test_llama3_rope_factors_by_hand():
    # Wavelengths 100 (< 8192/4: kept), 10000 (> 8192/1: divided by 8) and 5000 (blended with
    # smooth = (8192/5000 - 1) / (4 - 1) = 0.2128).
    inv_freq = 2 * math.pi / np.array([100.0, 10000.0, 5000.0])
    got = llama3_rope_factors(inv_freq, 8.0, 1.0, 4.0, 8192.0)
    np.testing.assert_allclose(got, [1.0, 8.0, 1 / ((1 - 0.2128) / 8 + 0.2128)], rtol=1e-12)


def test_llama3_scaling_from_metadata_equals_rope_freqs_tensor(tmp_path):
    rng = np.random.default_rng(14)
    hp = hparams(n_embd=32, n_head=2, n_head_kv=2, n_ff=32, n_layer=1)
    w = make_weights(rng, 48, 32, 1, 2, 2, 16, 32)
    base, L = 10000.0, 64.0  # a small "original context" so that all three regions occur
    kv = [("llama.rope.freq_base", base, "float32"), ("llama.rope.scaling.factor", 8.0, "float32"),
          ("llama.rope.scaling.low_freq_factor", 1.0, "float32"),
          ("llama.rope.scaling.high_freq_factor", 4.0, "float32"),
          ("llama.rope.scaling.original_context_length", int(L), "uint32")]
    factors = llama3_rope_factors(default_inv_freq(16, base), 8.0, 1.0, 4.0, L)
    assert factors[0] == 1.0 and factors[-1] == 8.0 and np.any((factors > 1) & (factors < 8))
    stored = write_model(str(tmp_path / "meta.gguf"), "llama", w, hp, extra_kv=kv)
    write_model(str(tmp_path / "tensor.gguf"), "llama", w, hp,
                extra_kv=[kv[0]], extra_tensors=[("rope_freqs.weight", factors.astype(np.float32))])
    write_model(str(tmp_path / "plain.gguf"), "llama", w, hp, extra_kv=[kv[0]])
    from_meta = compute_logits(Model(str(tmp_path / "meta.gguf")), TOKENS)
    from_tensor = compute_logits(Model(str(tmp_path / "tensor.gguf")), TOKENS)
    plain = compute_logits(Model(str(tmp_path / "plain.gguf")), TOKENS)
    np.testing.assert_allclose(from_meta, from_tensor, rtol=1e-6, atol=1e-6)  # tensor holds f32 factors
    expected = naive_forward(stored, TOKENS, 2, 2, 16, 16, default_inv_freq(16, base) / factors, "normal")
    np.testing.assert_allclose(from_meta, expected, rtol=1e-10, atol=1e-10)
    assert np.abs(from_meta - plain).max() > 1e-6


# ================================================================ refusing what it does not understand

def small_llama(tmp_path, name="m.gguf", **kw):
    rng = np.random.default_rng(20)
    hp = hparams(n_embd=32, n_head=2, n_head_kv=2, n_ff=32, n_layer=1)
    w = make_weights(rng, 16, 32, 1, 2, 2, 16, 32)
    path = str(tmp_path / name)
    write_model(path, kw.pop("arch", "llama"), w, hp, **kw)
    return path


def test_refuses_unknown_tensor(tmp_path):
    path = small_llama(tmp_path, extra_tensors=[("blk.0.attn_sub_norm.weight", np.ones(32, np.float32))])
    with pytest.raises(NotImplementedError, match="attn_sub_norm"):
        Model(path)


def test_refuses_unknown_arch_and_rope_scaling(tmp_path):
    with pytest.raises(NotImplementedError, match="architecture 'gemma'"):
        Model(small_llama(tmp_path, arch="gemma"))
    path = small_llama(tmp_path, "yarn.gguf", extra_kv=[("llama.rope.scaling.type", "yarn", "string")])
    with pytest.raises(NotImplementedError, match="yarn"):
        Model(path)


def test_refuses_duplicate_key_wrong_shape_missing_bias(tmp_path):
    path = small_llama(tmp_path, extra_kv=[("llama.attention.head_count_kv", 1, "uint32")])
    # head_count_kv is written twice above; the reader must refuse duplicate keys.
    with pytest.raises(gguf_reader.GGUFError, match="duplicate metadata key"):
        Model(path)
    rng = np.random.default_rng(21)
    w = make_weights(rng, 16, 32, 1, 2, 2, 16, 32)
    path = str(tmp_path / "shape.gguf")
    write_model(path, "llama", w, hparams(n_embd=32, n_head=2, n_head_kv=1, n_ff=32, n_layer=1))
    with pytest.raises(gguf_reader.GGUFError, match=r"blk.0.attn_k.weight: expected shape \[32, 16\], got \[32, 32\]"):
        Model(path)
    path = small_llama(tmp_path, "qwen2.gguf", arch="qwen2")
    with pytest.raises(gguf_reader.GGUFError, match="missing tensor blk.0.attn_q.bias"):
        Model(path)
