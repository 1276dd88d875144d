#!/usr/bin/env python3
"""Helpers for scripts/demo.sh (standard library only).

demo_chips.py PHOTO_DIR GOLDEN.json OUT_DIR
    decode each demo photo with djpeg and write one PPM chip per face at the
    face rectangle recorded in the golden file.
demo_chips.py --distances EMBEDDINGS.jsonl
    print the pairwise distance matrix of `facenet embed` output.
"""
import json
import math
import os
import subprocess
import sys


def read_ppm(data):
    parts, pos = [], 0
    while len(parts) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    return int(parts[1]), int(parts[2]), data[pos + 1:]


def chips(photo_dir, golden, out_dir):
    with open(golden) as f:
        g = json.load(f)
    for photo in g["photos"]:
        ppm = subprocess.run(["djpeg", "-ppm", os.path.join(photo_dir, photo["file"])],
                             check=True, stdout=subprocess.PIPE).stdout
        w, _, px = read_ppm(ppm)
        stem = os.path.splitext(photo["file"])[0]
        for i, face in enumerate(photo["ssd"]):
            r = face["descriptor_rect"]
            rows = [px[((r["y"] + j) * w + r["x"]) * 3:((r["y"] + j) * w + r["x"] + r["w"]) * 3]
                    for j in range(r["h"])]
            with open(os.path.join(out_dir, f"{stem}_face{i}.ppm"), "wb") as f:
                f.write(b"P6\n%d %d\n255\n" % (r["w"], r["h"]) + b"".join(rows))


def distances(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    names = [os.path.splitext(os.path.basename(r["file"]))[0] for r in rows]
    embs = [r["embedding"] for r in rows]
    print("%d faces from face-api's demo photos; Euclidean distance of unit embeddings" % len(rows))
    print("(0 = identical, 2 = opposite. face-api's 0.6 threshold on its raw vectors, norm ~1.45,")
    print(" is about 0.42 here; the LFW evaluation derives the threshold properly.)\n")
    print(" " * 15 + " ".join("%5d" % i for i in range(len(rows))))
    for i, a in enumerate(embs):
        d = [math.dist(a, b) for b in embs]
        print("%2d %-12s" % (i, names[i]) + " ".join("%5.2f" % x for x in d))
    pairs = sorted((math.dist(embs[i], embs[j]), names[i], names[j])
                   for i in range(len(embs)) for j in range(i + 1, len(embs)))
    print("\nclosest pairs:")
    for d, a, b in pairs[:5]:
        print("  %.3f  %s  %s" % (d, a, b))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--distances":
        distances(sys.argv[2])
    elif len(sys.argv) == 4:
        chips(*sys.argv[1:])
    else:
        sys.exit(__doc__)
