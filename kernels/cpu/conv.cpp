// CPU im2col / col2im and pooling window sums (kernels/conv.h), the reference for
// kernels/cuda/conv.cu. Work is split over independent (image, row) or (plane) units, so the
// results do not depend on the thread count.
#include <algorithm>

#include "kernels/conv.h"
#include "kernels/conv_math.h"
#include "kernels/cpu/common.h"

namespace tessera::kernels {
namespace {

template <typename T>
void im2col_typed(const T* image, const ConvGeometry& g, T* col, int64_t col_stride_n, int64_t col_stride_r) {
  const int64_t rows = g.rows(), positions = g.positions();
  const T zero = cpu::store<T>(0.0f);
  cpu::parallel_for(g.batch * rows, [&](int64_t begin, int64_t end) {
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t n = unit / rows, r = unit % rows;
      T* out = col + n * col_stride_n + r * col_stride_r;
      for (int64_t l = 0; l < positions; ++l) {
        const int64_t src = im2col_source(g, n, r, l);
        out[l] = src < 0 ? zero : image[src];
      }
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(positions, 1)));
}

template <typename T>
void col2im_typed(const T* col, const ConvGeometry& g, int64_t col_stride_n, int64_t col_stride_r, T* image) {
  using A = cpu::AccType<T>;
  const int64_t plane = g.height * g.width;
  auto load = [col](int64_t i) { return cpu::load(col[i]); };
  cpu::parallel_for(g.batch * g.channels, [&](int64_t begin, int64_t end) {
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t n = unit / g.channels, c = unit % g.channels;
      T* out = image + unit * plane;
      for (int64_t h = 0; h < g.height; ++h)
        for (int64_t w = 0; w < g.width; ++w)
          out[h * g.width + w] = cpu::store<T>(col2im_gather<A>(g, n, c, h, w, col_stride_n, col_stride_r, load));
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(plane, 1)));
}

template <typename T>
void pool_sum_typed(const T* x, const PoolGeometry& g, double scale, T* y) {
  using A = cpu::AccType<T>;
  auto load = [x](int64_t i) { return cpu::load(x[i]); };
  const int64_t plane = g.out_h * g.out_w;
  cpu::parallel_for(g.planes, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p)
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow)
          y[p * plane + oh * g.out_w + ow] = cpu::store<T>(pool_window_sum<A>(g, p, oh, ow, load) * static_cast<A>(scale));
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(plane, 1)));
}

template <typename T>
void pool_sum_adjoint_typed(const T* y, const PoolGeometry& g, double scale, T* x) {
  using A = cpu::AccType<T>;
  auto load = [y](int64_t i) { return cpu::load(y[i]); };
  const int64_t plane = g.height * g.width;
  cpu::parallel_for(g.planes, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p)
      for (int64_t h = 0; h < g.height; ++h)
        for (int64_t w = 0; w < g.width; ++w)
          x[p * plane + h * g.width + w] =
              cpu::store<T>(pool_adjoint_gather<A>(g, p, h, w, load) * static_cast<A>(scale));
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(plane, 1)));
}

}  // namespace

void im2col_cpu(DType dtype, const void* image, const ConvGeometry& g, void* col, int64_t col_stride_n,
                int64_t col_stride_r) {
  float_dtype_switch(dtype, "im2col", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    im2col_typed(static_cast<const T*>(image), g, static_cast<T*>(col), col_stride_n, col_stride_r);
  });
}

void col2im_cpu(DType dtype, const void* col, const ConvGeometry& g, int64_t col_stride_n, int64_t col_stride_r,
                void* image) {
  float_dtype_switch(dtype, "col2im", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    col2im_typed(static_cast<const T*>(col), g, col_stride_n, col_stride_r, static_cast<T*>(image));
  });
}

void pool_sum_cpu(DType dtype, const void* x, const PoolGeometry& g, double scale, void* y) {
  float_dtype_switch(dtype, "pool_sum", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_sum_typed(static_cast<const T*>(x), g, scale, static_cast<T*>(y));
  });
}

void pool_sum_adjoint_cpu(DType dtype, const void* y, const PoolGeometry& g, double scale, void* x) {
  float_dtype_switch(dtype, "pool_sum_adjoint", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    pool_sum_adjoint_typed(static_cast<const T*>(y), g, scale, static_cast<T*>(x));
  });
}

}  // namespace tessera::kernels
