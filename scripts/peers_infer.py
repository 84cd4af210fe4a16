#!/usr/bin/env python3
"""Inference of every variant of a tierforge bundle in PyTorch and ONNX Runtime (CPU), on the
same weights and the same inputs as `tierforge bench infer --bundle`, for timing side by side.

Input: the folder written by

    tierforge bench infer --bundle BUNDLE --batch 1,64 --dump-inputs DIR --dry-run

(`DIR/inputs.json`: the bundle, its search space, every variant's arch and weights file;
`DIR/input-rR.npy`: the first N test images preprocessed exactly as the runtime does, [N, C, R, R]
f32; `DIR/logits-ID.npy`: tierforge's logits of those N images, [N, classes]).

For each variant this script
  1. reads the variant's safetensors by hand (8-byte little-endian header length, JSON header,
     raw data; F32 and I8 tensors) and dequantises int8 weights exactly as
     supernet/src/plain.rs does (`w = f32(q) * NAME.weight_scale[row]`, in f32);
  2. builds the plain network in PyTorch: stem 3x3 conv + ReLU; per block 1x1 expand + act,
     kxk depthwise + act, 1x1 project, residual when stride 1 and in == out (act = the stage's
     ReLU or h-swish); head 1x1 conv + h-swish; global average pool; linear. Every conv has the
     folded BN as its bias;
  3. times batch-1 and batch-64 calls (median of repeated calls after warm-up, from the
     preprocessed f32 NCHW numpy buffer to logits as a numpy array) in
       pytorch      NCHW, torch.inference_mode
       pytorch-cl   channels-last (the model and the input converted, the input inside the call)
       onnxruntime  the model exported with torch.onnx.export (dynamic batch), CPU provider,
                    intra_op_num_threads = threads, inter_op 1, ORT_ENABLE_ALL, sequential;
  4. compares the logits with tierforge's (max abs difference; this checks the export).

One JSON line per (impl, variant, batch) with --json, in the format of `tierforge bench infer
--bundle --json` ("impl", "engine", "variant", "batch", "threads", "median_ms", "img_per_s",
"logits_checksum", "logits_head", "max_abs_diff_vs_tierforge", ...).

The counts scale with the batch as on the Rust side: batch B gets iters*6/B timed calls (between
min(5, iters) and iters) after warmup*6/B warm-up calls (between min(2, warmup) and warmup).

ONNX Runtime's worker threads spin while waiting, like OpenMP's; this script turns spinning off
when OMP_WAIT_POLICY=PASSIVE (as scripts/bench_vs_peers.sh sets by default) and leaves ORT's
default (on) otherwise; --ort-spin 0/1 overrides.

Usage:
  python peers_infer.py DIR/inputs.json [--threads N] [--impl pytorch,pytorch-cl,onnxruntime]
         [--batch 1,64] [--iters 200] [--warmup 10] [--variants a,b] [--onnx-dir DIR] [--json]
"""

import argparse
import hashlib
import json
import os
import statistics
import struct
import sys
import time
import warnings

import numpy as np

IMPLS = ("pytorch", "pytorch-cl", "onnxruntime")


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# safetensors, by hand


def read_safetensors(path):
    """{name: numpy array} (F32 / I8) and the metadata of a safetensors file."""
    try:
        data = open(path, "rb").read()
    except OSError as e:
        fail(f"{path}: cannot read the variant file ({e}); is the bundle complete?")
    if len(data) < 8:
        fail(f"{path}: truncated (no header length)")
    (hl,) = struct.unpack("<Q", data[:8])
    if 8 + hl > len(data):
        fail(f"{path}: header length {hl} runs past the end of the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8 : 8 + hl])
    except ValueError as e:
        fail(f"{path}: the header is not JSON ({e})")
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + hl
    dtypes = {"F32": np.dtype("<f4"), "I8": np.dtype("i1")}
    out = {}
    for name, e in header.items():
        dt = dtypes.get(e.get("dtype"))
        if dt is None:
            fail(f"{path}: tensor {name} has dtype {e.get('dtype')}; tierforge writes only F32 and I8")
        b, t = e["data_offsets"]
        shape = tuple(e["shape"])
        count = int(np.prod(shape)) if shape else 1
        if t - b != count * dt.itemsize or base + t > len(data):
            fail(f"{path}: tensor {name} {shape} {e['dtype']} has data offsets {b}..{t}, which do not fit")
        out[name] = np.frombuffer(data, dtype=dt, count=count, offset=base + b).reshape(shape)
    return out, meta


def take(tensors, name, shape, path):
    """Tensor `name` as f32 with the expected shape; int8 dequantised with `name_scale`
    exactly as PlainNet::from_safetensors does (per row, f32 multiply)."""
    t = tensors.get(name)
    if t is None:
        fail(f"{path}: tensor {name} is missing")
    if tuple(t.shape) != tuple(shape):
        fail(f"{path}: tensor {name} has shape {list(t.shape)}, the arch needs {list(shape)}")
    if t.dtype == np.int8:
        sc = tensors.get(name + "_scale")
        if sc is None or sc.dtype != np.float32 or tuple(sc.shape) != (shape[0],):
            fail(f"{path}: int8 tensor {name} has no f32 {name}_scale of shape [{shape[0]}]")
        w = t.astype(np.float32).reshape(shape[0], -1) * sc.reshape(-1, 1)
        return np.array(w.reshape(shape), dtype=np.float32, order="C")
    return np.array(t, dtype=np.float32, order="C")  # a writable copy (torch wants one)


def layer_specs(space, arch):
    """(name, out, in_per_group, k, stride, groups, act) of every conv in order, as
    supernet::space::layers and PlainNet::from_safetensors lay them out; act: None, 'relu',
    'hswish'. Also the residual flag per block."""
    convs = [("stem", space["stem_channels"], space["in_channels"], 3, space["stem_stride"], 1, "relu")]
    residual = []
    i = 0
    for s, st in enumerate(space["stages"]):
        act = "hswish" if st["act"] == "hswish" else "relu"
        for b in range(arch["depths"][s]):
            cin = (space["stem_channels"] if s == 0 else space["stages"][s - 1]["width"]) if b == 0 else st["width"]
            hid = cin * arch["expand_ratios"][s][b]
            k = arch["kernel_sizes"][s][b]
            stride = st["stride"] if b == 0 else 1
            convs.append((f"blocks.{i}.expand", hid, cin, 1, 1, 1, act))
            convs.append((f"blocks.{i}.dw", hid, 1, k, stride, hid, act))
            convs.append((f"blocks.{i}.project", st["width"], hid, 1, 1, 1, None))
            residual.append(stride == 1 and cin == st["width"])
            i += 1
    convs.append(("head", space["head_channels"], space["stages"][-1]["width"], 1, 1, 1, "hswish"))
    return convs, residual


# ---------------------------------------------------------------------------------------------
# the network in PyTorch


def build_torch(path, space, arch):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    tensors, _ = read_safetensors(path)
    convs, residual = layer_specs(space, arch)
    # the stem's kernel is whatever the file holds (3 in every space so far); check the rest
    stem_w = tensors.get("stem.weight")
    if stem_w is not None and stem_w.ndim == 4:
        n, o, ci, _, s, g, a = convs[0]
        convs[0] = (n, o, ci, stem_w.shape[2], s, g, a)

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList()
            self.acts = []
            for name, o, ci, k, stride, groups, act in convs:
                c = nn.Conv2d(ci * groups, o, k, stride=stride, padding=k // 2, groups=groups, bias=True)
                with torch.no_grad():
                    c.weight.copy_(torch.from_numpy(take(tensors, f"{name}.weight", (o, ci, k, k), path)))
                    c.bias.copy_(torch.from_numpy(take(tensors, f"{name}.bias", (o,), path)))
                self.convs.append(c)
                self.acts.append(act)
            classes, head = space["num_classes"], space["head_channels"]
            self.fc = nn.Linear(head, classes)
            with torch.no_grad():
                self.fc.weight.copy_(torch.from_numpy(take(tensors, "fc.weight", (classes, head), path)))
                self.fc.bias.copy_(torch.from_numpy(take(tensors, "fc.bias", (classes,), path)))
            self.residual = residual

        @staticmethod
        def _act(x, a):
            if a == "relu":
                return F.relu(x)
            if a == "hswish":
                return F.hardswish(x)
            return x

        def forward(self, x):
            cv, acts = self.convs, self.acts
            x = self._act(cv[0](x), acts[0])
            for i, res in enumerate(self.residual):
                j = 1 + 3 * i
                h = self._act(cv[j](x), acts[j])
                h = self._act(cv[j + 1](h), acts[j + 1])
                y = cv[j + 2](h)
                x = y + x if res else y
            x = self._act(cv[-1](x), acts[-1])
            return self.fc(x.mean((2, 3)))

    m = Plain().eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def export_onnx(model, x, path):
    """Exports with a dynamic batch; the legacy (TorchScript) exporter when this torch still has
    it, else the dynamo one (needs onnxscript). Returns the exporter's name."""
    import torch

    errors = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (x,), path, dynamo=False, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}}, opset_version=17,
                              do_constant_folding=True)
            return "torchscript"
        except Exception as e:  # noqa: BLE001 (the legacy exporter is gone or failed)
            errors.append(f"dynamo=False: {e}")
        try:
            batch = torch.export.Dim("n", min=1, max=4096)
            prog = torch.onnx.export(model, (x,), dynamo=True, input_names=["input"], output_names=["logits"],
                                     dynamic_shapes=({0: batch},), opset_version=18)
            prog.save(path)
            return "dynamo"
        except Exception as e:  # noqa: BLE001
            errors.append(f"dynamo=True: {e}")
    fail(f"cannot export {path} to ONNX: " + " | ".join(errors)
         + " (install onnx and onnxscript into the venv: pip install onnx onnxscript)")


# ---------------------------------------------------------------------------------------------
# timing


def scaled_count(count, b, floor):
    """bench.rs's scaled_count: count*6/b, between min(floor, count) and count."""
    return max(min(floor, count), min(count, count * 6 // max(1, b)))


def time_calls(call, warm, iters):
    ts, y = [], None
    for i in range(warm + iters):
        t0 = time.perf_counter()
        y = call()
        dt = (time.perf_counter() - t0) * 1e3
        if i >= warm:
            ts.append(dt)
    return ts, y


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("index", help="inputs.json written by `tierforge bench infer --bundle B --dump-inputs DIR`")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--impl", default=",".join(IMPLS), help="comma-separated: " + ", ".join(IMPLS))
    p.add_argument("--batch", default=None, help="comma-separated batch sizes (default: the index's)")
    p.add_argument("--iters", type=int, default=None, help="timed calls at batch 1 (default: the index's)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls at batch 1 (default: the index's)")
    p.add_argument("--variants", default=None, help="comma-separated variant ids (default: all in the index)")
    p.add_argument("--onnx-dir", default=None, help="where the exported .onnx files go (default: beside the index)")
    p.add_argument("--ort-spin", choices=["0", "1"], default=None,
                   help="ORT intra-op spinning (default: off when OMP_WAIT_POLICY=PASSIVE, else ORT's default)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    impls = [s for s in args.impl.split(",") if s]
    for s in impls:
        if s not in IMPLS:
            fail(f"unknown --impl {s}; choose from {', '.join(IMPLS)}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    threads = torch.get_num_threads()
    ort = None
    if "onnxruntime" in impls:
        try:
            import onnxruntime as ort  # noqa: F811
        except ImportError:
            fail("onnxruntime is not installed in this Python; run scripts/bench_vs_peers.sh (it installs it) "
                 "or pip install onnxruntime onnx onnxscript")

    try:
        index = json.load(open(args.index))
    except (OSError, ValueError) as e:
        fail(f"{args.index}: {e}; write it with `tierforge bench infer --bundle BUNDLE --dump-inputs DIR --dry-run`")
    if index.get("format") != "tierforge-bench-inputs-v1":
        fail(f"{args.index}: not a tierforge-bench-inputs-v1 index (format {index.get('format')!r})")
    here = os.path.dirname(os.path.abspath(args.index))
    space = index["search_space"]
    batches = [int(b) for b in args.batch.split(",")] if args.batch else index["batches"]
    iters = args.iters if args.iters is not None else index["iters"]
    warmup = args.warmup if args.warmup is not None else index["warmup"]
    if max(batches) > index["n"] or min(batches) < 1:
        fail(f"batches {batches} need 1..{index['n']} images; the index holds {index['n']} "
             "(dump again with a larger --batch)")
    want = set(args.variants.split(",")) if args.variants else None
    onnx_dir = args.onnx_dir or os.path.join(here, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    spin = args.ort_spin
    if spin is None and os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        spin = "0"

    versions = {"torch": torch.__version__, "numpy": np.__version__}
    if ort is not None:
        versions["onnxruntime"] = ort.__version__
    for v in index["variants"]:
        if want is not None and v["id"] not in want:
            continue
        path = os.path.join(index["bundle"], v["file"])
        raw = open(path, "rb").read() if os.path.exists(path) else None
        if raw is None:
            fail(f"{path}: missing (the bundle moved since `--dump-inputs`? dump again)")
        if v.get("sha256") and hashlib.sha256(raw).hexdigest() != v["sha256"]:
            fail(f"{path}: sha256 differs from the manifest's; the bundle changed since `--dump-inputs`, dump again")
        x_all = np.load(os.path.join(here, v["input"]))
        ref = np.load(os.path.join(here, v["logits"]))
        model = build_torch(path, space, v["arch"])

        runs = []  # (impl, engine, call(b) -> (fn, x))
        if "pytorch" in impls:
            def mk_pt(b, model=model):
                x = np.ascontiguousarray(x_all[:b])

                def call():
                    with torch.inference_mode():
                        return model(torch.from_numpy(x)).numpy()
                return call
            runs.append(("pytorch", "torch", mk_pt))
        if "pytorch-cl" in impls:
            import copy
            model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)

            def mk_cl(b, model=model_cl):
                x = np.ascontiguousarray(x_all[:b])

                def call():
                    with torch.inference_mode():
                        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
                        return model(t).numpy()
                return call
            runs.append(("pytorch-cl", "torch", mk_cl))
        exporter = None
        if "onnxruntime" in impls:
            op = os.path.join(onnx_dir, v["logits"].replace("logits-", "").replace(".npy", ".onnx"))
            if not os.path.exists(op) or os.path.getmtime(op) < os.path.getmtime(path):
                exporter = export_onnx(model, torch.from_numpy(np.ascontiguousarray(x_all[:1])), op)
                open(op + ".exporter", "w").write(exporter)
            else:
                exporter = open(op + ".exporter").read().strip() if os.path.exists(op + ".exporter") else "cached"
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            if spin is not None:
                so.add_session_config_entry("session.intra_op.allow_spinning", spin)
            sess = ort.InferenceSession(op, so, providers=["CPUExecutionProvider"])
            in_name = sess.get_inputs()[0].name

            def mk_ort(b, sess=sess, in_name=in_name):
                x = np.ascontiguousarray(x_all[:b])

                def call():
                    return sess.run(None, {in_name: x})[0]
                return call
            runs.append(("onnxruntime", "onnxruntime", mk_ort))

        classes = ref.shape[1]
        for impl, engine, mk in runs:
            for b in batches:
                w, it = scaled_count(warmup, b, 2), scaled_count(iters, b, 5)
                ts, y = time_calls(mk(b), w, it)
                y = np.asarray(y, dtype=np.float32).reshape(b, classes)
                diff = float(np.abs(y - ref[:b]).max())
                med = statistics.median(ts)
                res = {
                    "impl": impl, "engine": engine, "bundle_id": index.get("bundle_id"), "variant": v["id"],
                    "dtype": v.get("dtype"), "resolution": v["resolution"], "macs": v.get("macs"), "batch": b,
                    "threads": threads, "warmup": w, "iters": it, "median_ms": med, "min_ms": min(ts),
                    "img_per_s": b / (med / 1e3), "input": index.get("input"),
                    "logits_checksum": float(y.astype(np.float64).sum()), "logits_head": y[0].tolist(),
                    "max_abs_diff_vs_tierforge": diff, **versions,
                }
                if impl == "onnxruntime":
                    res["exporter"] = exporter
                    res["ort_spinning"] = {"0": False, "1": True}.get(spin, "default")
                if args.json:
                    print(json.dumps(res), flush=True)
                else:
                    print(f"{impl:<12} {v['id']:<16} {str(v.get('dtype')):>5} r{v['resolution']:<3} batch {b:>3}, "
                          f"{threads} thread(s): median {med:8.3f} ms ({res['img_per_s']:8.0f} img/s), "
                          f"min {res['min_ms']:.3f} ms, |Δ tierforge| {diff:.1e}", flush=True)
                if not diff <= 1e-3 * (1.0 + float(np.abs(ref).max())):
                    print(f"warning: {impl} differs from tierforge on {v['id']} batch {b} by {diff:.3e}",
                          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
