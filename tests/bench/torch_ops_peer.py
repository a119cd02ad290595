"""PyTorch peer for tests/bench/ops_bench.cpp: the same GEMM shapes through torch.matmul and
the same memory-bound operations, timed with CUDA events (median after warm-up), printed in
the same BENCH line format."""
import torch

def median_ms(fn, warmup=5, reps=30):
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]

def gemm(m, n, k, trans_b):
    a = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    b = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) if trans_b else
         torch.randn(k, n, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    ms = median_ms(lambda i: torch.matmul(a[i % 3], b[i % 3].t() if trans_b else b[i % 3]))
    print(f"BENCH gemm bf16_{m}x{n}x{k}{'_nt' if trans_b else ''} {2*m*n*k/(ms*1e-3)/1e12:.1f} TFLOP/s ms={ms:.4f}")

def bw(name, nbytes, ms):
    print(f"BENCH membw {name} {nbytes/(ms*1e-3)/1e9:.1f} GB/s ms={ms:.4f} bytes={nbytes:.0f}")

def memory_bound():
    n = 1 << 28
    for dt, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        es = torch.tensor([], dtype=dt).element_size()
        xs = [torch.randn(n, device="cuda", dtype=dt) for _ in range(2)]
        ys = [torch.randn(n, device="cuda", dtype=dt) for _ in range(2)]
        dst = torch.empty(n, device="cuda", dtype=dt)
        bw(f"copy_{tag}", 2 * n * es, median_ms(lambda i: dst.copy_(xs[i % 2])))
        bw(f"add_{tag}", 3 * n * es, median_ms(lambda i: xs[i % 2] + ys[i % 2]))
        bw(f"mul_scalar_{tag}", 2 * n * es, median_ms(lambda i: xs[i % 2] * 3.0))
        bw(f"gelu_{tag}", 2 * n * es, median_ms(lambda i: torch.nn.functional.gelu(xs[i % 2], approximate="tanh")))
        bw(f"sum_{tag}", n * es, median_ms(lambda i: xs[i % 2].sum()))
        rows = xs[0].view(n // 4096, 4096)
        bw(f"row_sum_4096_{tag}", n * es, median_ms(lambda i: rows.sum(1)))
        bw(f"column_sum_4096_{tag}", n * es, median_ms(lambda i: rows.sum(0)))
        other, other_tag = (torch.bfloat16, "bf16") if dt == torch.float32 else (torch.float32, "f32")
        other_es = torch.tensor([], dtype=other).element_size()
        bw(f"cast_to_{other_tag}_{tag}", n * (es + other_es), median_ms(lambda i: xs[i % 2].to(other)))
        del xs, ys, dst

if __name__ == "__main__":
    print(f"DEVICE {torch.cuda.get_device_name(0)} torch {torch.__version__}")
    for m, n, k in [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 3072, 768), (16384, 768, 3072), (16384, 2304, 768)]:
        gemm(m, n, k, False)
    gemm(16384, 3072, 768, True)
    gemm(8192, 8192, 8192, True)
    memory_bound()
