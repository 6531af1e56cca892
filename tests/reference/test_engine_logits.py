"""The C++ engine's logits against the independent NumPy reference.

For each architecture x weight type, `parallama make-model` writes a small
random model, `parallama logits` runs a token sequence through the engine (in
chunks, so the KV cache is exercised), and model.py computes the same logits
in float64 from the same file. Both see the same quantized weights, so what
differs is the engine's arithmetic: fp16 KV cache, and for quantized weights
the 8-bit quantization of activations inside matmul.

Tolerance: the RMS of the difference relative to the RMS of the reference
logits, per weight type (TOLERANCE below), plus a max-abs bound at 8x that.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as ref_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("PARALLAMA_BIN", os.path.join(ROOT, "build", "bin", "parallama"))
TESTDATA = os.path.join(ROOT, "..", "shared", "testdata")

# Relative RMS error bounds on the logits. Float types differ only by the fp16
# KV cache and summation order; quantized types also by the rounding of
# activations to 8 bits inside matmul (~0.4% per matmul, see
# test_matmul_error_is_activation_rounding), which random networks amplify
# layer by layer. K-quants round activations with one scale per 256 values
# instead of per 32, hence their larger bound.
TOLERANCE = {
    "f32": 2e-3,
    "f16": 2e-3,
    "bf16": 2e-3,
    "q8_0": 2e-2,
    "q4_0": 2e-2,
    "q4_1": 2e-2,
    "q5_0": 2e-2,
    "q5_1": 2e-2,
    "q4_k": 3e-2,
    "q5_k": 3e-2,
    "q6_k": 3e-2,
    "q4_k_m": 3e-2,
}

# Shapes: rows must be multiples of 256 for K-quants; GQA and odd head counts elsewhere.
SHAPES = {
    "small": dict(n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=96, head_dim=0),
    "kquant": dict(n_embd=256, n_layer=2, n_head=4, n_head_kv=1, n_ff=512, head_dim=0),
}

TOKENS = [1, 17, 300, 42, 5, 99, 260, 7, 7, 7, 123, 310, 45, 2, 88, 150, 201, 3, 64, 255,
          11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
          32, 33, 34, 35]  # 44 tokens: more than one 32-token KV block


def run(args):
    r = subprocess.run([BIN] + args, capture_output=True, text=True)
    assert r.returncode == 0, f"{args} failed: {r.stderr}"
    return r


def make_model(path, arch, dtype, s, **extra):
    args = ["make-model", "-o", path, "--arch", arch, "--type", dtype, "--seed", "7",
            "--n-embd", str(s["n_embd"]), "--n-layer", str(s["n_layer"]), "--n-head", str(s["n_head"]),
            "--n-head-kv", str(s["n_head_kv"]), "--n-ff", str(s["n_ff"]), "--n-vocab", "512"]
    if s["head_dim"]:
        args += ["--head-dim", str(s["head_dim"])]
    for k, v in extra.items():
        flag = "--" + k.replace("_", "-")
        args += [flag] if v is True else [flag, str(v)]
    run(args)


def engine_logits(path, tokens, chunk):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "l.npy")
        run(["logits", "-m", path, "--tokens", ",".join(map(str, tokens)), "--chunk", str(chunk), "-o", out])
        return np.load(out).astype(np.float64)


def reference_logits(path, tokens):
    m = ref_model.Model(path)
    return ref_model.compute_logits(m, tokens, "all")


def compare(ours, ref, tol, what):
    assert ours.shape == ref.shape, what
    assert np.all(np.isfinite(ours)), what
    rel_rms = np.sqrt(np.mean((ours - ref) ** 2)) / np.sqrt(np.mean(ref ** 2))
    max_abs = np.max(np.abs(ours - ref)) / np.sqrt(np.mean(ref ** 2))
    assert rel_rms < tol, f"{what}: relative RMS error {rel_rms:.2e} >= {tol:.0e}"
    assert max_abs < 8 * tol, f"{what}: max error {max_abs:.2e} (relative to RMS) >= {8 * tol:.0e}"
    # Greedy choices agree wherever the reference's top two are clearly apart.
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 20 * tol * np.sqrt(np.mean(ref ** 2))
    assert np.array_equal(np.argmax(ours, 1)[clear], np.argmax(ref, 1)[clear]), f"{what}: argmax differs"
    print(f"{what}: rel_rms={rel_rms:.2e}")
    return rel_rms


@pytest.fixture(scope="module")
def tmpdir_module():
    with tempfile.TemporaryDirectory() as d:
        yield d


def needs_binary():
    if not os.path.exists(BIN):
        pytest.fail(f"parallama binary not found at {BIN} (run scripts/setup.sh)")


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
@pytest.mark.parametrize("dtype", list(TOLERANCE))
def test_logits_match_reference(arch, dtype, tmpdir_module):
    needs_binary()
    shape = SHAPES["kquant" if "_k" in dtype else "small"]
    path = os.path.join(tmpdir_module, f"{arch}-{dtype}.gguf")
    make_model(path, arch, dtype, shape)
    ref = reference_logits(path, TOKENS)
    # Whole sequence in one pass, and in uneven chunks through the KV cache.
    for chunk in (64, 5):
        compare(engine_logits(path, TOKENS, chunk), ref, TOLERANCE[dtype], f"{arch}/{dtype}/chunk{chunk}")


@pytest.mark.parametrize("variant", [
    dict(head_dim=32),                              # head_dim != n_embd / n_head (qwen3-style)
    dict(rope_scaling="linear", rope_scaling_factor=4),
    dict(rope_scaling="llama3", rope_scaling_factor=8, rope_freq_base=500000),
    dict(tied_output=True),
    dict(n_head_kv=1),                              # multi-query attention
])
def test_logits_variants(variant, tmpdir_module):
    needs_binary()
    variant = dict(variant)
    arch = "qwen3" if "head_dim" in variant else "llama"
    path = os.path.join(tmpdir_module, "variant.gguf")
    shape = dict(SHAPES["small"])
    for k in list(variant):
        if k in shape:
            shape[k] = variant.pop(k)
    make_model(path, arch, "f32", shape, **variant)
    ref = reference_logits(path, TOKENS)
    compare(engine_logits(path, TOKENS, 7), ref, TOLERANCE["f32"], f"variant {variant} {shape}")


def test_stories260k_logits():
    needs_binary()
    path = os.path.join(TESTDATA, "models", "stories260K.gguf")
    if not os.path.exists(path):
        pytest.skip(f"shared testdata not found at {TESTDATA}")
    tokens = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317]
    compare(engine_logits(path, tokens, 4), reference_logits(path, tokens), 2e-3, "stories260K")


def test_llama2_tiny_random_f16_logits():
    needs_binary()
    path = os.path.join(TESTDATA, "models", "llama-2-tiny-random.gguf")
    if not os.path.exists(path):
        pytest.skip(f"shared testdata not found at {TESTDATA}")
    tokens = [1, 450, 4996, 17354, 1701, 29916]
    compare(engine_logits(path, tokens, 3), reference_logits(path, tokens), 2e-3, "llama-2-tiny-random")


@pytest.mark.parametrize("dtype", ["q8_0", "q4_0", "q5_1"])
def test_matmul_error_is_activation_rounding(dtype, tmpdir_module):
    """One matmul (V = Wv x) of the engine equals float64 math on the same
    dequantized weights with x rounded to Q8_0 blocks, to float precision: the
    only approximation in the quantized matmul is that documented rounding."""
    needs_binary()
    import gguf_reader
    path = os.path.join(tmpdir_module, f"mm-{dtype}.gguf")
    make_model(path, "llama", dtype, dict(n_embd=256, n_layer=1, n_head=4, n_head_kv=4, n_ff=512, head_dim=0))
    with tempfile.TemporaryDirectory() as d:
        run(["logits", "-m", path, "--tokens", "5,6,7,8,9", "-o", os.path.join(d, "l.npy"), "--dump", d])
        x = np.load(os.path.join(d, "attn_norm-0.npy")).astype(np.float64)
        v = np.load(os.path.join(d, "v-0.npy")).astype(np.float64)
    w = gguf_reader.read_gguf(path).dequantize("blk.0.attn_v.weight", np.float64).reshape(256, 256)
    blocks = x.reshape(-1, 32)
    scale = np.abs(blocks).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    xq = (np.round(blocks / scale) * scale).reshape(x.shape)
    expected = xq @ w.T
    rel = np.sqrt(np.mean((v - expected) ** 2)) / np.sqrt(np.mean(expected ** 2))
    assert rel < 1e-5, f"{dtype}: matmul differs from rounded-activation math by {rel:.2e}"
