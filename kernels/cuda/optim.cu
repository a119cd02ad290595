// CUDA fused optimizer updates and gradient-norm clipping (kernels/optim.h); the CPU twins in
// kernels/cpu/optim.cpp are the reference.
//
// Multi-tensor launches: the host packs up to kMaxTensorsPerLaunch tensors (pointers, sizes,
// per-tensor scalars such as Adam's bias corrections) into a TensorTable passed by value as a
// __grid_constant__ kernel argument (about 22 KiB; sm_70+ accepts up to 32 KiB), together
// with the prefix sums of their chunk counts. Block b finds its tensor by binary search over
// those prefix sums and processes chunk b - block_start[t] (kNormChunk elements) of it, with
// 4-element vector accesses when the tensor's buffers are aligned. One launch therefore
// updates every parameter of a dtype, and the launch shape depends only on the sizes.
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"
#include "kernels/optim_math.h"

namespace tessera::kernels {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;
using cuda::Vec;

constexpr int64_t kChunk = kNormChunk;
constexpr int kMax = kMaxTensorsPerLaunch;

struct TensorTable {
  void* data[kMax];
  const void* grad[kMax];
  void* state[3][kMax];
  int64_t numel[kMax];
  double scalar[2][kMax];
  int32_t block_start[kMax + 1];
  int32_t count;
};
static_assert(sizeof(TensorTable) + 256 < 32764, "TensorTable exceeds the kernel-argument limit");

__device__ __forceinline__ int find_tensor(const TensorTable& table, int32_t block) {
  int lo = 0, hi = table.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (table.block_start[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

template <typename T>
__device__ __forceinline__ bool aligned_for(const void* p, int n) {
  return (reinterpret_cast<uintptr_t>(p) % (sizeof(T) * n)) == 0;
}

// A fixed-shape tree over the block (warp shuffles, then one warp): deterministic.
__device__ double block_sum(double v) {
  __shared__ double warp_sums[32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = threadIdx.x < warps ? warp_sums[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;  // valid in thread 0
}

template <typename A>
struct SgdOp {
  using Coeffs = SgdCoeffs<A>;
  Coeffs c;
  __device__ A operator()(A sc0, A, A p, A g, A& buf, A&, A&) const { return sgd_element(c, sc0 != A(0), p, g, buf); }
};

template <typename A>
struct AdamOp {
  using Coeffs = AdamCoeffs<A>;
  Coeffs c;
  __device__ A operator()(A step_size, A bc2_sqrt, A p, A g, A& m, A& v, A&) const {
    return adam_element(c, step_size, bc2_sqrt, p, g, m, v);
  }
};

template <typename A>
struct RmspropOp {
  using Coeffs = RmspropCoeffs<A>;
  Coeffs c;
  __device__ A operator()(A, A, A p, A g, A& sq, A& buf, A& ga) const { return rmsprop_element(c, p, g, sq, buf, ga); }
};

template <typename T, typename Op>
__global__ void __launch_bounds__(cuda::kThreads) update_kernel(const __grid_constant__ TensorTable table, const Op op) {
  using A = AccType<T>;
  constexpr int N = 4;
  const int t = find_tensor(table, static_cast<int32_t>(blockIdx.x));
  const int64_t begin = static_cast<int64_t>(static_cast<int32_t>(blockIdx.x) - table.block_start[t]) * kChunk;
  const int64_t end = min(begin + kChunk, table.numel[t]);
  T* p = static_cast<T*>(table.data[t]);
  const T* g = static_cast<const T*>(table.grad[t]);
  A* s0 = static_cast<A*>(table.state[0][t]);
  A* s1 = static_cast<A*>(table.state[1][t]);
  A* s2 = static_cast<A*>(table.state[2][t]);
  const A sc0 = static_cast<A>(table.scalar[0][t]), sc1 = static_cast<A>(table.scalar[1][t]);
  const bool vec = aligned_for<T>(p, N) && aligned_for<T>(g, N) && (!s0 || aligned_for<A>(s0, N)) &&
                   (!s1 || aligned_for<A>(s1, N)) && (!s2 || aligned_for<A>(s2, N));
  const int64_t vec_end = vec ? begin + (end - begin) / N * N : begin;
  for (int64_t i = begin + static_cast<int64_t>(threadIdx.x) * N; i < vec_end; i += static_cast<int64_t>(blockDim.x) * N) {
    Vec<T, N> pv = *reinterpret_cast<const Vec<T, N>*>(p + i);
    const Vec<T, N> gv = *reinterpret_cast<const Vec<T, N>*>(g + i);
    Vec<A, N> a0{}, a1{}, a2{};
    if (s0) a0 = *reinterpret_cast<const Vec<A, N>*>(s0 + i);
    if (s1) a1 = *reinterpret_cast<const Vec<A, N>*>(s1 + i);
    if (s2) a2 = *reinterpret_cast<const Vec<A, N>*>(s2 + i);
#pragma unroll
    for (int k = 0; k < N; ++k) pv.v[k] = store<T>(op(sc0, sc1, load(pv.v[k]), load(gv.v[k]), a0.v[k], a1.v[k], a2.v[k]));
    *reinterpret_cast<Vec<T, N>*>(p + i) = pv;
    if (s0) *reinterpret_cast<Vec<A, N>*>(s0 + i) = a0;
    if (s1) *reinterpret_cast<Vec<A, N>*>(s1 + i) = a1;
    if (s2) *reinterpret_cast<Vec<A, N>*>(s2 + i) = a2;
  }
  for (int64_t i = vec_end + threadIdx.x; i < end; i += blockDim.x) {
    A a0 = s0 ? s0[i] : A(0), a1 = s1 ? s1[i] : A(0), a2 = s2 ? s2[i] : A(0);
    p[i] = store<T>(op(sc0, sc1, load(p[i]), load(g[i]), a0, a1, a2));
    if (s0) s0[i] = a0;
    if (s1) s1[i] = a1;
    if (s2) s2[i] = a2;
  }
}

template <typename T>
__global__ void __launch_bounds__(cuda::kThreads) norm_partials_kernel(const __grid_constant__ TensorTable table,
                                                                       double* partials) {
  constexpr int N = cuda::vec_width<T>();
  const int t = find_tensor(table, static_cast<int32_t>(blockIdx.x));
  const int64_t begin = static_cast<int64_t>(static_cast<int32_t>(blockIdx.x) - table.block_start[t]) * kChunk;
  const int64_t end = min(begin + kChunk, table.numel[t]);
  const T* x = static_cast<const T*>(table.data[t]);
  const int64_t vec_end = aligned_for<T>(x, N) ? begin + (end - begin) / N * N : begin;
  double sum = 0.0;
  for (int64_t i = begin + static_cast<int64_t>(threadIdx.x) * N; i < vec_end; i += static_cast<int64_t>(blockDim.x) * N) {
    const Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(x + i);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const double d = static_cast<double>(load(v.v[k]));
      sum += d * d;
    }
  }
  for (int64_t i = vec_end + threadIdx.x; i < end; i += blockDim.x) {
    const double d = static_cast<double>(load(x[i]));
    sum += d * d;
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void clip_coefficient_kernel(const double* partials, int64_t count, double max_norm, float* norm,
                                        float* coef) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) {
    const double n = sqrt(sum);
    *norm = static_cast<float>(n);
    *coef = static_cast<float>(fmin(1.0, max_norm / (n + 1e-6)));
  }
}

template <typename T>
__global__ void __launch_bounds__(cuda::kThreads) scale_kernel(const __grid_constant__ TensorTable table,
                                                               const float* coef) {
  using A = AccType<T>;
  constexpr int N = cuda::vec_width<T>();
  const int t = find_tensor(table, static_cast<int32_t>(blockIdx.x));
  const int64_t begin = static_cast<int64_t>(static_cast<int32_t>(blockIdx.x) - table.block_start[t]) * kChunk;
  const int64_t end = min(begin + kChunk, table.numel[t]);
  T* x = static_cast<T*>(table.data[t]);
  const A c = static_cast<A>(*coef);
  const int64_t vec_end = aligned_for<T>(x, N) ? begin + (end - begin) / N * N : begin;
  for (int64_t i = begin + static_cast<int64_t>(threadIdx.x) * N; i < vec_end; i += static_cast<int64_t>(blockDim.x) * N) {
    Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(x + i);
#pragma unroll
    for (int k = 0; k < N; ++k) v.v[k] = store<T>(load(v.v[k]) * c);
    *reinterpret_cast<Vec<T, N>*>(x + i) = v;
  }
  for (int64_t i = vec_end + threadIdx.x; i < end; i += blockDim.x) x[i] = store<T>(load(x[i]) * c);
}

// Packs tensors 0..count-1 into as few tables as fit and calls launch(table, blocks,
// first_chunk) for each. fill(i, table, slot) writes tensor i's pointers and scalars into the
// slot; empty tensors are skipped.
template <typename NumelOf, typename Fill, typename Launch>
void launch_in_tables(int64_t count, NumelOf numel_of, Fill fill, Launch launch) {
  TensorTable table;
  table.count = 0;
  table.block_start[0] = 0;
  int64_t blocks = 0, first_chunk = 0;
  auto flush = [&] {
    if (table.count == 0) return;
    table.block_start[table.count] = static_cast<int32_t>(blocks);
    launch(table, blocks, first_chunk);
    first_chunk += blocks;
    blocks = 0;
    table.count = 0;
  };
  for (int64_t i = 0; i < count; ++i) {
    const int64_t numel = numel_of(i);
    if (numel == 0) continue;
    const int64_t chunks = (numel + kChunk - 1) / kChunk;
    TESSERA_ASSERT(chunks < INT32_MAX, "tensor of ", numel, " elements is too large for one launch");
    if (table.count == kMax || blocks + chunks >= INT32_MAX) flush();
    const int slot = table.count++;
    table.numel[slot] = numel;
    table.block_start[slot] = static_cast<int32_t>(blocks);
    table.grad[slot] = nullptr;
    table.state[0][slot] = table.state[1][slot] = table.state[2][slot] = nullptr;
    table.scalar[0][slot] = table.scalar[1][slot] = 0.0;
    fill(i, table, slot);
    blocks += chunks;
  }
  flush();
}

template <template <typename> class OpT, typename Config, typename Scalars>
void update(DType dtype, const char* name, const OptimTensor* tensors, int64_t count, const Config& config,
            Scalars scalars, void* stream) {
  cuda::cuda_float_dtype_switch(dtype, name, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    const OpT<A> op{typename OpT<A>::Coeffs(config)};
    launch_in_tables(
        count, [&](int64_t i) { return tensors[i].numel; },
        [&](int64_t i, TensorTable& table, int slot) {
          table.data[slot] = tensors[i].param;
          table.grad[slot] = tensors[i].grad;
          for (int k = 0; k < 3; ++k) table.state[k][slot] = tensors[i].state[k];
          scalars(tensors[i], table.scalar[0][slot], table.scalar[1][slot]);
        },
        [&](const TensorTable& table, int64_t blocks, int64_t) {
          update_kernel<T, OpT<A>><<<static_cast<unsigned>(blocks), cuda::kThreads, 0, cuda::stream_of(stream)>>>(table, op);
          TESSERA_CUDA_LAUNCH_CHECK();
        });
  });
}

}  // namespace

void sgd_update_cuda(DType dtype, const OptimTensor* tensors, int64_t count, const SgdConfig& config, void* stream) {
  update<SgdOp>(dtype, "SGD update", tensors, count, config,
                [](const OptimTensor& t, double& first, double&) { first = t.step == 1 ? 1.0 : 0.0; }, stream);
}

void adam_update_cuda(DType dtype, const OptimTensor* tensors, int64_t count, const AdamConfig& config, void* stream) {
  update<AdamOp>(dtype, "Adam update", tensors, count, config,
                 [&](const OptimTensor& t, double& step_size, double& bc2_sqrt) {
                   const double step = static_cast<double>(t.step);
                   step_size = config.lr / (1.0 - std::pow(config.beta1, step));
                   bc2_sqrt = std::sqrt(1.0 - std::pow(config.beta2, step));
                 },
                 stream);
}

void rmsprop_update_cuda(DType dtype, const OptimTensor* tensors, int64_t count, const RmspropConfig& config,
                         void* stream) {
  update<RmspropOp>(dtype, "RMSprop update", tensors, count, config, [](const OptimTensor&, double&, double&) {},
                    stream);
}

void grad_norm_partials_cuda(DType dtype, const void* const* data, const int64_t* numels, int64_t count,
                             double* partials, void* stream) {
  cuda::cuda_float_dtype_switch(dtype, "gradient norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    launch_in_tables(
        count, [&](int64_t i) { return numels[i]; },
        [&](int64_t i, TensorTable& table, int slot) { table.data[slot] = const_cast<void*>(data[i]); },
        [&](const TensorTable& table, int64_t blocks, int64_t first_chunk) {
          norm_partials_kernel<T><<<static_cast<unsigned>(blocks), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
              table, partials + first_chunk);
          TESSERA_CUDA_LAUNCH_CHECK();
        });
  });
}

void clip_coefficient_cuda(const double* partials, int64_t count, double max_norm, float* norm, float* coef,
                           void* stream) {
  clip_coefficient_kernel<<<1, 1024, 0, cuda::stream_of(stream)>>>(partials, count, max_norm, norm, coef);
  TESSERA_CUDA_LAUNCH_CHECK();
}

void scale_by_cuda(DType dtype, void* const* data, const int64_t* numels, int64_t count, const float* coef,
                   void* stream) {
  cuda::cuda_float_dtype_switch(dtype, "gradient clipping", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    launch_in_tables(
        count, [&](int64_t i) { return numels[i]; },
        [&](int64_t i, TensorTable& table, int slot) { table.data[slot] = data[i]; },
        [&](const TensorTable& table, int64_t blocks, int64_t) {
          scale_kernel<T><<<static_cast<unsigned>(blocks), cuda::kThreads, 0, cuda::stream_of(stream)>>>(table, coef);
          TESSERA_CUDA_LAUNCH_CHECK();
        });
  });
}

}  // namespace tessera::kernels
