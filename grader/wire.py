"""A plain data format for what crosses a process boundary: a JSON header and raw arrays.

Nothing read from a child is ever unpickled or executed: a message is a 4-byte length, a UTF-8
JSON header ({"meta": ..., "arrays": [{"name", "dtype", "shape", "offset", "nbytes"}]}) and
the arrays' bytes. `decode` checks every field before building a tensor from it: sizes, dtypes,
shapes and the depth of the JSON, so that a forged message is a WireError, never a crash.
Between the grader and its workers, messages travel framed by an 8-byte length (`send`,
`receive`).
"""
import json
import math
import struct

import torch

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
          "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 1 << 20
MAX_ARRAYS = 1000
MAX_DIMS = 8
MAX_ELEMENTS = 1 << 31
MAX_DEPTH = 20


class WireError(ValueError):
    """A message that does not follow the format."""


def encode(meta, arrays=None):
    """Bytes of a message holding the JSON-able `meta` and a {name: tensor} dict."""
    specs, chunks, offset = [], [], 0
    for name, tensor in (arrays or {}).items():
        tensor = tensor.detach().to("cpu").contiguous()
        if tensor.dtype not in DTYPE_NAMES:
            raise WireError(f"array '{name}' has dtype {tensor.dtype}, which the format does not carry")
        data = tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        specs.append({"name": name, "dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                      "offset": offset, "nbytes": len(data)})
        chunks.append(data)
        offset += len(data)
    header = json.dumps({"meta": meta, "arrays": specs}, allow_nan=True).encode()
    return struct.pack(">I", len(header)) + header + b"".join(chunks)


def decode(message, max_bytes):
    """(meta, {name: tensor}) from `message`; raises WireError on anything malformed."""
    if not isinstance(message, (bytes, bytearray)) or len(message) > max_bytes:
        raise WireError(f"message is not bytes of at most {max_bytes} bytes")
    if len(message) < 4:
        raise WireError("message shorter than its length field")
    (size,) = struct.unpack(">I", message[:4])
    if size > MAX_HEADER or 4 + size > len(message):
        raise WireError("header length out of range")
    try:
        header = json.loads(message[4:4 + size].decode())
    except RecursionError:
        raise WireError("header nests too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise WireError(f"header is not JSON: {e}") from None
    if _depth(header) > MAX_DEPTH:
        raise WireError(f"header nests deeper than {MAX_DEPTH} levels")
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise WireError("header lacks its array list")
    if len(header["arrays"]) > MAX_ARRAYS:
        raise WireError("too many arrays")
    body = memoryview(message)[4 + size:]
    arrays = {}
    for spec in header["arrays"]:
        arrays[_name(spec)] = _array(spec, body)
    return header.get("meta"), arrays


def _depth(value, level=1):
    """How deeply lists and dicts nest in a decoded JSON value (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, level)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def framed(message):
    """One framed message: an 8-byte big-endian length, then the bytes."""
    return struct.pack(">Q", len(message)) + message


def send(stream, message):
    """Write one framed message and flush."""
    stream.write(framed(message))
    stream.flush()


def receive(stream, max_bytes):
    """The next framed message from `stream`, or None at a clean end of stream."""
    header = stream.read(8)
    if not header:
        return None
    if len(header) < 8:
        raise WireError("the stream ended inside a frame's length")
    (size,) = struct.unpack(">Q", header)
    if size > max_bytes:
        raise WireError(f"a frame of {size} bytes exceeds {max_bytes}")
    message = stream.read(size)
    if len(message) < size:
        raise WireError("the stream ended inside a frame")
    return message


def _name(spec):
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or len(spec["name"]) > 200:
        raise WireError("array without a proper name")
    return spec["name"]


def _array(spec, body):
    dtype = DTYPES.get(spec.get("dtype"))
    shape, offset, nbytes = spec.get("shape"), spec.get("offset"), spec.get("nbytes")
    if dtype is None:
        raise WireError(f"array '{spec['name']}' has an unknown dtype")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(type(d) is int and 0 <= d <= MAX_ELEMENTS for d in shape)
            or math.prod(shape) > MAX_ELEMENTS):
        raise WireError(f"array '{spec['name']}' has a malformed shape")
    if type(offset) is not int or type(nbytes) is not int or offset < 0 or nbytes < 0:
        raise WireError(f"array '{spec['name']}' has a malformed extent")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if math.prod(shape) * itemsize != nbytes or offset + nbytes > len(body):
        raise WireError(f"array '{spec['name']}' does not fit its bytes")
    raw = bytearray(body[offset:offset + nbytes])
    if not raw:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)
