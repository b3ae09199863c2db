"""grader/wire.py: the message format between the worker, its children and the grader."""
import json

import pytest
import torch

from grader import wire


def test_wire_round_trip_and_rejections():
    arrays = {"a": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.tensor([True]),
              "empty": torch.empty(0, 4)}
    meta, back = wire.decode(wire.encode({"k": [1, "x"]}, arrays), 1 << 20)
    assert meta == {"k": [1, "x"]}
    assert all(torch.equal(arrays[k], back[k]) and arrays[k].dtype == back[k].dtype for k in arrays)
    good = wire.encode({}, {"a": torch.zeros(3)})
    header_len = int.from_bytes(good[:4], "big")
    header = json.loads(good[4:4 + header_len])
    for bad_spec in ({"dtype": "object"}, {"shape": [4]}, {"offset": 100}, {"shape": [-3]},
                     {"nbytes": 8}):
        spec = {**header["arrays"][0], **bad_spec}
        forged = json.dumps({"meta": {}, "arrays": [spec]}).encode()
        with pytest.raises(wire.WireError):
            wire.decode(len(forged).to_bytes(4, "big") + forged + good[4 + header_len:], 1 << 20)
    for junk in (b"", b"\x00\x00\x00\x05{}", b"\xff\xff\xff\xff", good[:-1] + b"" if False else b"\x00"):
        with pytest.raises(wire.WireError):
            wire.decode(junk, 1 << 20)
    with pytest.raises(wire.WireError):
        wire.decode(good, 10)


def test_framed_messages_read_back_one_by_one():
    import io

    messages = [wire.encode({"n": i}, {"x": torch.full((i,), float(i))}) for i in range(3)]
    stream = io.BytesIO(b"".join(wire.framed(m) for m in messages))
    assert [wire.receive(stream, 1 << 20) for _ in range(3)] == messages
    assert wire.receive(stream, 1 << 20) is None
