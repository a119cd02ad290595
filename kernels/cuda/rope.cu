// CUDA rotary position embedding (kernels/rope.h); kernels/cpu/rope.cpp is the reference.
//
// One work item rotates kPairs consecutive (i, i + h) pairs of one row: kPairs elements from
// each half of the row and kPairs cos/sin values, so with head_dim 64 in bf16 a row is 8 items
// with 8-byte vector loads of x and 16-byte loads of the tables. The vector path is taken when
// every row start, stride and table row is aligned for it; otherwise each item is one pair.
// Grid-stride loop; the launch shape depends only on the sizes.
#include "kernels/cuda/common.cuh"
#include "kernels/rope.h"

namespace tessera::kernels {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;
using cuda::Vec;

constexpr int kPairs = 4;

template <typename T, int Pairs>
__global__ void rope_kernel(const T* __restrict__ x, T* __restrict__ out, const float* __restrict__ cos_table,
                            const float* __restrict__ sin_table, int64_t work, int64_t seq, int64_t heads,
                            int64_t head_dim, int64_t sb, int64_t st, int64_t sh, int64_t table_stride, bool inverse) {
  using A = AccType<T>;
  const int64_t half = head_dim / 2;
  const int64_t items_per_row = half / Pairs;
  const A sign = inverse ? A(-1) : A(1);
  for (int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; item < work;
       item += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = item / items_per_row, i = (item % items_per_row) * Pairs;
    const int64_t head = row % heads, t = (row / heads) % seq, b = row / (heads * seq);
    const T* xr = x + b * sb + t * st + head * sh;
    T* yr = out + row * head_dim;
    const Vec<T, Pairs> x1 = *reinterpret_cast<const Vec<T, Pairs>*>(xr + i);
    const Vec<T, Pairs> x2 = *reinterpret_cast<const Vec<T, Pairs>*>(xr + i + half);
    const Vec<float, Pairs> c = *reinterpret_cast<const Vec<float, Pairs>*>(cos_table + t * table_stride + i);
    const Vec<float, Pairs> s = *reinterpret_cast<const Vec<float, Pairs>*>(sin_table + t * table_stride + i);
    Vec<T, Pairs> y1, y2;
#pragma unroll
    for (int j = 0; j < Pairs; ++j) {
      const A a1 = load(x1.v[j]), a2 = load(x2.v[j]);
      const A cj = static_cast<A>(c.v[j]), sj = sign * static_cast<A>(s.v[j]);
      y1.v[j] = store<T>(a1 * cj - a2 * sj);
      y2.v[j] = store<T>(a2 * cj + a1 * sj);
    }
    *reinterpret_cast<Vec<T, Pairs>*>(yr + i) = y1;
    *reinterpret_cast<Vec<T, Pairs>*>(yr + i + half) = y2;
  }
}

bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace

void rope_cuda(const RopeArgs& a, void* stream) {
  const int64_t rows = a.batch * a.seq * a.heads;
  const int64_t half = a.head_dim / 2;
  if (rows == 0 || half == 0) return;
  cuda::cuda_float_dtype_switch(a.dtype, "rope", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const auto s = cuda::stream_of(stream);
    const auto px = static_cast<const T*>(a.x);
    auto py = static_cast<T*>(a.out);
    // Every vector access must be aligned: row starts of x (all strides), of out and of both
    // halves (half), and of the table rows.
    const bool vectorized = half % kPairs == 0 && aligned_to(px, sizeof(Vec<T, kPairs>)) &&
                            aligned_to(py, sizeof(Vec<T, kPairs>)) && aligned_to(a.cos, sizeof(Vec<float, kPairs>)) &&
                            aligned_to(a.sin, sizeof(Vec<float, kPairs>)) && a.x_batch_stride % kPairs == 0 &&
                            a.x_seq_stride % kPairs == 0 && a.x_head_stride % kPairs == 0 &&
                            a.table_stride % kPairs == 0;
    if (vectorized) {
      const int64_t work = rows * (half / kPairs);
      rope_kernel<T, kPairs><<<cuda::memory_bound_blocks(work), cuda::kThreads, 0, s>>>(
          px, py, a.cos, a.sin, work, a.seq, a.heads, a.head_dim, a.x_batch_stride, a.x_seq_stride, a.x_head_stride,
          a.table_stride, a.inverse);
    } else {
      const int64_t work = rows * half;
      rope_kernel<T, 1><<<cuda::memory_bound_blocks(work), cuda::kThreads, 0, s>>>(
          px, py, a.cos, a.sin, work, a.seq, a.heads, a.head_dim, a.x_batch_stride, a.x_seq_stride, a.x_head_stride,
          a.table_stride, a.inverse);
    }
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace tessera::kernels
