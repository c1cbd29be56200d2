"""EfficientNet-Lite0 as an ONNX graph built from the state dict, run with onnxruntime.

Architecture (efficientnet-lite): stem 3x3/2 conv to 32, sixteen MBConv blocks from the stage
strings below, 1x1 head conv to 1280, global average pooling, a 1000-way linear layer. ReLU6
everywhere, no squeeze-excite, BatchNorm with eps 1e-3 (folded into the convolutions here), and
TensorFlow "SAME" padding computed statically for a 224x224 input with the odd pixel of padding at
the bottom/right. A residual connection joins blocks that keep stride 1 and channel count, which in
the reference code means every repeat of a stage but not its first block.
"""

import math
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort

IMAGE_SIZE = 224
FEATURE_DIM = 1280
BN_EPS = 1e-3

# (repeats, kernel, stride, expand ratio, in channels, out channels)
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def same_pads(size, kernel, stride):
    """TF SAME padding of one axis: (before, after), the odd pixel after."""
    out = math.ceil(size / stride)
    pad = max((out - 1) * stride + kernel - size, 0)
    return pad // 2, pad - pad // 2


class _Builder:
    def __init__(self, state):
        self.state = state
        self.used = set()
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, prefix):
        self.n += 1
        return "%s_%d" % (prefix, self.n)

    def tensor(self, key):
        if key not in self.state:
            raise KeyError("cannot build the network: weight %s is missing" % key)
        self.used.add(key)
        return self.state[key].astype(np.float64)

    def init(self, prefix, arr):
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def conv_bn(self, x, conv, bn, size, stride, groups=1, act=True):
        """conv (no bias) + BatchNorm folded into weight and bias, optional ReLU6."""
        w = self.tensor(conv + ".weight")
        gamma, beta = self.tensor(bn + ".weight"), self.tensor(bn + ".bias")
        mean, var = self.tensor(bn + ".running_mean"), self.tensor(bn + ".running_var")
        self.used.add(bn + ".num_batches_tracked")
        scale = gamma / np.sqrt(var + BN_EPS)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (beta - mean * scale).astype(np.float32)
        k = w.shape[-1]
        pb, pa = same_pads(size, k, stride)
        out = self.name("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, self.init("w", wf), self.init("b", bf)], [out],
            kernel_shape=[k, k], strides=[stride, stride], pads=[pb, pb, pa, pa], group=groups))
        if act:
            out = self.relu6(out)
        return out

    def relu6(self, x):
        out = self.name("relu6")
        self.nodes.append(helper.make_node("Clip", [x, self.lo, self.hi], [out]))
        return out


def build_model(state):
    """Returns the ONNX ModelProto: input "image" [N,3,224,224], outputs "features" [N,1280]
    (pooled, before the classifier) and "logits" [N,1000]."""
    b = _Builder(state)
    b.lo = b.init("zero", np.array(0.0, np.float32))
    b.hi = b.init("six", np.array(6.0, np.float32))
    size = IMAGE_SIZE
    x = b.conv_bn("image", "_conv_stem", "_bn0", size, 2)
    size = math.ceil(size / 2)
    idx = 0
    for repeats, k, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            ci = cin if r == 0 else cout
            p = "_blocks.%d." % idx
            inp = x
            h = x
            if expand != 1:
                h = b.conv_bn(h, p + "_expand_conv", p + "_bn0", size, 1)
            h = b.conv_bn(h, p + "_depthwise_conv", p + "_bn1", size, s, groups=ci * expand)
            size = math.ceil(size / s)
            h = b.conv_bn(h, p + "_project_conv", p + "_bn2", size, 1, act=False)
            if r > 0:  # stride 1 and cin == cout
                out = b.name("add")
                b.nodes.append(helper.make_node("Add", [h, inp], [out]))
                h = out
            x = h
            idx += 1
    x = b.conv_bn(x, "_conv_head", "_bn1", size, 1)
    pooled = b.name("pool")
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled]))
    b.nodes.append(helper.make_node("Flatten", [pooled], ["features"], axis=1))
    fw = b.tensor("_fc.weight").astype(np.float32)
    fb = b.tensor("_fc.bias").astype(np.float32)
    b.nodes.append(helper.make_node(
        "Gemm", ["features", b.init("fcw", fw), b.init("fcb", fb)], ["logits"], transB=1))
    unused = sorted(set(state) - b.used)
    if unused:
        raise ValueError("cannot build the network: %d weights unused, e.g. %s" % (len(unused), unused[:3]))
    graph = helper.make_graph(
        b.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", FEATURE_DIM]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", fw.shape[0]])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vlproxy-effnet")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class Network:
    """An onnxruntime session over the graph; run() is safe to call from several threads."""

    def __init__(self, state, threads=1):
        model = build_model(state)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def run(self, batch):
        """batch: float32 [N,3,224,224] -> (features [N,1280], logits [N,1000], cpu_ms)."""
        t0 = time.process_time()  # the whole process: exact when requests do not overlap
        feats, logits = self.session.run(["features", "logits"], {"image": batch})
        cpu_ms = (time.process_time() - t0) * 1000.0
        return feats, logits, cpu_ms
