"""Device-to-device copy bandwidth on the GPU (torch), and the weight-read floor of a decode step.

  python3 scripts/gpu/copy-bandwidth.py [MODEL_DIR]

Copies a 4 GiB buffer 20 times after a warm-up and prints bytes read + written per second (the convention of
../shared/gpu/README.md: "a device-to-device copy moves ~3.0 TB/s (bytes read + written)"). With MODEL_DIR, also the
floor of one decode step: the package's bytes (every file; the weights are nearly all of it) at that rate."""
import os
import sys

import torch

NUM_BYTES = 4 << 30
REPEATS = 20

src = torch.empty(NUM_BYTES // 2, dtype=torch.float16, device="cuda")
dst = torch.empty_like(src)
for _ in range(3):
    dst.copy_(src)
torch.cuda.synchronize()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(REPEATS):
    dst.copy_(src)
end.record()
torch.cuda.synchronize()
ms = start.elapsed_time(end) / REPEATS
rate = 2 * NUM_BYTES / (ms / 1e3)  # bytes read + written per second
print(f"{torch.cuda.get_device_name()}: device copy of {NUM_BYTES >> 30} GiB in {ms:.3f} ms: {rate / 1e12:.2f} TB/s read + written")
if len(sys.argv) > 1:
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(sys.argv[1]) for f in files)
    print(f"{sys.argv[1]}: {size / 1e9:.2f} GB; weight-read floor of a decode step {size / rate * 1e3:.2f} ms")
