"""A small, independent GGUF v2/v3 reader (written from the format definition).

File layout (all little-endian):
    header:   magic "GGUF" (4 bytes), version u32, n_tensors u64, n_kv u64
    n_kv x    key (string), value type u32, value
    n_tensors x tensor info: name (string), n_dims u32, ne[n_dims] u64, ggml type u32, offset u64
    padding up to `general.alignment` (default 32), then the tensor data blob.
A string is a u64 byte length followed by UTF-8 bytes (no terminator). An array value is
element type u32, count u64, then the elements (arrays may nest). Tensor offsets are relative
to the start of the data blob and must be multiples of the alignment.

Tensor shapes use ggml order: ne[0] is the fastest-varying (contiguous) dimension, so a tensor
with ne = [n_cols, n_rows] is a row-major numpy array of shape (n_rows, n_cols).
"""

import struct
from dataclasses import dataclass, field

import numpy as np

import quants

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# Metadata value types: id -> (name, numpy dtype for fixed-size scalars, or None).
VALUE_TYPES = {
    0: ("uint8", np.dtype("<u1")),
    1: ("int8", np.dtype("<i1")),
    2: ("uint16", np.dtype("<u2")),
    3: ("int16", np.dtype("<i2")),
    4: ("uint32", np.dtype("<u4")),
    5: ("int32", np.dtype("<i4")),
    6: ("float32", np.dtype("<f4")),
    7: ("bool", np.dtype("<u1")),
    8: ("string", None),
    9: ("array", None),
    10: ("uint64", np.dtype("<u8")),
    11: ("int64", np.dtype("<i8")),
    12: ("float64", np.dtype("<f8")),
}
TYPE_STRING = 8
TYPE_ARRAY = 9
TYPE_BOOL = 7


class GGUFError(ValueError):
    """The file is not a valid GGUF file (or uses a feature this reader does not know)."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple          # ggml order: (ne0, ne1, ...), ne0 contiguous
    type_id: int          # ggml type id, see quants.DTYPES
    offset: int           # byte offset of the data from the start of the data blob
    n_bytes: int
    data: np.ndarray = field(repr=False)  # uint8 memmap view of exactly n_bytes

    @property
    def type_name(self):
        return quants.type_name(self.type_id)

    @property
    def n_elements(self):
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def numpy_shape(self):
        """Row-major numpy shape: ggml's ne reversed."""
        return tuple(reversed(self.shape))


@dataclass
class GGUFFile:
    path: str
    version: int
    alignment: int
    data_offset: int          # absolute file offset of the tensor data blob
    metadata: dict            # key -> python value (int, float, bool, str, or nested lists)
    metadata_types: dict      # key -> value type name; arrays as "array[<elem type>]"
    tensors: dict             # name -> TensorInfo, in file order

    def get(self, key, default=None):
        return self.metadata.get(key, default)

    def require(self, key):
        if key not in self.metadata:
            raise GGUFError(f"{self.path}: missing required metadata key '{key}'")
        return self.metadata[key]

    def dequantize(self, name, dtype=np.float32):
        """Tensor `name` as a numpy array of shape numpy_shape (ggml ne reversed)."""
        if name not in self.tensors:
            raise GGUFError(f"{self.path}: no tensor named '{name}'")
        t = self.tensors[name]
        flat = quants.dequantize(t.data, t.type_id, t.n_elements, dtype=dtype)
        return flat.reshape(t.numpy_shape)


class _Cursor:
    """Sequential little-endian decoding over a bytes-like buffer, with bounds checks."""

    def __init__(self, buf, path):
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, n):
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError(f"{self.path}: truncated file (need {n} bytes at offset {self.pos}, "
                            f"file has {len(self.buf)})")
        start = self.pos
        self.pos += n
        return self.buf[start:self.pos]

    def scalar(self, fmt):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def u32(self):
        return self.scalar("<I")

    def u64(self):
        return self.scalar("<Q")

    def string(self):
        n = self.u64()
        raw = bytes(self.take(n))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # Some vocabularies hold byte tokens that are not valid UTF-8; keep them lossless.
            return raw.decode("utf-8", errors="surrogateescape")

    def value(self, type_id):
        """Decode one value; returns (python value, type name such as "uint32" or "array[string]")."""
        if type_id not in VALUE_TYPES:
            raise GGUFError(f"{self.path}: unknown metadata value type {type_id} at offset {self.pos}")
        if type_id == TYPE_STRING:
            return self.string(), "string"
        if type_id == TYPE_ARRAY:
            return self.array()
        np_dtype = VALUE_TYPES[type_id][1]
        v = np.frombuffer(self.take(np_dtype.itemsize), dtype=np_dtype)[0]
        return (bool(v) if type_id == TYPE_BOOL else v.item()), VALUE_TYPES[type_id][0]

    def array(self):
        elem_type = self.u32()
        count = self.u64()
        if elem_type not in VALUE_TYPES:
            raise GGUFError(f"{self.path}: unknown array element type {elem_type} at offset {self.pos}")
        elem_name = VALUE_TYPES[elem_type][0]
        np_dtype = VALUE_TYPES[elem_type][1]
        if np_dtype is not None:
            # Fixed-size elements: decode the whole array at once (vocab scores, token types).
            if count > (len(self.buf) - self.pos) // np_dtype.itemsize:
                raise GGUFError(f"{self.path}: array of {count} {elem_name} runs past the end of the file")
            values = np.frombuffer(self.take(count * np_dtype.itemsize), dtype=np_dtype)
            if elem_type == TYPE_BOOL:
                return [bool(v) for v in values], "array[bool]"
            return values.tolist(), f"array[{elem_name}]"
        # Strings and nested arrays take at least 8 bytes each.
        if count > (len(self.buf) - self.pos) // 8:
            raise GGUFError(f"{self.path}: array of {count} {elem_name} runs past the end of the file")
        items = [self.value(elem_type) for _ in range(count)]
        if elem_type == TYPE_ARRAY:
            # Nested arrays: name the inner type after the first element (all should agree).
            inner = items[0][1] if items else "array[?]"
            return [v for v, _ in items], f"array[{inner}]"
        return [v for v, _ in items], f"array[{elem_name}]"


def read_gguf(path):
    """Parse a GGUF file; tensor data stays on disk (numpy memmap) until dequantized."""
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(mm)
    cur = _Cursor(buf, path)

    magic = bytes(cur.take(4))
    if magic != GGUF_MAGIC:
        raise GGUFError(f"{path}: bad magic {magic!r}, expected b'GGUF'")
    version = cur.u32()
    if version not in (2, 3):
        raise GGUFError(f"{path}: unsupported GGUF version {version} (expected 2 or 3)")
    n_tensors = cur.u64()
    n_kv = cur.u64()
    # Every KV pair and tensor info takes at least 8 bytes, so larger counts cannot be real.
    if n_tensors > len(buf) // 8 or n_kv > len(buf) // 8:
        raise GGUFError(f"{path}: implausible counts n_tensors={n_tensors} n_kv={n_kv}")

    metadata, metadata_types = {}, {}
    for _ in range(n_kv):
        key = cur.string()
        type_id = cur.u32()
        if key in metadata:
            raise GGUFError(f"{path}: duplicate metadata key '{key}'")
        metadata[key], metadata_types[key] = cur.value(type_id)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"{path}: general.alignment must be a positive power of two, got {alignment!r}")

    infos = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.u32()
        if n_dims > 4:
            raise GGUFError(f"{path}: tensor '{name}' has {n_dims} dims (max 4)")
        shape = tuple(cur.u64() for _ in range(n_dims))
        type_id = cur.u32()
        offset = cur.u64()
        infos.append((name, shape, type_id, offset))

    data_offset = (cur.pos + alignment - 1) // alignment * alignment
    tensors = {}
    for name, shape, type_id, offset in infos:
        if name in tensors:
            raise GGUFError(f"{path}: duplicate tensor name '{name}'")
        if offset % alignment:
            raise GGUFError(f"{path}: tensor '{name}' offset {offset} is not a multiple of {alignment}")
        n_elements = int(np.prod(shape, dtype=np.int64)) if shape else 1
        n_bytes = quants.n_bytes(type_id, n_elements, name)
        start = data_offset + offset
        if start + n_bytes > len(mm):
            raise GGUFError(f"{path}: tensor '{name}' data [{start}, {start + n_bytes}) runs past "
                            f"the end of the file ({len(mm)} bytes)")
        tensors[name] = TensorInfo(name, shape, type_id, offset, n_bytes, mm[start:start + n_bytes])

    return GGUFFile(path, version, alignment, data_offset, metadata, metadata_types, tensors)
