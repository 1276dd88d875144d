#!/usr/bin/env python3
"""Print the pairwise distance matrix of `facenet embed` output (JSON lines).

usage: distance_matrix.py EMBEDDINGS.jsonl [THRESHOLD]
Standard library only.
"""
import json
import math
import os
import sys


def main(path, threshold):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    names = ["%s/%d" % (os.path.splitext(os.path.basename(r["file"]))[0], r.get("face", 0)) for r in rows]
    embs = [r["embedding"] for r in rows]
    print("%d faces; Euclidean distance between unit embeddings (0 = identical, 2 = opposite)\n" % len(rows))
    print(" " * 14 + " ".join("%5d" % i for i in range(len(rows))))
    for i, a in enumerate(embs):
        print("%2d %-10s " % (i, names[i]) + " ".join("%5.2f" % math.dist(a, b) for b in embs))
    pairs = sorted((math.dist(embs[i], embs[j]), names[i], names[j])
                   for i in range(len(embs)) for j in range(i + 1, len(embs)))
    print("\nclosest pairs%s:" % (" (threshold %.3f)" % threshold if threshold else ""))
    for d, a, b in pairs[:5]:
        verdict = "" if not threshold else ("  same person" if d < threshold else "  different")
        print("  %.3f  %s  %s%s" % (d, a, b, verdict))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) == 3 else None)
