"""The card's own peaks, measured with torch: device-to-device copy bandwidth and float16 matmul rate; and the
weight-read floor of a decode step.

  python3 scripts/gpu/device-peaks.py [MODEL_DIR]

Copy: a 4 GiB buffer 20 times after a warm-up, bytes read + written per second (the convention of
../shared/gpu/README.md: "a device-to-device copy moves ~3.0 TB/s (bytes read + written)"), the denominator of
`bench --copy-bandwidth`. Matmul: float16 products of square matrices of 4096, 8192 and 16384 (cuBLAS through torch,
float32 accumulation as torch does by default for float16), 2·n³ FLOPs each, the best of them: `bench --matmul-tflops`.
With MODEL_DIR, also the floor of one decode step: the package's bytes (every file; the weights are nearly all of it)
at the copy rate; and, where onnx imports, what cuBLAS alone takes for the step's weight products: every MatMul of
the graph whose weight is an initializer (each distinct shape timed once, times its count: a layer's weights are
hundreds of MB, far past the L2, so one copy stands for all), for 1 to 256 rows. Against the engine's step time at the
same rows, the difference is what attention, norms and the rest of the graph take. The last line is
`PEAKS copy_gbps=… matmul_tflops=…` for scripts."""
import os
import sys
from collections import Counter

import torch

NUM_BYTES = 4 << 30
REPEATS = 20


def timed(fn, repeats: int) -> float:
    """Milliseconds per call of fn, after a warm-up, by CUDA events."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def weight_products(model_dir: str) -> Counter:
    """(K, N) -> how many MatMuls of the decoder graph multiply by a K x N weight initializer."""
    import onnx  # only for this part: the GPU machine's Python has it

    graph = onnx.load(os.path.join(model_dir, "model.onnx"), load_external_data=False).graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    return Counter(shapes[n.input[1]] for n in graph.node if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2)


src = torch.empty(NUM_BYTES // 2, dtype=torch.float16, device="cuda")
dst = torch.empty_like(src)
ms = timed(lambda: dst.copy_(src), REPEATS)
rate = 2 * NUM_BYTES / (ms / 1e3)  # bytes read + written per second
print(f"{torch.cuda.get_device_name()}: device copy of {NUM_BYTES >> 30} GiB in {ms:.3f} ms: {rate / 1e12:.2f} TB/s read + written")
del src, dst

best = 0.0
for n in (4096, 8192, 16384):
    a = torch.randn(n, n, dtype=torch.float16, device="cuda")
    b = torch.randn(n, n, dtype=torch.float16, device="cuda")
    c = torch.empty(n, n, dtype=torch.float16, device="cuda")
    ms = timed(lambda: torch.matmul(a, b, out=c), 10 if n < 16384 else 5)
    tflops = 2 * n ** 3 / (ms / 1e3) / 1e12
    best = max(best, tflops)
    print(f"float16 matmul {n}x{n}x{n}: {ms:.3f} ms, {tflops:.1f} TFLOP/s")
    del a, b, c

if len(sys.argv) > 1:
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(sys.argv[1]) for f in files)
    print(f"{sys.argv[1]}: {size / 1e9:.2f} GB; weight-read floor of a decode step {size / rate * 1e3:.2f} ms")


if len(sys.argv) > 1:
    try:
        products = weight_products(sys.argv[1])
    except ImportError:
        products = Counter()
        print("no onnx module: the weight products are not timed")
    if products:
        num_weights = sum(k * n * c for (k, n), c in products.items())
        print(f"weight products of a step: {sum(products.values())} MatMuls of {len(products)} shapes, {num_weights / 1e9:.3f} G weights "
              f"({2 * num_weights / 1e9:.2f} GB in float16)")
        weights = {shape: torch.randn(*shape, dtype=torch.float16, device="cuda") for shape in products}
        for rows in (1, 16, 64, 128, 192, 256):
            inputs = {k: torch.randn(rows, k, dtype=torch.float16, device="cuda") for k in {k for k, _ in products}}
            ms = sum(c * timed(lambda: torch.matmul(inputs[k], weights[(k, n)]), 20) for (k, n), c in products.items())
            print(f"  {rows:3d} rows: cuBLAS {ms:.2f} ms a step, weights read at {2 * num_weights / (ms / 1e3) / 1e12:.2f} TB/s, "
                  f"{2 * rows * num_weights / (ms / 1e3) / 1e12:.1f} TFLOP/s")
        del weights, inputs
print(f"PEAKS copy_gbps={rate / 1e9:.1f} matmul_tflops={best:.1f}")
