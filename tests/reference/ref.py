#!/usr/bin/python3
"""Command line for the numpy reference (run with /usr/bin/python3, which has numpy).

    ref.py logits   --model M.gguf --tokens 1,2,3 [--positions all|last] --out out.npy [--dtype f64|f32]
        float32 array [n_positions, n_vocab]: the logits after each requested position
    ref.py generate --model M.gguf --tokens 1 --steps 200 [--dtype f64|f32]
        greedy ids, space-separated: the prompt, then one argmax id per position run. With
        llama2.c's meaning of steps (positions run), --tokens 1 --steps 200 prints 201 ids.
        --dtype f64 (default) computes in float64, f32 in float32 (faster, less precise)
    ref.py dequant  --model M.gguf --tensor NAME --out x.npy
        float32 array in numpy shape (ggml ne reversed)
    ref.py info     --model M.gguf
        metadata (long arrays abbreviated) and tensor table
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gguf_reader import read_gguf  # noqa: E402
from model import Model, compute_logits, generate_greedy  # noqa: E402

DTYPES = {"f64": np.float64, "f32": np.float32}


def parse_tokens(text):
    try:
        return [int(t) for t in text.replace(" ", ",").split(",") if t]
    except ValueError:
        raise SystemExit(f"ref.py: --tokens must be comma-separated integers, got '{text}'")


def cmd_logits(args):
    model = Model(args.model, dtype=DTYPES[args.dtype])
    logits = compute_logits(model, parse_tokens(args.tokens), args.positions)
    np.save(args.out, logits.astype(np.float32))
    print(f"wrote {args.out}: float32 {list(logits.shape)}")


def cmd_generate(args):
    model = Model(args.model, dtype=DTYPES[args.dtype])
    print(" ".join(str(t) for t in generate_greedy(model, parse_tokens(args.tokens), args.steps)))


def cmd_dequant(args):
    x = read_gguf(args.model).dequantize(args.tensor, np.float32)
    np.save(args.out, x)
    print(f"wrote {args.out}: float32 {list(x.shape)}")


def cmd_info(args):
    f = read_gguf(args.model)
    print(f"GGUF v{f.version}, alignment {f.alignment}, data at {f.data_offset}, "
          f"{len(f.metadata)} keys, {len(f.tensors)} tensors")
    for key, value in f.metadata.items():
        shown = value if not isinstance(value, list) or len(value) <= 8 else f"{value[:8]} ... ({len(value)})"
        print(f"  {key} ({f.metadata_types[key]}) = {shown}")
    for t in f.tensors.values():
        print(f"  {t.name:40s} {t.type_name:6s} ne={list(t.shape)} offset={t.offset} bytes={t.n_bytes}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ref.py", description="numpy reference for GGUF llama-family models")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("logits", help="logits for a token sequence")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True, help="comma-separated token ids, fed from position 0")
    p.add_argument("--positions", choices=["all", "last"], default="all")
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="f64")
    p.set_defaults(func=cmd_logits)

    p = sub.add_parser("generate", help="greedy decoding")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--steps", type=int, required=True, help="positions to run (llama2.c): prints steps+1 ids")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="f64")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("dequant", help="dequantize one tensor to .npy")
    p.add_argument("--model", required=True)
    p.add_argument("--tensor", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_dequant)

    p = sub.add_parser("info", help="print metadata and tensors")
    p.add_argument("--model", required=True)
    p.set_defaults(func=cmd_info)

    args = ap.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, NotImplementedError, OSError) as e:
        raise SystemExit(f"ref.py {args.command}: {e}")


if __name__ == "__main__":
    main()
