// CUDA batch normalisation (kernels/batch_norm.h); kernels/cpu/batch_norm.cpp is the reference.
//
// Both directions are two reduction passes and one elementwise pass, with no atomics:
//  1. channel_partials: a (parts x channels) grid; block (p, c) reduces its contiguous share
//     of channel c's N*S values (16-byte vector loads when S and the pointers allow) to two
//     sums, reduced within the block in a fixed order. Forward: sum(x - x0) and sum((x - x0)^2)
//     with x0 = the channel's first value (a shift that keeps the one-pass variance accurate
//     when |mean| >> std); backward: sum(dy) and sum(dy * (x - mean)).
//  2. finalize: one thread per channel adds its parts in order and writes the statistics (and
//     the running-statistic update, the num_batches_tracked increment) or the weight/bias
//     gradients, plus three per-channel coefficients k1, k2, k0.
//  3. channel_affine: out = in1 * k1[c] + in2 * k2[c] + k0[c] over all elements, vectorised:
//     y = x * scale + shift forward, dx = dy * k1 + x * k2 + k0 backward.
// The number of parts depends only on the sizes; the host never waits for the device.
#include <algorithm>
#include <cmath>

#include "framework/core/allocator.h"
#include "kernels/batch_norm.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rows.cuh"

namespace tessera::kernels {
namespace {

using std::sqrt;
using cuda::AccType;
using cuda::load;
using cuda::load_vec;
using cuda::store;
using cuda::store_vec;

constexpr int kBnThreads = 256;
constexpr int64_t kMaxParts = 128;

// Sums a and b over the block in a fixed order; thread 0 gets the totals.
template <typename A>
__device__ void block_sum_pair(A& a, A& b) {
  __shared__ A shared_a[kBnThreads / 32], shared_b[kBnThreads / 32];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_xor_sync(0xffffffffu, b, offset);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    shared_a[warp] = a;
    shared_b[warp] = b;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    A total_a = 0, total_b = 0;
    for (int w = 0; w < kBnThreads / 32; ++w) {
      total_a += shared_a[w];
      total_b += shared_b[w];
    }
    a = total_a;
    b = total_b;
  }
}

template <typename T, int N, bool Backward, typename I>
__global__ void __launch_bounds__(kBnThreads)
    channel_partials_kernel(const T* __restrict__ x, const T* __restrict__ dy, const AccType<T>* __restrict__ mean,
                            I channels, I spatial, I vectors, I vectors_per_part, AccType<T>* __restrict__ partial) {
  using A = AccType<T>;
  const I c = static_cast<I>(blockIdx.y);
  const I part = static_cast<I>(blockIdx.x);
  const I row_vectors = spatial / N;
  const I begin = part * vectors_per_part;
  const I end = begin + vectors_per_part < vectors ? begin + vectors_per_part : vectors;
  const A center = Backward ? mean[c] : load(x[c * spatial]);
  A s1 = 0, s2 = 0;
  for (I v = begin + static_cast<I>(threadIdx.x); v < end; v += kBnThreads) {
    const I image = v / row_vectors;
    const I offset = (image * channels + c) * spatial + (v - image * row_vectors) * N;
    A xv[N];
    load_vec<T, N>(x + offset, xv);
    if constexpr (Backward) {
      A gv[N];
      load_vec<T, N>(dy + offset, gv);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        s1 += gv[j];
        s2 += gv[j] * (xv[j] - center);
      }
    } else {
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const A d = xv[j] - center;
        s1 += d;
        s2 += d * d;
      }
    }
  }
  block_sum_pair(s1, s2);
  if (threadIdx.x == 0) {
    partial[(static_cast<int64_t>(c) * gridDim.x + part) * 2] = s1;
    partial[(static_cast<int64_t>(c) * gridDim.x + part) * 2 + 1] = s2;
  }
}

// coef holds k1 at [0, C), k2 at [C, 2C), k0 at [2C, 3C).
template <typename T, typename R>
__global__ void forward_finalize_kernel(const AccType<T>* __restrict__ partial, int64_t parts, const T* __restrict__ x,
                                        const T* __restrict__ weight, const T* __restrict__ bias,
                                        AccType<T>* __restrict__ mean_out, AccType<T>* __restrict__ rstd_out,
                                        AccType<T>* __restrict__ coef, R* running_mean, R* running_var,
                                        int64_t* num_batches_tracked, int64_t channels, int64_t spatial,
                                        int64_t count, double eps, double momentum, bool use_batch_stats) {
  using A = AccType<T>;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  A mean, var;
  if (use_batch_stats) {
    A s1 = 0, s2 = 0;
    for (int64_t p = 0; p < parts; ++p) {
      s1 += partial[(c * parts + p) * 2];
      s2 += partial[(c * parts + p) * 2 + 1];
    }
    const A inv_count = A(1) / static_cast<A>(count);
    const A shifted_mean = s1 * inv_count;
    mean = load(x[c * spatial]) + shifted_mean;
    var = s2 * inv_count - shifted_mean * shifted_mean;
    var = var > A(0) ? var : A(0);
    if (running_mean != nullptr) {
      const A unbiased = count > 1 ? var * static_cast<A>(count) / static_cast<A>(count - 1) : var;
      const A m = static_cast<A>(momentum);
      running_mean[c] = store<R>((A(1) - m) * static_cast<A>(load(running_mean[c])) + m * mean);
      running_var[c] = store<R>((A(1) - m) * static_cast<A>(load(running_var[c])) + m * unbiased);
      if (c == 0 && num_batches_tracked != nullptr) *num_batches_tracked += 1;
    }
  } else {
    mean = static_cast<A>(load(running_mean[c]));
    var = static_cast<A>(load(running_var[c]));
  }
  const A rstd = A(1) / sqrt(var + static_cast<A>(eps));
  mean_out[c] = mean;
  rstd_out[c] = rstd;
  const A scale = rstd * (weight ? load(weight[c]) : A(1));
  coef[c] = scale;
  coef[channels + c] = A(0);
  coef[2 * channels + c] = (bias ? load(bias[c]) : A(0)) - mean * scale;
}

template <typename T>
__global__ void backward_finalize_kernel(const AccType<T>* __restrict__ partial, int64_t parts,
                                         const T* __restrict__ weight, const AccType<T>* __restrict__ mean,
                                         const AccType<T>* __restrict__ rstd, AccType<T>* __restrict__ coef,
                                         T* __restrict__ dweight, T* __restrict__ dbias, int64_t channels,
                                         int64_t count, bool use_batch_stats) {
  using A = AccType<T>;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  A sum_dy = 0, sum_dy_centered = 0;
  for (int64_t p = 0; p < parts; ++p) {
    sum_dy += partial[(c * parts + p) * 2];
    sum_dy_centered += partial[(c * parts + p) * 2 + 1];
  }
  const A r = rstd[c];
  const A sum_dy_xhat = sum_dy_centered * r;
  if (dbias) dbias[c] = store<T>(sum_dy);
  if (dweight) dweight[c] = store<T>(sum_dy_xhat);
  const A inv_count = A(1) / static_cast<A>(count);
  const A k1 = r * (weight ? load(weight[c]) : A(1));
  const A k2 = use_batch_stats ? -k1 * r * sum_dy_xhat * inv_count : A(0);
  coef[c] = k1;
  coef[channels + c] = k2;
  coef[2 * channels + c] = use_batch_stats ? -k1 * sum_dy * inv_count - mean[c] * k2 : A(0);
}

template <typename T, int N, typename I>
__global__ void channel_affine_kernel(const T* __restrict__ in1, const T* __restrict__ in2,
                                      const AccType<T>* __restrict__ coef, T* __restrict__ out, I channels,
                                      I spatial, I vectors) {
  using A = AccType<T>;
  for (I v = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; v < vectors;
       v += static_cast<I>(gridDim.x) * blockDim.x) {
    const I i = v * N;
    const I c = (i / spatial) % channels;
    const A k1 = coef[c], k2 = coef[channels + c], k0 = coef[2 * channels + c];
    A a[N], result[N];
    load_vec<T, N>(in1 + i, a);
    if (in2 != nullptr) {
      A b[N];
      load_vec<T, N>(in2 + i, b);
#pragma unroll
      for (int j = 0; j < N; ++j) result[j] = a[j] * k1 + b[j] * k2 + k0;
    } else {
#pragma unroll
      for (int j = 0; j < N; ++j) result[j] = a[j] * k1 + k0;
    }
    store_vec<T, N>(out + i, result);
  }
}

struct Sizes {
  int64_t batch, channels, spatial;
  int64_t total() const { return batch * channels * spatial; }
  int64_t count() const { return batch * spatial; }
};

// Parts per channel: a function of the sizes only (about 8192 values per part, at most 128).
int64_t parts_for(const Sizes& s) {
  return std::clamp<int64_t>((s.count() + 8191) / 8192, 1, kMaxParts);
}

template <typename Fn>
void with_index(const Sizes& s, Fn&& fn) {
  if (s.total() < (int64_t{1} << 30)) {
    fn(int32_t{});
  } else {
    fn(int64_t{});
  }
}

// Launches channel_partials for T with vector width N.
template <typename T, bool Backward>
void launch_partials(const Sizes& s, const T* x, const T* dy, const AccType<T>* mean, AccType<T>* partial,
                     int64_t parts, cudaStream_t stream) {
  TESSERA_CHECK(s.channels <= 65535, "batch_norm: at most 65535 channels on CUDA, got ", s.channels);
  std::initializer_list<const void*> pointers = {x, dy};
  cuda::with_vector_width<T>(s.spatial, pointers, [&](auto width) {
    constexpr int N = decltype(width)::value;
    const int64_t vectors = s.count() / N;
    const int64_t per_part = (vectors + parts - 1) / parts;
    with_index(s, [&](auto index) {
      using I = decltype(index);
      channel_partials_kernel<T, N, Backward, I><<<dim3(static_cast<unsigned>(parts), static_cast<unsigned>(s.channels)),
                                                  kBnThreads, 0, stream>>>(
          x, dy, mean, static_cast<I>(s.channels), static_cast<I>(s.spatial), static_cast<I>(vectors),
          static_cast<I>(per_part), partial);
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

template <typename T>
void launch_affine(const Sizes& s, const T* in1, const T* in2, const AccType<T>* coef, T* out, cudaStream_t stream) {
  std::initializer_list<const void*> pointers = {in1, in2, out};
  cuda::with_vector_width<T>(s.spatial, pointers, [&](auto width) {
    constexpr int N = decltype(width)::value;
    const int64_t vectors = s.total() / N;
    with_index(s, [&](auto index) {
      using I = decltype(index);
      channel_affine_kernel<T, N, I><<<cuda::memory_bound_blocks(vectors), cuda::kThreads, 0, stream>>>(
          in1, in2, coef, out, static_cast<I>(s.channels), static_cast<I>(s.spatial), static_cast<I>(vectors));
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace

void batch_norm_forward_cuda(const BatchNormForwardArgs& a, void* stream_ptr) {
  const Sizes s{a.batch, a.channels, a.spatial};
  if (s.channels == 0) return;
  const cudaStream_t stream = cuda::stream_of(stream_ptr);
  const int device = cuda::current_device();
  cuda::cuda_float_dtype_switch(a.dtype, "batch_norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    const T* x = static_cast<const T*>(a.x);
    const bool batch_stats = a.use_batch_stats && s.count() > 0;
    const int64_t parts = parts_for(s);
    A* partial = batch_stats ? static_cast<A*>(cuda_allocate(sizeof(A) * 2 * parts * s.channels, device, stream))
                             : nullptr;
    A* coef = static_cast<A*>(cuda_allocate(sizeof(A) * 3 * s.channels, device, stream));
    if (batch_stats) launch_partials<T, false>(s, x, nullptr, nullptr, partial, parts, stream);
    cuda::cuda_float_dtype_switch(a.running_dtype, "batch_norm running statistics", [&](auto* rtag) {
      using R = std::remove_pointer_t<decltype(rtag)>;
      forward_finalize_kernel<T, R><<<cuda::blocks_for(s.channels), cuda::kThreads, 0, stream>>>(
          partial, parts, x, static_cast<const T*>(a.weight), static_cast<const T*>(a.bias), static_cast<A*>(a.mean),
          static_cast<A*>(a.rstd), coef, static_cast<R*>(a.running_mean), static_cast<R*>(a.running_var),
          a.num_batches_tracked, s.channels, s.spatial, s.count(), a.eps, a.momentum, batch_stats);
      TESSERA_CUDA_LAUNCH_CHECK();
    });
    if (s.total() > 0) launch_affine<T>(s, x, nullptr, coef, static_cast<T*>(a.y), stream);
    if (partial) cuda_free(partial);
    cuda_free(coef);
  });
}

void batch_norm_backward_cuda(const BatchNormBackwardArgs& a, void* stream_ptr) {
  const Sizes s{a.batch, a.channels, a.spatial};
  if (s.channels == 0) return;
  const cudaStream_t stream = cuda::stream_of(stream_ptr);
  const int device = cuda::current_device();
  cuda::cuda_float_dtype_switch(a.dtype, "batch_norm backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    const T* x = static_cast<const T*>(a.x);
    const T* dy = static_cast<const T*>(a.dy);
    const bool sums = s.count() > 0 && (a.use_batch_stats || a.dweight || a.dbias);
    const int64_t parts = sums ? parts_for(s) : 0;
    A* partial = sums ? static_cast<A*>(cuda_allocate(sizeof(A) * 2 * parts * s.channels, device, stream)) : nullptr;
    A* coef = static_cast<A*>(cuda_allocate(sizeof(A) * 3 * s.channels, device, stream));
    if (sums) launch_partials<T, true>(s, x, dy, static_cast<const A*>(a.mean), partial, parts, stream);
    backward_finalize_kernel<T><<<cuda::blocks_for(s.channels), cuda::kThreads, 0, stream>>>(
        partial, parts, static_cast<const T*>(a.weight), static_cast<const A*>(a.mean), static_cast<const A*>(a.rstd),
        coef, static_cast<T*>(a.dweight), static_cast<T*>(a.dbias), s.channels, std::max<int64_t>(s.count(), 1),
        a.use_batch_stats);
    TESSERA_CUDA_LAUNCH_CHECK();
    if (a.dx && s.total() > 0) launch_affine<T>(s, dy, x, coef, static_cast<T*>(a.dx), stream);
    if (partial) cuda_free(partial);
    cuda_free(coef);
  });
}

}  // namespace tessera::kernels
