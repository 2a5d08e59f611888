"""The card's own peaks, measured with torch: device-to-device copy bandwidth and float16 matmul rate; and the
weight-read floor of a decode step.

  python3 scripts/gpu/device-peaks.py [MODEL_DIR]

Copy: a 4 GiB buffer 20 times after a warm-up, bytes read + written per second (the convention of
../shared/gpu/README.md: "a device-to-device copy moves ~3.0 TB/s (bytes read + written)"), the denominator of
`bench --copy-bandwidth`. Matmul: float16 products of square matrices of 4096, 8192 and 16384 (cuBLAS through torch,
float32 accumulation as torch does by default for float16), 2·n³ FLOPs each, the best of them: `bench --matmul-tflops`.
With MODEL_DIR, also the floor of one decode step: the package's bytes (every file; the weights are nearly all of it)
at the copy rate. The last line is `PEAKS copy_gbps=… matmul_tflops=…` for scripts."""
import os
import sys

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
print(f"PEAKS copy_gbps={rate / 1e9:.1f} matmul_tflops={best:.1f}")
