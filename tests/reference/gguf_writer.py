"""A small GGUF v2/v3 writer, so tests can build synthetic models and quantized tensors.

Metadata types are inferred from python values (str -> string, bool -> bool, int -> int32 or
int64, float -> float32, list -> array of the first element's type) unless given exactly:
add("k", 7, "uint64"), add("k", [1, 2], "array[uint8]"), add("k", [[1], [2, 3]], "array[array[int32]]").
"""

import struct

import numpy as np

import quants
from gguf_reader import DEFAULT_ALIGNMENT, GGUF_MAGIC, VALUE_TYPES

_TYPE_IDS = {name: type_id for type_id, (name, _) in VALUE_TYPES.items()}


def _infer_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, np.integer)):
        return "int32" if -2**31 <= int(value) < 2**31 else "int64"
    if isinstance(value, (float, np.floating)):
        return "float32"
    if isinstance(value, (list, tuple)):
        inner = _infer_type(value[0]) if len(value) else "int32"
        return f"array[{inner}]"
    raise TypeError(f"cannot infer a GGUF type for {value!r}")


def _encode_string(s):
    raw = s.encode("utf-8", errors="surrogateescape")
    return struct.pack("<Q", len(raw)) + raw


def _encode_value(type_name, value):
    """Bytes of a value of type_name, without the leading type id."""
    if type_name.startswith("array[") and type_name.endswith("]"):
        inner = type_name[len("array["):-1]
        elem_type = "array" if inner.startswith("array[") else inner
        out = struct.pack("<IQ", _TYPE_IDS[elem_type], len(value))
        # A nested array element carries its own element type and count, but no outer type id.
        return out + b"".join(_encode_value(inner, v) for v in value)
    if type_name == "string":
        return _encode_string(value)
    if type_name not in _TYPE_IDS or VALUE_TYPES[_TYPE_IDS[type_name]][1] is None:
        raise TypeError(f"unknown GGUF value type '{type_name}'")
    return np.array([value], dtype=VALUE_TYPES[_TYPE_IDS[type_name]][1]).tobytes()


def _value_type_id(type_name):
    return _TYPE_IDS["array"] if type_name.startswith("array[") else _TYPE_IDS[type_name]


class GGUFWriter:
    def __init__(self, version=3, alignment=None):
        self.version = version
        self.alignment = alignment or DEFAULT_ALIGNMENT
        self.kv = []       # (key, type name, value)
        self.tensors = []  # (name, ne, type id, raw bytes)
        if alignment is not None:
            self.add("general.alignment", alignment, "uint32")

    def add(self, key, value, type_name=None):
        """Metadata key = value; type_name (e.g. "uint32", "array[string]") overrides inference."""
        self.kv.append((key, type_name or _infer_type(value), value))

    def add_tensor(self, name, array, type_name="F32"):
        """array in numpy shape (rows, cols): written with ne = reversed shape, quantized as asked."""
        array = np.asarray(array)
        ne = tuple(reversed(array.shape))
        flat = array.astype(np.float32).reshape(-1)
        if type_name == "F32":
            raw = flat.astype("<f4").tobytes()
        elif type_name == "F16":
            raw = flat.astype("<f2").tobytes()
        elif type_name == "BF16":
            # Round to nearest even on the dropped 16 bits (finite inputs only).
            bits = flat.view(np.uint32).astype(np.uint64)
            raw = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()
        elif type_name == "Q8_0":
            raw = quants.quantize_q8_0(flat).tobytes()
        elif type_name == "Q4_0":
            raw = quants.quantize_q4_0(flat).tobytes()
        else:
            raise ValueError(f"add_tensor cannot quantize to {type_name}; use add_raw_tensor")
        self.add_raw_tensor(name, ne, quants.type_id(type_name), raw)

    def add_raw_tensor(self, name, ne, type_id, raw):
        n_elements = int(np.prod(ne, dtype=np.int64)) if len(ne) else 1
        expected = quants.n_bytes(type_id, n_elements, name)
        if len(raw) != expected:
            raise ValueError(f"{name}: expected {expected} bytes, got {len(raw)}")
        self.tensors.append((name, tuple(int(n) for n in ne), type_id, bytes(raw)))

    def to_bytes(self):
        out = bytearray(GGUF_MAGIC + struct.pack("<IQQ", self.version, len(self.tensors), len(self.kv)))
        for key, type_name, value in self.kv:
            out += _encode_string(key) + struct.pack("<I", _value_type_id(type_name))
            out += _encode_value(type_name, value)
        offset, offsets = 0, []
        for name, ne, type_id, raw in self.tensors:
            offsets.append(offset)
            offset = (offset + len(raw) + self.alignment - 1) // self.alignment * self.alignment
        for (name, ne, type_id, raw), off in zip(self.tensors, offsets):
            out += _encode_string(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", type_id, off)
        out += bytes(-len(out) % self.alignment)
        for (name, ne, type_id, raw), off in zip(self.tensors, offsets):
            out += raw + bytes(-len(raw) % self.alignment)
        return bytes(out)

    def write(self, path):
        with open(path, "wb") as fh:
            fh.write(self.to_bytes())
