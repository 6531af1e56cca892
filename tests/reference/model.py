"""Reference forward pass for the llama family (llama, qwen2, qwen3), in plain numpy.

Written from the architectures' math, independently of the engine under test. Everything is
computed in float64 by default (weights are dequantized to the compute dtype at load time), so
the reference is more precise than the engine it checks; pass dtype=np.float32 for big models.

One decoder block (x is the residual stream, one row per token):
    h = rmsnorm(x) * attn_norm
    q, k, v = h @ Wq.T (+bq), h @ Wk.T (+bk), h @ Wv.T (+bv)      split into heads
    qwen3: q, k = rmsnorm(q) * q_norm, rmsnorm(k) * k_norm        per head, before RoPE
    q, k = rope(q, pos), rope(k, pos)
    a = softmax(q k^T / sqrt(head_dim), causal) v                 query head h uses kv head h // (n_head / n_head_kv)
    x = x + a @ Wo.T
    h = rmsnorm(x) * ffn_norm
    x = x + (silu(h @ Wg.T) * (h @ Wu.T)) @ Wd.T                  SwiGLU, silu(z) = z * sigmoid(z)
then logits = (rmsnorm(x) * output_norm) @ Wout.T, where Wout is token_embd when output.weight is absent.
"""

import math
from dataclasses import dataclass

import numpy as np

from gguf_reader import GGUFError, read_gguf

# What differs between the supported architectures.
#   rope_layout "normal": rotate adjacent pairs (2i, 2i+1). The llama converter permutes the rows
#     of Wq/Wk so that this equals the HF "rotate_half" rotation of pairs (i, i + d/2).
#   rope_layout "neox": rotate pairs (i, i + d/2) on the unpermuted weights.
ARCHS = {
    "llama": dict(rope_layout="normal", qkv_bias=False, qk_norm=False),
    "qwen2": dict(rope_layout="neox", qkv_bias=True, qk_norm=False),
    "qwen3": dict(rope_layout="neox", qkv_bias=False, qk_norm=True),
}


@dataclass
class Config:
    arch: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim_k: int          # size of one query/key head
    head_dim_v: int          # size of one value head
    n_ff: int
    rms_eps: float
    rope_layout: str         # "normal" or "neox"
    rope_dim: int            # leading dims of each head that RoPE rotates
    rope_base: float
    rope_inv_freq: np.ndarray  # [rope_dim/2] angle per position for each rotated pair, scaling applied
    qkv_bias: bool
    qk_norm: bool


def _rope_inv_freq(f, arch, rope_dim, base):
    """Per-pair rotation speed: base^(-2i/rope_dim), then the file's rope scaling.

    - tensor rope_freqs.weight [rope_dim/2] (how converters store Llama 3.1 scaling): divide by it
    - `rope.scaling.type` llama3 (or its low/high_freq_factor keys): compute those same factors
    - `rope.scaling.type` linear with `rope.scaling.factor`: positions are divided by the factor
    Other scaling types are refused rather than ignored.
    """
    inv_freq = base ** (-np.arange(0, rope_dim, 2, dtype=np.float64) / rope_dim)
    scaling = f.get(f"{arch}.rope.scaling.type", "none")
    factor = float(f.get(f"{arch}.rope.scaling.factor", 1.0) or 1.0)
    has_llama3_keys = f"{arch}.rope.scaling.low_freq_factor" in f.metadata

    if "rope_freqs.weight" in f.tensors:
        ff = f.dequantize("rope_freqs.weight", np.float64).reshape(-1)
        if ff.shape != inv_freq.shape:
            raise GGUFError(f"rope_freqs.weight: expected {inv_freq.shape[0]} values, got {ff.shape[0]}")
        return inv_freq / ff
    if scaling == "llama3" or has_llama3_keys:
        return inv_freq / llama3_rope_factors(
            inv_freq, factor,
            float(f.get(f"{arch}.rope.scaling.low_freq_factor", 1.0)),
            float(f.get(f"{arch}.rope.scaling.high_freq_factor", 4.0)),
            float(f.get(f"{arch}.rope.scaling.original_context_length", 8192)))
    if scaling == "linear":
        return inv_freq / factor
    if f"{arch}.rope.scale_linear" in f.metadata:  # older spelling of linear scaling
        return inv_freq / float(f.get(f"{arch}.rope.scale_linear"))
    if scaling != "none":
        raise NotImplementedError(f"rope scaling type '{scaling}' is not implemented in the reference")
    return inv_freq


def llama3_rope_factors(inv_freq, factor, low_freq_factor, high_freq_factor, original_context_length):
    """Llama 3.1 frequency-dependent scaling, as divisors of inv_freq.

    With wavelength w = 2*pi / inv_freq: short waves (w < L/high) keep their speed, long waves
    (w > L/low) are slowed by `factor`, and in between the speed is blended linearly in L/w:
        smooth = (L/w - low) / (high - low),  new = (1 - smooth) * f / factor + smooth * f
    """
    wavelen = 2 * math.pi / inv_freq
    L = original_context_length
    smooth = (L / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = 1.0 / ((1.0 - smooth) / factor + smooth)
    return np.where(wavelen < L / high_freq_factor, 1.0,
                    np.where(wavelen > L / low_freq_factor, factor, blended))


def load_config(f):
    arch = f.require("general.architecture")
    if arch not in ARCHS:
        raise NotImplementedError(f"architecture '{arch}' is not implemented in the reference "
                                  f"(supported: {', '.join(ARCHS)})")
    spec = ARCHS[arch]
    if "token_embd.weight" not in f.tensors or len(f.tensors["token_embd.weight"].shape) != 2:
        raise GGUFError("missing tensor token_embd.weight, or it is not 2-D [n_embd, n_vocab]")
    n_embd = int(f.require(f"{arch}.embedding_length"))
    n_head = int(f.require(f"{arch}.attention.head_count"))
    n_head_kv = int(f.get(f"{arch}.attention.head_count_kv", n_head))
    if n_head % n_head_kv:
        raise GGUFError(f"head_count {n_head} is not a multiple of head_count_kv {n_head_kv}")
    head_dim_k = int(f.get(f"{arch}.attention.key_length", n_embd // n_head))
    head_dim_v = int(f.get(f"{arch}.attention.value_length", head_dim_k))
    rope_dim = int(f.get(f"{arch}.rope.dimension_count", head_dim_k))
    if rope_dim % 2 or rope_dim > head_dim_k:
        raise GGUFError(f"rope.dimension_count {rope_dim} must be even and at most the head size {head_dim_k}")
    rope_base = float(f.get(f"{arch}.rope.freq_base", 10000.0))
    return Config(
        arch=arch,
        n_vocab=int(f.tensors["token_embd.weight"].shape[1]),
        n_embd=n_embd,
        n_layer=int(f.require(f"{arch}.block_count")),
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim_k,
        head_dim_v=head_dim_v,
        n_ff=int(f.require(f"{arch}.feed_forward_length")),
        rms_eps=float(f.require(f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_layout=spec["rope_layout"],
        rope_dim=rope_dim,
        rope_base=rope_base,
        rope_inv_freq=_rope_inv_freq(f, arch, rope_dim, rope_base),
        qkv_bias=spec["qkv_bias"],
        qk_norm=spec["qk_norm"],
    )


class _WeightLoader:
    """Dequantizes tensors after checking their ggml shape, and remembers which it used, so that a
    file with tensors this reference does not understand is refused instead of half-computed."""

    def __init__(self, f, dtype):
        self.f, self.dtype, self.used = f, dtype, set()

    def get(self, name, shape, optional=False):
        if name not in self.f.tensors:
            if optional:
                return None
            raise GGUFError(f"missing tensor {name}")
        got = self.f.tensors[name].shape
        if tuple(got) != tuple(shape):
            raise GGUFError(f"tensor {name}: expected shape {list(shape)}, got {list(got)}")
        self.used.add(name)
        return self.f.dequantize(name, self.dtype)

    def check_all_used(self):
        unused = sorted(set(self.f.tensors) - self.used - {"rope_freqs.weight"})
        if unused:
            raise NotImplementedError(f"tensors not understood by the reference: {', '.join(unused[:10])}"
                                      + (" ..." if len(unused) > 10 else ""))


def load_weights(f, c, dtype):
    """All weights as numpy arrays in the compute dtype; a linear layer W is [n_out, n_in]."""
    w = _WeightLoader(f, dtype)
    q_out, kv_out, v_out = c.n_head * c.head_dim_k, c.n_head_kv * c.head_dim_k, c.n_head_kv * c.head_dim_v
    weights = {
        "token_embd": w.get("token_embd.weight", (c.n_embd, c.n_vocab)),      # [n_vocab, n_embd]
        "output_norm": w.get("output_norm.weight", (c.n_embd,)),
        "output": w.get("output.weight", (c.n_embd, c.n_vocab), optional=True),
        "layers": [],
    }
    if weights["output"] is None:
        weights["output"] = weights["token_embd"]  # tied embeddings
    for i in range(c.n_layer):
        p = f"blk.{i}."
        layer = {
            "attn_norm": w.get(p + "attn_norm.weight", (c.n_embd,)),
            "wq": w.get(p + "attn_q.weight", (c.n_embd, q_out)),              # [n_head*head_dim_k, n_embd]
            "wk": w.get(p + "attn_k.weight", (c.n_embd, kv_out)),
            "wv": w.get(p + "attn_v.weight", (c.n_embd, v_out)),
            "wo": w.get(p + "attn_output.weight", (c.n_head * c.head_dim_v, c.n_embd)),
            "ffn_norm": w.get(p + "ffn_norm.weight", (c.n_embd,)),
            "w_gate": w.get(p + "ffn_gate.weight", (c.n_embd, c.n_ff)),       # [n_ff, n_embd]
            "w_up": w.get(p + "ffn_up.weight", (c.n_embd, c.n_ff)),
            "w_down": w.get(p + "ffn_down.weight", (c.n_ff, c.n_embd)),       # [n_embd, n_ff]
        }
        # Biases are required where the architecture defines them; elsewhere used if present.
        for key, name, n in (("bq", "attn_q.bias", q_out), ("bk", "attn_k.bias", kv_out),
                             ("bv", "attn_v.bias", v_out)):
            layer[key] = w.get(p + name, (n,), optional=not c.qkv_bias)
        layer["bo"] = w.get(p + "attn_output.bias", (c.n_embd,), optional=True)
        if c.qk_norm:
            layer["q_norm"] = w.get(p + "attn_q_norm.weight", (c.head_dim_k,))
            layer["k_norm"] = w.get(p + "attn_k_norm.weight", (c.head_dim_k,))
        weights["layers"].append(layer)
    w.check_all_used()
    return weights


# ---------------------------------------------------------------- building blocks

def rmsnorm(x, weight, eps):
    """Scale each vector (last axis) to unit root-mean-square, then by a learned weight."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def silu(x):
    # x * sigmoid(x), with sigmoid written via tanh so that large |x| cannot overflow exp().
    return x * (0.5 * (1.0 + np.tanh(0.5 * x)))


def rope(x, positions, inv_freq, rope_dim, layout):
    """Rotate pairs of dims of every head by angle pos * inv_freq[i]. x: [n_tokens, n_heads, head_dim].
    Dims past rope_dim pass through unchanged."""
    theta = positions.astype(np.float64)[:, None] * inv_freq[None, :]   # [n_tokens, rope_dim/2]
    cos = np.cos(theta)[:, None, :].astype(x.dtype)
    sin = np.sin(theta)[:, None, :].astype(x.dtype)
    out = x.copy()
    if layout == "normal":
        a, b = x[..., 0:rope_dim:2], x[..., 1:rope_dim:2]
        out[..., 0:rope_dim:2] = a * cos - b * sin
        out[..., 1:rope_dim:2] = a * sin + b * cos
    elif layout == "neox":
        half = rope_dim // 2
        a, b = x[..., :half], x[..., half:rope_dim]
        out[..., :half] = a * cos - b * sin
        out[..., half:rope_dim] = a * sin + b * cos
    else:
        raise ValueError(f"unknown rope layout '{layout}'")
    return out


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


class KVCache:
    """Keys and values of every processed position, per layer, grown by doubling."""

    def __init__(self, c, dtype):
        self.c, self.dtype, self.n_past, self.capacity = c, dtype, 0, 0
        self.k = [None] * c.n_layer  # each [capacity, n_head_kv, head_dim_k]
        self.v = [None] * c.n_layer  # each [capacity, n_head_kv, head_dim_v]

    def reserve(self, n):
        if n <= self.capacity:
            return
        cap = max(n, 2 * self.capacity, 64)
        for i in range(self.c.n_layer):
            k = np.zeros((cap, self.c.n_head_kv, self.c.head_dim_k), self.dtype)
            v = np.zeros((cap, self.c.n_head_kv, self.c.head_dim_v), self.dtype)
            if self.k[i] is not None:
                k[:self.n_past], v[:self.n_past] = self.k[i][:self.n_past], self.v[i][:self.n_past]
            self.k[i], self.v[i] = k, v
        self.capacity = cap


# ---------------------------------------------------------------- the model

class Model:
    """Load once, then call forward() with consecutive chunks of tokens (prefill and decode alike).

    trace, if given, is called as trace(name, layer, array) for every named intermediate
    (layer is -1 outside the blocks), so a mismatching engine can be compared layer by layer.
    """

    def __init__(self, path, dtype=np.float64, trace=None):
        self.gguf = read_gguf(path)
        self.config = load_config(self.gguf)
        self.dtype = np.dtype(dtype)
        self.weights = load_weights(self.gguf, self.config, self.dtype)
        self.trace = trace
        self.reset()

    def reset(self):
        self.cache = KVCache(self.config, self.dtype)

    @property
    def n_past(self):
        return self.cache.n_past

    def _cb(self, name, layer, x):
        if self.trace is not None:
            self.trace(name, layer, x)

    def forward(self, tokens):
        """Logits [n_tokens, n_vocab] for tokens placed at positions n_past, n_past+1, ..."""
        c, W, cache = self.config, self.weights, self.cache
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if tokens.size == 0:
            raise ValueError("forward() needs at least one token")
        if tokens.min() < 0 or tokens.max() >= c.n_vocab:
            raise ValueError(f"token id out of range [0, {c.n_vocab})")
        n_tok = tokens.size
        pos = np.arange(cache.n_past, cache.n_past + n_tok)
        n_kv = cache.n_past + n_tok
        cache.reserve(n_kv)
        n_rep = c.n_head // c.n_head_kv
        # Query i may see keys at positions <= pos[i].
        causal = np.arange(n_kv)[None, :] <= pos[:, None]                 # [n_tok, n_kv]

        x = W["token_embd"][tokens]                                      # [n_tok, n_embd]
        self._cb("inp_embd", -1, x)
        for il, L in enumerate(W["layers"]):
            h = rmsnorm(x, L["attn_norm"], c.rms_eps)
            self._cb("attn_norm", il, h)
            q, k, v = h @ L["wq"].T, h @ L["wk"].T, h @ L["wv"].T
            if L["bq"] is not None:
                q = q + L["bq"]
            if L["bk"] is not None:
                k = k + L["bk"]
            if L["bv"] is not None:
                v = v + L["bv"]
            q = q.reshape(n_tok, c.n_head, c.head_dim_k)
            k = k.reshape(n_tok, c.n_head_kv, c.head_dim_k)
            v = v.reshape(n_tok, c.n_head_kv, c.head_dim_v)
            self._cb("Qcur", il, q)
            self._cb("Kcur", il, k)
            self._cb("Vcur", il, v)
            if c.qk_norm:
                q = rmsnorm(q, L["q_norm"], c.rms_eps)
                k = rmsnorm(k, L["k_norm"], c.rms_eps)
                self._cb("Qcur_normed", il, q)
                self._cb("Kcur_normed", il, k)
            q = rope(q, pos, c.rope_inv_freq, c.rope_dim, c.rope_layout)
            k = rope(k, pos, c.rope_inv_freq, c.rope_dim, c.rope_layout)
            self._cb("Qcur_rope", il, q)
            self._cb("Kcur_rope", il, k)

            cache.k[il][cache.n_past:n_kv] = k
            cache.v[il][cache.n_past:n_kv] = v
            keys, vals = cache.k[il][:n_kv], cache.v[il][:n_kv]         # [n_kv, n_head_kv, head_dim]
            # Group the query heads that share a kv head: [n_tok, n_head_kv, n_rep, head_dim].
            qg = q.reshape(n_tok, c.n_head_kv, n_rep, c.head_dim_k)
            scores = np.einsum("tgrd,sgd->grts", qg, keys) / math.sqrt(c.head_dim_k)
            scores = np.where(causal[None, None], scores, -np.inf)
            probs = softmax(scores, axis=-1)                             # [n_head_kv, n_rep, n_tok, n_kv]
            self._cb("kq_soft_max", il, probs.reshape(c.n_head, n_tok, n_kv))
            att = np.einsum("grts,sgd->tgrd", probs, vals).reshape(n_tok, c.n_head * c.head_dim_v)
            self._cb("kqv_out", il, att)
            att = att @ L["wo"].T
            if L["bo"] is not None:
                att = att + L["bo"]
            self._cb("attn_out", il, att)
            x = x + att
            self._cb("ffn_inp", il, x)

            h = rmsnorm(x, L["ffn_norm"], c.rms_eps)
            self._cb("ffn_norm", il, h)
            gate, up = h @ L["w_gate"].T, h @ L["w_up"].T
            self._cb("ffn_gate", il, gate)
            self._cb("ffn_up", il, up)
            ffn = (silu(gate) * up) @ L["w_down"].T
            self._cb("ffn_out", il, ffn)
            x = x + ffn
            self._cb("l_out", il, x)

        cache.n_past = n_kv
        h = rmsnorm(x, W["output_norm"], c.rms_eps)
        self._cb("result_norm", -1, h)
        logits = h @ W["output"].T                                       # [n_tok, n_vocab]
        self._cb("result_output", -1, logits)
        return logits


def compute_logits(model, tokens, positions="all"):
    """Logits of a fresh sequence, for every position ("all") or only the last ("last")."""
    if positions not in ("all", "last"):
        raise ValueError(f"positions must be 'all' or 'last', got '{positions}'")
    model.reset()
    logits = model.forward(tokens)
    return logits if positions == "all" else logits[-1:]


def generate_greedy(model, prompt, steps):
    """Greedy decoding with llama2.c's meaning of `steps`: the number of positions run through the
    model. Position p is fed the prompt token p while there is one, else the argmax after p-1;
    after each position the argmax is appended (if the prompt is exhausted). Returns the whole
    sequence, prompt first: steps + 1 ids when steps >= len(prompt). No stop on EOS.
    The prompt goes through as one chunk (prefill), then one token per forward()."""
    prompt = [int(t) for t in prompt]
    if not prompt:
        raise ValueError("generate needs at least one prompt token (e.g. BOS)")
    model.reset()
    seq = list(prompt)
    n_prefill = min(len(prompt), steps)
    if n_prefill == 0:
        return seq
    logits = model.forward(prompt[:n_prefill])[-1]
    for pos in range(n_prefill, steps + 1):
        if pos >= len(seq):
            seq.append(int(np.argmax(logits)))
        if pos == steps:
            break
        logits = model.forward([seq[pos]])[-1]
    return seq
