#!/usr/bin/env python3
"""The tierforge supernet in PyTorch (CPU), for timing beside `tierforge bench`.

Reads the benchmark definition that `tierforge bench train-step --archs-out FILE` writes (the
search space, batch size, loss and optimizer settings, and every step's sub-nets in order) and
runs the same training steps:

  sandwich:    largest (label-smoothed CE) + smallest + random sub-nets distilled from the
               largest's detached softmax; one backward; SGD (Nesterov) step.
  progressive: the expand phase of progressive shrinking: each sampled sub-net gets
               CE + distillation from a frozen copy of the full network (run at the sub-net's
               resolution, batch statistics); one backward; SGD (Nesterov) step.

The network mirrors supernet/src/{net,block,elastic/*}.rs: max-size weights sliced per sub-net;
elastic MBConv blocks (1x1 expand -> kxk depthwise with OFA kernel transform matrices -> 1x1
project, BN after each, ReLU or h-swish after the first two, residual when stride 1 and
in == out); stem 3x3 conv + BN + ReLU; head 1x1 conv + BN + h-swish; global average pool;
linear. BN uses batch statistics in training (F.batch_norm, or op by op with --manual-bn as the
Rust code does it). Resolution changes by bilinear resize of the batch (align_corners=False).

Usage:
  python torch_supernet.py train-step SPEC.json [--threads N] [--channels-last] [--manual-bn] [--json]
  python torch_supernet.py infer SPACE_OR_SPEC.json [--threads N] [--iters 200] [--channels-last] [--json]
"""

import argparse
import copy
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MANUAL_BN = False


def act(x, hswish):
    return F.hardswish(x) if hswish else F.relu(x)


class ElasticBN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.eps = 1e-5

    def forward(self, x, train):
        c = x.shape[1]
        g, b = self.weight[:c], self.bias[:c]
        if not train:
            return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], g, b, False, 0.0, self.eps)
        if MANUAL_BN:
            # the Rust implementation's op sequence
            mean = x.mean(dim=(0, 2, 3), keepdim=True)
            var = (x - mean).pow(2).mean(dim=(0, 2, 3), keepdim=True)
            scale = g / (var.reshape(c) + self.eps).sqrt()
            shift = b - mean.reshape(c) * scale
            return x * scale.reshape(1, c, 1, 1) + shift.reshape(1, c, 1, 1)
        return F.batch_norm(x, None, None, g, b, True, 0.0, self.eps)


class ElasticConv(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        std = math.sqrt(2.0 / (cout * k * k))
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) * std)
        self.k, self.stride = k, stride

    def forward(self, x, cout):
        w = self.weight
        if w.shape[0] != cout or w.shape[1] != x.shape[1]:
            w = w[:cout, : x.shape[1]]
        return F.conv2d(x, w, None, self.stride, self.k // 2)


class ElasticDW(nn.Module):
    def __init__(self, c, kernel_sizes, stride):
        super().__init__()
        kmax = kernel_sizes[-1]
        std = math.sqrt(2.0 / (kmax * kmax))
        self.weight = nn.Parameter(torch.randn(c, 1, kmax, kmax) * std)
        # OFA kernel transform matrices, identity at init; no weight decay on them.
        self.transforms = nn.ParameterList([nn.Parameter(torch.eye(k * k)) for k in kernel_sizes[:-1]])
        self.kernel_sizes = list(kernel_sizes)
        self.stride = stride

    def active_weight(self, c, k):
        w = self.weight
        if c != w.shape[0]:
            w = w[:c]
        cur = self.kernel_sizes[-1]
        for i in reversed(range(len(self.transforms))):
            ks = self.kernel_sizes[i]
            if ks < k:
                break
            off = (cur - ks) // 2
            w = w[:, :, off : off + ks, off : off + ks]
            w = (w.reshape(c, ks * ks) @ self.transforms[i]).reshape(c, 1, ks, ks)
            cur = ks
        assert cur == k, f"kernel {k} not elastic here: {self.kernel_sizes}"
        return w

    def forward(self, x, k):
        c = x.shape[1]
        return F.conv2d(x, self.active_weight(c, k), None, self.stride, k // 2, 1, c)


class MbBlock(nn.Module):
    def __init__(self, cin, cout, stride, max_expand, kernel_sizes, hswish):
        super().__init__()
        hid = cin * max_expand
        self.expand = ElasticConv(cin, hid, 1, 1)
        self.expand_bn = ElasticBN(hid)
        self.dw = ElasticDW(hid, kernel_sizes, stride)
        self.dw_bn = ElasticBN(hid)
        self.project = ElasticConv(hid, cout, 1, 1)
        self.project_bn = ElasticBN(cout)
        self.cin, self.cout, self.stride, self.hswish = cin, cout, stride, hswish

    def forward(self, x, k, e, train):
        h = act(self.expand_bn(self.expand(x, self.cin * e), train), self.hswish)
        h = act(self.dw_bn(self.dw(h, k), train), self.hswish)
        y = self.project_bn(self.project(h, self.cout), train)
        return y + x if self.stride == 1 and self.cin == self.cout else y


class Supernet(nn.Module):
    def __init__(self, sp):
        super().__init__()
        self.sp = sp
        self.stem = ElasticConv(sp["in_channels"], sp["stem_channels"], 3, sp["stem_stride"])
        self.stem_bn = ElasticBN(sp["stem_channels"])
        stages = []
        maxd, maxe = sp["depths"][-1], sp["expand_ratios"][-1]
        for s, st in enumerate(sp["stages"]):
            cin0 = sp["stem_channels"] if s == 0 else sp["stages"][s - 1]["width"]
            blocks = [
                MbBlock(cin0 if b == 0 else st["width"], st["width"], st["stride"] if b == 0 else 1,
                        maxe, sp["kernel_sizes"], st["act"] == "hswish")
                for b in range(maxd)
            ]
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        last = sp["stages"][-1]["width"]
        self.head = ElasticConv(last, sp["head_channels"], 1, 1)
        self.head_bn = ElasticBN(sp["head_channels"])
        self.fc = nn.Linear(sp["head_channels"], sp["num_classes"])
        with torch.no_grad():
            self.fc.weight.normal_(0.0, 0.01)
            self.fc.bias.zero_()

    def forward(self, x, arch, train=True):
        sp = self.sp
        x = F.relu(self.stem_bn(self.stem(x, sp["stem_channels"]), train))
        for s, blocks in enumerate(self.stages):
            for b in range(arch["depths"][s]):
                x = blocks[b](x, arch["kernel_sizes"][s][b], arch["expand_ratios"][s][b], train)
        x = F.hardswish(self.head_bn(self.head(x, sp["head_channels"]), train))
        return self.fc(x.mean((2, 3)))


def max_arch(sp):
    d, k, e = sp["depths"][-1], sp["kernel_sizes"][-1], sp["expand_ratios"][-1]
    n = len(sp["stages"])
    return {"resolution": sp["resolutions"][-1], "depths": [d] * n,
            "kernel_sizes": [[k] * d for _ in range(n)], "expand_ratios": [[e] * d for _ in range(n)]}


def param_groups(model):
    """Weight decay on >= 2-D tensors except the kernel transforms (as supernet::train::optim)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "transforms" not in name else no_decay).append(p)
    return decay, no_decay


def median(v):
    return statistics.median(v) if v else float("nan")


def train_step(args):
    spec = json.load(open(args.spec))
    sp = spec["space"]
    n, c, size = spec["batch"], sp["in_channels"], sp["image_size"]
    torch.manual_seed(spec["seed"])
    mf = torch.channels_last if args.channels_last else torch.contiguous_format
    model = Supernet(sp).to(memory_format=mf)
    decay, no_decay = param_groups(model)
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": spec["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec["lr"], momentum=spec["momentum"], nesterov=spec["nesterov"])
    progressive = spec["method"] == "progressive"
    teacher = None
    if progressive:
        teacher = copy.deepcopy(model)
        for p in teacher.parameters():
            p.requires_grad_(False)
    mx = max_arch(sp)
    ls = spec["label_smoothing"]
    pad, hflip = spec["augment_pad"], spec["augment_hflip"]
    mean, std = 0.286, 0.353
    g = torch.Generator().manual_seed(spec["seed"])
    images = torch.randint(0, 256, (4 * n, c, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, sp["num_classes"], (4 * n,), generator=g)

    def fill(step):
        i0 = (step * n) % images.shape[0]
        idx = torch.arange(i0, i0 + n) % images.shape[0]
        x = (images[idx].float() * (1.0 / (255.0 * std)) - mean / std)
        y = labels[idx]
        if pad > 0 or hflip:
            xp = F.pad(x, (pad, pad, pad, pad), value=-mean / std)
            d = torch.randint(-pad, pad + 1, (n, 2), generator=g).tolist()
            f = torch.randint(0, 2, (n,), generator=g).tolist()
            out = torch.empty_like(x)
            for b in range(n):
                crop = xp[b, :, pad + d[b][0]: pad + d[b][0] + size, pad + d[b][1]: pad + d[b][1] + size]
                out[b] = crop.flip(-1) if hflip and f[b] else crop
            x = out
        return x, y

    def resized(x, r):
        if r != size:
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
        return x.contiguous(memory_format=mf)

    times, td, tf, tb, to, losses = [], [], [], [], [], []
    for step, archs in enumerate(spec["archs"]):
        t0 = time.perf_counter()
        data = 0.0
        a0 = time.perf_counter()
        xb, y = fill(step)
        data += time.perf_counter() - a0
        opt.zero_grad(set_to_none=True)
        if not progressive:
            a0 = time.perf_counter()
            x = resized(xb, archs[0]["resolution"])
            data += time.perf_counter() - a0
            logits = model(x, archs[0])
            soft = F.softmax(logits.detach(), 1)
            total = F.cross_entropy(logits, y, label_smoothing=ls)
            for a in archs[1:]:
                a0 = time.perf_counter()
                x = resized(xb, a["resolution"])
                data += time.perf_counter() - a0
                total = total - (F.log_softmax(model(x, a), 1) * soft).sum() / n
        else:
            total = None
            for a in archs:
                a0 = time.perf_counter()
                x = resized(xb, a["resolution"])
                data += time.perf_counter() - a0
                logits = model(x, a)
                l = F.cross_entropy(logits, y, label_smoothing=ls)
                with torch.no_grad():
                    ta = dict(mx, resolution=a["resolution"])
                    soft = F.softmax(teacher(x, ta), 1)
                l = l - (F.log_softmax(logits, 1) * soft).sum() / n
                total = l if total is None else total + l
        t1 = time.perf_counter()
        total.backward()
        lv = total.item()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        losses.append(lv)
        if step >= spec["warmup"]:
            times.append((t3 - t0) * 1e3)
            td.append(data * 1e3)
            tf.append((t1 - t0 - data) * 1e3)
            tb.append((t2 - t1) * 1e3)
            to.append((t3 - t2) * 1e3)
    m = median(times)
    res = {
        "side": "pytorch", "method": spec["method"], "space": sp["name"], "batch": n,
        "threads": torch.get_num_threads(), "warmup": spec["warmup"], "steps": len(times),
        "subnets_per_step": len(spec["archs"][0]), "channels_last": args.channels_last,
        "manual_bn": MANUAL_BN, "median_ms": m, "min_ms": min(times), "mean_ms": sum(times) / len(times),
        "img_per_s": n / (m / 1e3), "data_ms": median(td), "fwd_ms": median(tf), "bwd_ms": median(tb),
        "optim_ms": median(to), "loss_first": losses[0], "loss_last": losses[-1],
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {res['method']} step, space {res['space']}, batch {n}, {res['subnets_per_step']} sub-nets/step, "
              f"{res['threads']} thread(s){', channels-last' if args.channels_last else ''}: median {m:.1f} ms/step "
              f"({res['img_per_s']:.1f} img/s), min {res['min_ms']:.1f} ms [data {res['data_ms']:.1f} / fwd "
              f"{res['fwd_ms']:.1f} / bwd {res['bwd_ms']:.1f} / optim {res['optim_ms']:.1f} ms], "
              f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")


def infer(args):
    spec = json.load(open(args.spec))
    sp = spec.get("space", spec)
    torch.manual_seed(42)
    mf = torch.channels_last if args.channels_last else torch.contiguous_format
    model = Supernet(sp).to(memory_format=mf).eval()
    a = max_arch(sp)
    r, c = a["resolution"], sp["in_channels"]

    def t(b, warm, iters):
        x = (torch.rand(b, c, r, r) - 0.5).contiguous(memory_format=mf)
        ts = []
        with torch.inference_mode():
            for i in range(warm + iters):
                t0 = time.perf_counter()
                _ = model(x, a, train=False).numpy()
                if i >= warm:
                    ts.append((time.perf_counter() - t0) * 1e3)
        return median(ts)

    b1 = t(1, 20, max(1, args.iters))
    b64 = t(64, 3, max(5, args.iters // 10))
    res = {"side": "pytorch", "space": sp["name"], "threads": torch.get_num_threads(), "resolution": r,
           "channels_last": args.channels_last, "b1_median_ms": b1, "b64_median_ms": b64,
           "b64_img_per_s": 64 / (b64 / 1e3), "torch": torch.__version__}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"pytorch infer (largest sub-net, eval mode, {c}x{r}x{r}), space {sp['name']}, {res['threads']} thread(s): "
              f"batch 1 {b1:.3f} ms, batch 64 {b64:.2f} ms ({res['b64_img_per_s']:.0f} img/s)")


def main():
    global MANUAL_BN
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["train-step", "infer"])
    p.add_argument("spec", help="benchmark JSON from `tierforge bench train-step --archs-out` (or a space JSON for infer)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--manual-bn", action="store_true", help="batch norm op by op, as the Rust code does it")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    MANUAL_BN = args.manual_bn
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.what == "train-step":
        train_step(args)
    else:
        infer(args)


if __name__ == "__main__":
    sys.exit(main())
