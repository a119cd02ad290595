// attention_bench: times Tessera's CUDA flash attention (bf16) on the benchmark shapes of
// kernels/cuda/attention_NOTES.md and prints one machine-readable line per measurement:
//
//   RESULT impl=tessera pass=fwd B=8 H=16 S=2048 D=64 causal=1 ms=0.512 tflops=268.4
//
// pass is fwd (forward), fwd_bwd (forward + backward, dq by atomics) or fwd_bwd_det (forward +
// deterministic backward). FLOPs: forward 4*B*H*S*S*D, halved when causal; forward+backward
// 3.5 times that (the backward's five products against the forward's two). Each time is the
// median of --iters runs (default 30) measured with CUDA events around the kernels alone,
// after --warmup runs (default 5), rotating over enough input sets that they do not fit in
// L2 together. Inputs are random normal (never zeros: see METHOD.md).
//
//   attention_bench [--iters N] [--warmup N] [--shape B,H,S,D,causal]...
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "framework/core/cuda_check.h"
#include "framework/core/rng.h"
#include "framework/core/tensor.h"
#include "framework/core/tensor_layout.h"
#include "framework/ops/attention.h"

namespace {

using tessera::DType;
using tessera::Device;
using tessera::Tensor;

struct Shape5 {
  int64_t batch, heads, len, head_dim;
  bool causal;
};

const Shape5 kDefaultShapes[] = {
    {8, 16, 2048, 64, true}, {4, 16, 4096, 64, true}, {4, 16, 4096, 128, true},
    {16, 16, 1024, 64, false}, {2, 16, 8192, 128, true},
};

struct InputSet {
  Tensor q, k, v, dout;
};

double forward_flops(const Shape5& s) {
  const double f = 4.0 * s.batch * s.heads * static_cast<double>(s.len) * s.len * s.head_dim;
  return s.causal ? f / 2 : f;
}

class Bench {
 public:
  Bench(const Shape5& shape, int iters, int warmup) : shape_(shape), iters_(iters), warmup_(warmup) {
    const Device dev = Device::cuda(0);
    const tessera::Shape dims{shape.batch, shape.heads, shape.len, shape.head_dim};
    const double set_bytes = 4.0 * static_cast<double>(tessera::shape_numel(dims)) * 2;
    const int sets = static_cast<int>(std::clamp(std::ceil(256e6 / set_bytes), 2.0, 8.0));
    tessera::Generator gen(1234);
    for (int i = 0; i < sets; ++i)
      sets_.push_back({tessera::randn(dims, 0, 1, DType::bf16, dev, &gen), tessera::randn(dims, 0, 1, DType::bf16, dev, &gen),
                       tessera::randn(dims, 0, 1, DType::bf16, dev, &gen), tessera::randn(dims, 0, 1, DType::bf16, dev, &gen)});
    out_ = Tensor::empty(dims, DType::bf16, dev);
    lse_ = Tensor::empty({shape.batch, shape.heads, shape.len}, DType::f32, dev);
    dq_ = Tensor::empty(dims, DType::bf16, dev);
    dk_ = Tensor::empty(dims, DType::bf16, dev);
    dv_ = Tensor::empty(dims, DType::bf16, dev);
    stream_ = static_cast<cudaStream_t>(tessera::stream_for(out_));
  }

  // Median milliseconds of `what` (0 forward, 1 forward+backward, 2 with the deterministic backward).
  double time(int what) {
    cudaEvent_t start, stop;
    TESSERA_CUDA_CHECK(cudaEventCreate(&start));
    TESSERA_CUDA_CHECK(cudaEventCreate(&stop));
    std::vector<float> ms;
    for (int i = 0; i < warmup_ + iters_; ++i) {
      const InputSet& in = sets_[static_cast<size_t>(i) % sets_.size()];
      TESSERA_CUDA_CHECK(cudaEventRecord(start, stream_));
      run(in, what);
      TESSERA_CUDA_CHECK(cudaEventRecord(stop, stream_));
      TESSERA_CUDA_CHECK(cudaEventSynchronize(stop));
      float elapsed = 0.f;
      TESSERA_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start, stop));
      if (i >= warmup_) ms.push_back(elapsed);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

 private:
  void run(const InputSet& in, int what) {
    tessera::kernels::AttentionArgs a = tessera::attention_kernel_args(
        in.q, in.k, in.v, shape_.causal, 1.0 / std::sqrt(static_cast<double>(shape_.head_dim)),
        {out_, lse_, in.dout, dq_, dk_, dv_});
    tessera::kernels::attention_forward_cuda(a, stream_);
    if (what == 0) return;
    a.deterministic = what == 2;
    tessera::kernels::attention_backward_cuda(a, stream_);
  }

  Shape5 shape_;
  int iters_, warmup_;
  std::vector<InputSet> sets_;
  Tensor out_, lse_, dq_, dk_, dv_;
  cudaStream_t stream_ = nullptr;
};

bool parse_shape(const char* text, Shape5& s) {
  long long b, h, len, d;
  int causal;
  if (std::sscanf(text, "%lld,%lld,%lld,%lld,%d", &b, &h, &len, &d, &causal) != 5) return false;
  s = {b, h, len, d, causal != 0};
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int iters = 30, warmup = 5;
    std::vector<Shape5> shapes;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--iters" && i + 1 < argc) {
        iters = std::max(1, std::atoi(argv[++i]));
      } else if (arg == "--warmup" && i + 1 < argc) {
        warmup = std::max(0, std::atoi(argv[++i]));
      } else if (arg == "--shape" && i + 1 < argc) {
        Shape5 s;
        if (!parse_shape(argv[++i], s)) {
          std::fprintf(stderr, "attention_bench: --shape wants B,H,S,D,causal (e.g. 8,16,2048,64,1), got %s\n", argv[i]);
          return 2;
        }
        shapes.push_back(s);
      } else {
        std::fprintf(stderr, "usage: attention_bench [--iters N] [--warmup N] [--shape B,H,S,D,causal]...\n");
        return 2;
      }
    }
    if (shapes.empty()) shapes.assign(std::begin(kDefaultShapes), std::end(kDefaultShapes));
    if (tessera::cuda_device_count() == 0) {
      std::fprintf(stderr, "attention_bench: no CUDA device\n");
      return 1;
    }
    const char* passes[] = {"fwd", "fwd_bwd", "fwd_bwd_det"};
    for (const Shape5& s : shapes) {
      Bench bench(s, iters, warmup);
      for (int what = 0; what < 3; ++what) {
        const double ms = bench.time(what);
        const double flops = forward_flops(s) * (what == 0 ? 1.0 : 3.5);
        std::printf("RESULT impl=tessera pass=%s B=%lld H=%lld S=%lld D=%lld causal=%d ms=%.4f tflops=%.1f\n",
                    passes[what], static_cast<long long>(s.batch), static_cast<long long>(s.heads),
                    static_cast<long long>(s.len), static_cast<long long>(s.head_dim), s.causal ? 1 : 0, ms,
                    flops / (ms * 1e-3) / 1e12);
        std::fflush(stdout);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_bench: %s\n", e.what());
    return 1;
  }
}
