#!/usr/bin/env python3
"""torch_resnet29.py - the face embedding network (dlib's ResNet-29 as
face-api ships it) in PyTorch, with OUR weights, for benchmarking against
facenet's own engine.

The weights come from a facenet model file (models/dlib_resnet29.safetensors)
read with a few lines of json + struct + numpy (no safetensors package). The
network follows src/nets/resnet29.c exactly: TF padding (VALID is padding 0;
SAME on a 3x3 stride-1 conv is padding 1), the scale layer after every conv,
and dlib's zero-padded shortcut (extra channels, and the main path zero-
extended at the bottom/right where it comes out one pixel smaller). The
per-channel scale is folded into the conv weights and bias, as facenet's
oneDNN backend does, so that PyTorch gets the same head start.

What is timed is what PyTorch does best on a CPU here: the model traced with
TorchScript and frozen (torch.jit.freeze), in channels_last memory format
("frozen_cl"), in the default NCHW format ("frozen"), and channels_last run
through torch.jit.optimize_for_inference ("ofi"); a comparison should take
the best of the three.

    python3 tools/bench/torch_resnet29.py --model models/dlib_resnet29.safetensors
        times batch 1 and 16 on 1 and 2 threads, prints one JSON object
    ... --check-chip chip.rgb --check-ref ours.f32
        first compares PyTorch's raw output on a 150x150 RGB chip (raw bytes)
        with facenet's (128 little-endian float32)
    ... --serve
        for `facenet bench embed`: prints {"ready": ...} and then answers one
        JSON request per input line, {"threads": T, "batch": B, "seconds": S},
        with {"threads": T, "batch": B, "ms_per_face": {"frozen_cl": .., "frozen": .., "ofi": ..}}

Needs python3-torch and python3-numpy (Debian packages).
"""
import argparse
import json
import struct
import sys
import time

import numpy as np

MEAN_RGB = (122.782, 117.001, 104.298)

BLOCKS = [  # name, cin, cout, down
    ("conv32_1", 32, 32, 0), ("conv32_2", 32, 32, 0), ("conv32_3", 32, 32, 0),
    ("conv64_down", 32, 64, 1), ("conv64_1", 64, 64, 0), ("conv64_2", 64, 64, 0), ("conv64_3", 64, 64, 0),
    ("conv128_down", 64, 128, 1), ("conv128_1", 128, 128, 0), ("conv128_2", 128, 128, 0),
    ("conv256_down", 128, 256, 1), ("conv256_1", 256, 256, 0), ("conv256_2", 256, 256, 0),
    ("conv256_down_out", 256, 256, 1),
]


def read_safetensors(path):
    """name -> float32 numpy array, from a safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    if n > len(blob) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if end - begin != 4 * count or base + end > len(blob):
            raise ValueError(f"{path}: {name} has a bad extent")
        tensors[name] = np.frombuffer(blob, dtype="<f4", count=count, offset=base + begin).reshape(info["shape"])
    return tensors


def build(weights):
    import torch
    import torch.nn.functional as F

    def conv(prefix, stride, padding):
        w = weights[prefix + "/conv/filters"]          # [kh][kw][cin][cout]
        b = weights[prefix + "/conv/bias"]
        s = weights[prefix + "/scale/weights"]
        t = weights[prefix + "/scale/biases"]
        cout, cin, k = w.shape[3], w.shape[2], w.shape[0]
        m = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=True)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray((w * s).transpose(3, 2, 0, 1))))
            m.bias.copy_(torch.from_numpy(b * s + t))
        return m

    class Block(torch.nn.Module):
        def __init__(self, name, cin, cout, down, size):
            super().__init__()
            self.down = down
            self.extra = cout - cin
            # A down block's main path (3x3/2 VALID) can come out one pixel
            # smaller than its shortcut (2x2/2 pool): known from the size.
            self.grow = size // 2 - ((size - 3) // 2 + 1) if down else 0
            self.c1 = conv(name + "/conv1", 2 if down else 1, 0 if down else 1)
            self.c2 = conv(name + "/conv2", 1, 1)

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
            self.stem = conv("conv32_down", 2, 0)
            blocks, size = [], 35  # 150 -> stem 72 -> max pool 35
            for b in BLOCKS:
                blocks.append(Block(*b, size))
                size = size // 2 if b[3] else size
            self.blocks = torch.nn.Sequential(*blocks)
            self.fc = torch.nn.Linear(256, 128, bias=False)
            with torch.no_grad():
                self.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["fc"].T)))

        def forward(self, x):  # x: [n, 3, 150, 150]
            x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
            x = self.blocks(x)
            return self.fc(x.mean((2, 3)))

    return ResNet29().eval()


def chip_input(rgb):
    """A 150x150x3 uint8 chip as the network's [1, 3, 150, 150] input."""
    x = (rgb.astype(np.float32) - np.array(MEAN_RGB, dtype=np.float32)) / np.float32(255.0)
    return x.transpose(2, 0, 1)[None].copy()


def variants(model):
    """The TorchScript forms to time: name -> (module, input memory format).

    frozen_cl: traced, frozen, channels_last (what PyTorch recommends for CNNs
    on CPUs); frozen: the same in the default NCHW format; ofi: frozen_cl
    through torch.jit.optimize_for_inference (MKLDNN layouts and fusions)."""
    import copy
    import torch
    cl, nchw = torch.channels_last, torch.contiguous_format
    out = {}
    with torch.no_grad():
        for name, fmt in (("frozen_cl", cl), ("frozen", nchw)):
            m = copy.deepcopy(model).to(memory_format=fmt)
            ex = torch.zeros(1, 3, 150, 150).contiguous(memory_format=fmt)
            out[name] = (torch.jit.freeze(torch.jit.trace(m, ex)), fmt)
        try:
            m = copy.deepcopy(model).to(memory_format=cl)
            ex = torch.zeros(1, 3, 150, 150).contiguous(memory_format=cl)
            out["ofi"] = (torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, ex))), cl)
        except Exception as e:  # older/odd builds: time what works
            print(f"torch_resnet29: optimize_for_inference failed: {e}", file=sys.stderr)
    return out


def time_one(module, fmt, batch, seconds):
    """Median ms per face over repeated runs of at least `seconds` (3 at least)."""
    import torch
    x = torch.randn(batch, 3, 150, 150).contiguous(memory_format=fmt)
    times = []
    with torch.no_grad():
        # TorchScript's profiling executor specializes the graph during the
        # first runs: give it a few, and a tenth of the time.
        t_end = time.perf_counter() + seconds * 0.1
        for i in range(100):
            module(x)
            if i >= 3 and time.perf_counter() > t_end:
                break
        t_end = time.perf_counter() + seconds
        while len(times) < 3 or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - t0) * 1e3 / batch)
    times.sort()
    return times[len(times) // 2], len(times)


def check(model, chip_path, ref_path):
    import torch
    rgb = np.fromfile(chip_path, dtype=np.uint8)
    ref = np.fromfile(ref_path, dtype="<f4")
    if rgb.size != 150 * 150 * 3 or ref.size != 128:
        raise ValueError("check files must hold 150x150x3 bytes and 128 float32")
    with torch.no_grad():
        y = model(torch.from_numpy(chip_input(rgb.reshape(150, 150, 3)))).numpy()[0]
    d = y.astype(np.float64) - ref
    return {"max_abs_diff": float(np.abs(d).max()), "nse": float((d * d).sum() / (ref.astype(np.float64) ** 2).sum())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--check-chip")
    ap.add_argument("--check-ref")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    import torch
    torch.set_grad_enabled(False)
    model = build(read_safetensors(args.model))
    info = {"torch": torch.__version__}
    if args.check_chip and args.check_ref:
        info["check"] = check(model, args.check_chip, args.check_ref)
    forms = variants(model)
    info["variants"] = sorted(forms)
    if args.serve:
        print(json.dumps(dict(info, ready=True)), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            if req.get("quit"):
                break
            torch.set_num_threads(int(req["threads"]))
            res = {"threads": req["threads"], "batch": req["batch"], "ms_per_face": {}}
            for name, (mod, fmt) in forms.items():
                res["ms_per_face"][name] = time_one(mod, fmt, int(req["batch"]), float(req["seconds"]) / len(forms))[0]
            print(json.dumps(res), flush=True)
        return
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 16):
            for name, (mod, fmt) in forms.items():
                ms, n = time_one(mod, fmt, batch, args.seconds)
                runs.append({"variant": name, "threads": threads, "batch": batch, "ms_per_face": round(ms, 3),
                             "runs": n})
    print(json.dumps(dict(info, runs=runs), indent=1))


if __name__ == "__main__":
    main()
