#!/usr/bin/env python3
"""torch_train_step.py - one training step of the face embedding network
(dlib's ResNet-29 as facenet trains it) in PyTorch, timed, for comparison
with facenet's own training step (facenet_train_bench), which `facenet
bench train` runs in the same run as this script.

The network is the one src/train/net.c builds for "resnet29": every
convolution without bias, then batch norm (batch statistics, as in
training), then ReLU where the inference network has one; TF padding (VALID
is padding 0, SAME on a 3x3 stride-1 conv is padding 1); dlib's shortcut of
a down block, a 2x2 average pool with zero channels appended, and the main
path zero-extended at the bottom/right where it comes out one pixel
smaller; global mean, fc 256 -> 128 without bias. Weights are random (He
normal), or taken from a facenet model file (--model: its conv filters and
fc; batch norm starts at gamma 1, beta 0).

A step is what fn_train_bench does: forward on a batch of random chips,
the triplet loss with the hardest negative of each anchor-positive pair
(labels i // 3: 16 identities of 3 at batch 48, alpha 0.2, on L2-normalized
embeddings), backward, and an SGD step with momentum 0.9. Timed in eager
mode (autograd does not run through TorchScript's frozen modules), in the
default NCHW memory format and in channels_last; a comparison takes the
faster.

    /usr/bin/python3 tools/bench/torch_train_step.py [--batch 48] [--threads 2] [--seconds 20]
        prints one JSON object: ms per step (median and min) per memory format

Needs python3-torch and python3-numpy (Debian packages).
"""
import argparse
import json
import sys
import time

BLOCKS = [  # name, cin, cout, down: src/nets/resnet29.c
    ("conv32_1", 32, 32, 0), ("conv32_2", 32, 32, 0), ("conv32_3", 32, 32, 0),
    ("conv64_down", 32, 64, 1), ("conv64_1", 64, 64, 0), ("conv64_2", 64, 64, 0), ("conv64_3", 64, 64, 0),
    ("conv128_down", 64, 128, 1), ("conv128_1", 128, 128, 0), ("conv128_2", 128, 128, 0),
    ("conv256_down", 128, 256, 1), ("conv256_1", 256, 256, 0), ("conv256_2", 256, 256, 0),
    ("conv256_down_out", 256, 256, 1),
]


def build(weights=None):
    import numpy as np
    import torch
    import torch.nn.functional as F

    def conv(prefix, cin, cout, k, stride, padding):
        m = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
        with torch.no_grad():
            if weights is not None:
                w = weights[prefix + "/conv/filters"]  # [kh][kw][cin][cout]
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
            else:
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        return torch.nn.Sequential(m, torch.nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))

    class Block(torch.nn.Module):
        def __init__(self, name, cin, cout, down, size):
            super().__init__()
            self.down = down
            self.extra = cout - cin
            self.grow = size // 2 - ((size - 3) // 2 + 1) if down else 0
            self.c1 = conv(name + "/conv1", cin, cout, 3, 2 if down else 1, 0 if down else 1)
            self.c2 = conv(name + "/conv2", cout, cout, 3, 1, 1)

        def forward(self, x):
            m = self.c2(F.relu(self.c1(x)))
            if not self.down:
                return F.relu(m + x)
            p = F.avg_pool2d(x, 2, 2)
            if self.extra:
                p = F.pad(p, (0, 0, 0, 0, 0, self.extra))
            if self.grow:
                m = F.pad(m, (0, self.grow, 0, self.grow))
            return F.relu(p + m)

    class ResNet29(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv("conv32_down", 3, 32, 7, 2, 0)
            blocks, size = [], 35  # 150 -> stem 72 -> max pool 35
            for b in BLOCKS:
                blocks.append(Block(*b, size))
                size = size // 2 if b[3] else size
            self.blocks = torch.nn.Sequential(*blocks)
            self.fc = torch.nn.Linear(256, 128, bias=False)
            if weights is not None:
                with torch.no_grad():
                    self.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["fc"].T)))

        def forward(self, x):  # x: [n, 3, 150, 150]
            x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
            x = self.blocks(x)
            return self.fc(x.mean((2, 3)))

    return ResNet29().train()


def triplet_hardest(emb, labels, alpha=0.2):
    """Mean over anchor-positive pairs of max(0, d(a,p) - min_n d(a,n) + alpha),
    squared distances between unit embeddings (train/triplet.c, hardest)."""
    import torch
    import torch.nn.functional as F
    y = F.normalize(emb, dim=1)
    d = (y.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos = same & ~eye
    neg_min = d.masked_fill(same, float("inf")).min(dim=1).values
    loss = F.relu(d - neg_min.unsqueeze(1) + alpha)[pos]
    return loss.mean()


def time_steps(model, fmt, batch, seconds):
    import torch
    torch.manual_seed(2)
    x = (0.25 * torch.randn(batch, 3, 150, 150)).contiguous(memory_format=fmt)
    labels = torch.arange(batch) // 3
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = triplet_hardest(model(x), labels)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up: oneDNN primitives are made, memory grown
        step()
    times, t_end = [], time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"ms_per_step": round(times[len(times) // 2], 1), "ms_min": round(times[0], 1), "steps": len(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a facenet model file to take the conv and fc weights from")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--formats", default="channels_last,nchw")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    weights = None
    if args.model:
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        from torch_resnet29 import read_safetensors
        weights = read_safetensors(args.model)
    out = {"engine": "pytorch", "torch": torch.__version__, "batch": args.batch, "threads": args.threads,
           "formats": {}}
    for name in args.formats.split(","):
        fmt = torch.channels_last if name == "channels_last" else torch.contiguous_format
        torch.manual_seed(1)
        out["formats"][name] = time_steps(build(weights), fmt, args.batch, args.seconds / 2)
    out["ms_per_step"] = min(v["ms_per_step"] for v in out["formats"].values())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
