"""Reads torch's legacy (non-zip) .pth serialization without torch.

The file is a sequence of pickles: the magic number, the protocol version, a sys-info dict, the
state dict (tensors as torch._utils._rebuild_tensor_v2 calls over persistent storage ids), the list
of storage keys; then, per key in that order, an int64 little-endian element count and the raw
little-endian storage bytes.
"""

import collections
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data = None  # np.ndarray once the raw bytes are read


class _Tensor:
    """A tensor whose storage is read later: rebuilt into numpy by materialize()."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self):
        base = self.storage.data
        if base is None:
            raise ValueError("cannot rebuild tensor: storage %r was never read" % self.storage.key)
        n = 1
        for s in self.size:
            n *= s
        if n == 0:
            return np.zeros(self.size, dtype=base.dtype)
        last = self.offset + sum((d - 1) * s for d, s in zip(self.size, self.stride))
        if self.offset < 0 or last >= base.size:
            raise ValueError("cannot rebuild tensor: view outside its storage %r" % self.storage.key)
        item = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride))
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError("cannot load %s.%s: not allowed in a weights file" % (module, name))

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError("cannot load persistent id %r" % (pid,))
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(stype, _StorageType) or not isinstance(numel, int):
            raise pickle.UnpicklingError("cannot load storage id %r" % (pid,))
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("cannot load storage views (legacy view metadata)")
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = _Storage(key, stype.dtype, numel)
        return st


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError("cannot load %s.%s here" % (module, name))


def load(path):
    """Returns the state dict of a legacy .pth file as an OrderedDict of name -> np.ndarray."""
    with open(path, "rb") as f:
        magic = _PlainUnpickler(f).load()
        if magic != MAGIC:
            raise ValueError("cannot load %s: not a legacy torch file (magic %r)" % (path, magic))
        proto = _PlainUnpickler(f).load()
        if proto != PROTOCOL:
            raise ValueError("cannot load %s: protocol %r, want %d" % (path, proto, PROTOCOL))
        info = _PlainUnpickler(f).load()
        if not isinstance(info, dict) or not info.get("little_endian", False):
            raise ValueError("cannot load %s: not a little-endian file" % path)
        up = _Unpickler(f)
        state = up.load()
        keys = _PlainUnpickler(f).load()
        if not isinstance(keys, list):
            raise ValueError("cannot load %s: bad storage key list" % path)
        for key in keys:
            st = up.storages.get(str(key))
            if st is None:
                raise ValueError("cannot load %s: unknown storage key %r" % (path, key))
            head = f.read(8)
            if len(head) != 8:
                raise ValueError("cannot load %s: truncated at storage %r" % (path, key))
            (numel,) = struct.unpack("<q", head)
            if numel != st.numel:
                raise ValueError("cannot load %s: storage %r has %d elements, want %d" % (path, key, numel, st.numel))
            raw = f.read(numel * st.dtype.itemsize)
            if len(raw) != numel * st.dtype.itemsize:
                raise ValueError("cannot load %s: truncated storage %r" % (path, key))
            st.data = np.frombuffer(raw, dtype=st.dtype.newbyteorder("<"))
    if not isinstance(state, collections.OrderedDict):
        raise ValueError("cannot load %s: the state is a %s, not a state dict" % (path, type(state).__name__))
    out = collections.OrderedDict()
    for name, t in state.items():
        if not isinstance(t, _Tensor):
            raise ValueError("cannot load %s: entry %r is not a tensor" % (path, name))
        out[name] = t.materialize()
    return out
