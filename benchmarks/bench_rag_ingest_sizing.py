"""Ingest sizing: time and peak memory to load + chunk a document, and the memory its vectors hold.

Sizes the ``rag_ingest`` function (memory, timeout, SQS batch) from measured figures
(docs/benchmarks.md, "RAG ingest sizing"). Each document size runs in a fresh interpreter so
its peak RSS is its own. Printed beside a baseline measured in the same run: the same process
only reading and decoding the bytes (what holding the document costs at minimum). Vectors:
bytes held per chunk vector as the pipeline keeps them (float32 arrays) vs Python float lists.

Run: ``python benchmarks/bench_rag_ingest_sizing.py [--quick]`` (quick: 1 and 4 MB; full: 1, 10, 50 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, random, resource, sys, time
sys.path.insert(0, sys.argv[3])
mb, mode = float(sys.argv[1]), sys.argv[2]
words = ("refund invoice warranty shipping laptop policy customer contract renewal payment battery screen "
         "support ticket onboarding badge access network printer holiday expense travel approval budget").split()
rng = random.Random(1)
paragraphs, size = [], 0
while size < mb * 1024 * 1024:
    p = " ".join(rng.choice(words) for _ in range(60)) + "."
    paragraphs.append(p)
    size += len(p) + 2
data = "\n\n".join(paragraphs).encode()
del paragraphs
if mode == "chunk":
    from lambdas.runtime.rag.chunking import TokenChunker
    from lambdas.runtime.rag.loaders import SourceRef, load_document
    chunker = TokenChunker()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if mode == "chunk":
    chunks = len(chunker.split("d", load_document("a.txt", data, max_bytes=len(data) + 1), SourceRef("b", "a.txt", "v")))
else:
    chunks = len(data.decode("utf-8").split("\n\n"))
seconds = time.perf_counter() - started
print(json.dumps({"mb": mb, "chunks": chunks, "seconds": seconds,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "before_mb": before / 1024}))
"""


def measure(mb: float, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(mb), mode, str(REPO)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def vector_bytes(dimension: int) -> tuple[int, int]:
    compact = array("f", [0.5] * dimension)
    as_list = [0.5 + i for i in range(dimension)]  # distinct floats, as a model returns them
    return compact.itemsize * len(compact) + 64, sys.getsizeof(as_list) + sum(sys.getsizeof(x) for x in as_list)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    sizes = (1, 4) if parser.parse_args().quick else (1, 10, 50)
    print("RAG ingest sizing: load + chunk (200-token chunks, 40 overlap) | baseline: read + decode only")
    for mb in sizes:
        chunked, baseline = measure(mb, "chunk"), measure(mb, "read")
        print(f"  {mb:>3} MB text: {chunked['chunks']:>6} chunks, {chunked['seconds']:6.1f} s "
              f"({chunked['seconds'] / mb:4.2f} s/MB), peak RSS {chunked['peak_mb']:6.0f} MB | "
              f"baseline {baseline['seconds']:5.2f} s, peak RSS {baseline['peak_mb']:6.0f} MB")
    for dimension in (384, 1024):
        compact, as_list = vector_bytes(dimension)
        print(f"  vector of {dimension:>4} dims held as float32 array: {compact:>6} B | as a Python list: {as_list:>6} B "
              f"| ratio {as_list / compact:4.1f}x smaller")


if __name__ == "__main__":
    main()
