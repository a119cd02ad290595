// CUDA im2col / col2im and pooling window sums (kernels/conv.h); kernels/cpu/conv.cpp is the
// reference and kernels/conv_math.h holds the index formulas both use.
//
// One thread per output element in a grid-stride loop, consecutive threads on consecutive
// output addresses (coalesced writes; reads are strided by the convolution stride). col2im
// and the pooling adjoint are gathers: each image pixel sums the column (or pooled) elements
// that came from it in a fixed order, so there are no atomics and results are reproducible.
// Index arithmetic is 32-bit when every index of the problem fits in int32 (64-bit integer
// division costs several times more on the GPU); launch shapes depend only on the sizes.
#include <initializer_list>

#include "kernels/conv.h"
#include "kernels/conv_math.h"
#include "kernels/cuda/common.cuh"

namespace tessera::kernels {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;

// Extents below 2^30 leave room for the grid-stride step (at most a few hundred thousand
// threads) without overflowing int32.
bool fits_int32(std::initializer_list<int64_t> extents) {
  for (int64_t e : extents)
    if (e >= (int64_t{1} << 30)) return false;
  return true;
}

// col (n, r, l) at col[n*col_stride_n + r*col_stride_r + l]; `row_major` says the column
// matrix is [R, N, L] (r outermost) rather than [N, R, L], which orders threads by address.
template <typename T, typename I>
__global__ void im2col_kernel(const T* __restrict__ image, ConvGeometry g, T* __restrict__ col, I col_stride_n,
                              I col_stride_r, bool row_major, I total) {
  const I rows = static_cast<I>(g.channels * g.kernel_h * g.kernel_w);
  const I positions = static_cast<I>(g.out_h * g.out_w);
  const I batch = static_cast<I>(g.batch);
  for (I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<I>(gridDim.x) * blockDim.x) {
    const I l = idx % positions;
    const I t = idx / positions;
    const I n = row_major ? t % batch : t / rows;
    const I r = row_major ? t / batch : t % rows;
    const I src = im2col_source<I>(g, n, r, l);
    col[n * col_stride_n + r * col_stride_r + l] = src < 0 ? store<T>(0.0f) : image[src];
  }
}

template <typename T, typename I>
__global__ void col2im_kernel(const T* __restrict__ col, ConvGeometry g, I col_stride_n, I col_stride_r,
                              T* __restrict__ image, I total) {
  using A = AccType<T>;
  const I height = static_cast<I>(g.height), width = static_cast<I>(g.width), channels = static_cast<I>(g.channels);
  auto read = [col](I i) { return load(col[i]); };
  for (I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<I>(gridDim.x) * blockDim.x) {
    const I w = idx % width;
    const I h = (idx / width) % height;
    const I plane = idx / (width * height);
    const I c = plane % channels, n = plane / channels;
    image[idx] = store<T>(col2im_gather<A, I>(g, n, c, h, w, col_stride_n, col_stride_r, read));
  }
}

template <typename T, typename I>
__global__ void pool_sum_kernel(const T* __restrict__ x, PoolGeometry g, AccType<T> scale, T* __restrict__ y,
                                I total) {
  using A = AccType<T>;
  const I out_h = static_cast<I>(g.out_h), out_w = static_cast<I>(g.out_w);
  auto read = [x](I i) { return load(x[i]); };
  for (I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<I>(gridDim.x) * blockDim.x) {
    const I ow = idx % out_w;
    const I oh = (idx / out_w) % out_h;
    const I plane = idx / (out_w * out_h);
    y[idx] = store<T>(pool_window_sum<A, I>(g, plane, oh, ow, read) * scale);
  }
}

template <typename T, typename I>
__global__ void pool_sum_adjoint_kernel(const T* __restrict__ y, PoolGeometry g, AccType<T> scale,
                                        T* __restrict__ x, I total) {
  using A = AccType<T>;
  const I height = static_cast<I>(g.height), width = static_cast<I>(g.width);
  auto read = [y](I i) { return load(y[i]); };
  for (I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<I>(gridDim.x) * blockDim.x) {
    const I w = idx % width;
    const I h = (idx / width) % height;
    const I plane = idx / (width * height);
    x[idx] = store<T>(pool_adjoint_gather<A, I>(g, plane, h, w, read) * scale);
  }
}

// Calls fn(I{}) with I = int32_t when all `extents` fit, else int64_t.
template <typename Fn>
void with_index_type(std::initializer_list<int64_t> extents, Fn&& fn) {
  if (fits_int32(extents)) {
    fn(int32_t{});
  } else {
    fn(int64_t{});
  }
}

}  // namespace

void im2col_cuda(DType dtype, const void* image, const ConvGeometry& g, void* col, int64_t col_stride_n,
                 int64_t col_stride_r, void* stream) {
  const int64_t total = g.batch * g.rows() * g.positions();
  if (total == 0) return;
  const bool row_major = col_stride_n < col_stride_r;
  const int64_t image_size = g.batch * g.channels * g.height * g.width;
  const int64_t col_extent = (g.batch - 1) * col_stride_n + (g.rows() - 1) * col_stride_r + g.positions();
  cuda::cuda_float_dtype_switch(dtype, "im2col", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    with_index_type({total, image_size, col_extent}, [&](auto index) {
      using I = decltype(index);
      im2col_kernel<T, I><<<cuda::memory_bound_blocks(total), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
          static_cast<const T*>(image), g, static_cast<T*>(col), static_cast<I>(col_stride_n),
          static_cast<I>(col_stride_r), row_major, static_cast<I>(total));
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void col2im_cuda(DType dtype, const void* col, const ConvGeometry& g, int64_t col_stride_n, int64_t col_stride_r,
                 void* image, void* stream) {
  const int64_t total = g.batch * g.channels * g.height * g.width;
  if (total == 0) return;
  const int64_t col_extent = (g.batch - 1) * col_stride_n + (g.rows() - 1) * col_stride_r + g.positions();
  cuda::cuda_float_dtype_switch(dtype, "col2im", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    with_index_type({total, col_extent}, [&](auto index) {
      using I = decltype(index);
      col2im_kernel<T, I><<<cuda::memory_bound_blocks(total), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
          static_cast<const T*>(col), g, static_cast<I>(col_stride_n), static_cast<I>(col_stride_r),
          static_cast<T*>(image), static_cast<I>(total));
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void pool_sum_cuda(DType dtype, const void* x, const PoolGeometry& g, double scale, void* y, void* stream) {
  const int64_t total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  const int64_t x_size = g.planes * g.height * g.width;
  cuda::cuda_float_dtype_switch(dtype, "pool_sum", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    with_index_type({total, x_size}, [&](auto index) {
      using I = decltype(index);
      pool_sum_kernel<T, I><<<cuda::memory_bound_blocks(total), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
          static_cast<const T*>(x), g, static_cast<AccType<T>>(scale), static_cast<T*>(y), static_cast<I>(total));
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void pool_sum_adjoint_cuda(DType dtype, const void* y, const PoolGeometry& g, double scale, void* x, void* stream) {
  const int64_t total = g.planes * g.height * g.width;
  if (total == 0) return;
  const int64_t y_size = g.planes * g.out_h * g.out_w;
  cuda::cuda_float_dtype_switch(dtype, "pool_sum_adjoint", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    with_index_type({total, y_size}, [&](auto index) {
      using I = decltype(index);
      pool_sum_adjoint_kernel<T, I><<<cuda::memory_bound_blocks(total), cuda::kThreads, 0,
                                      cuda::stream_of(stream)>>>(static_cast<const T*>(y), g,
                                                                 static_cast<AccType<T>>(scale), static_cast<T*>(x),
                                                                 static_cast<I>(total));
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace tessera::kernels
