// CUDA elementwise kernels (kernels/elementwise.h). Contiguous operands move in 16-byte
// vectors with a grid-stride loop (the memory-bound fast path); broadcasting or strided
// operands use per-element index arithmetic.
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"
#include "kernels/elementwise_math.h"

namespace tessera::kernels {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;
using cuda::Vec;

template <UnaryOp Op, typename T, int N>
__global__ void unary_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, AccType<T> a, AccType<T> b) {
  using A = AccType<T>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t vectors = n / N;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors; v += stride) {
    Vec<T, N> in = reinterpret_cast<const Vec<T, N>*>(x)[v];
    Vec<T, N> out;
#pragma unroll
    for (int k = 0; k < N; ++k) out.v[k] = store<T>(unary_value<Op, A>(load(in.v[k]), a, b));
    reinterpret_cast<Vec<T, N>*>(y)[v] = out;
  }
  for (int64_t i = vectors * N + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    y[i] = store<T>(unary_value<Op, A>(load(x[i]), a, b));
}

template <BinaryOp Op, typename T, int N>
__global__ void binary_contiguous_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                         int64_t n) {
  using A = AccType<T>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t vectors = n / N;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors; v += stride) {
    Vec<T, N> va = reinterpret_cast<const Vec<T, N>*>(a)[v];
    Vec<T, N> vb = reinterpret_cast<const Vec<T, N>*>(b)[v];
    Vec<T, N> vo;
#pragma unroll
    for (int k = 0; k < N; ++k) vo.v[k] = store<T>(binary_value<Op, A>(load(va.v[k]), load(vb.v[k])));
    reinterpret_cast<Vec<T, N>*>(out)[v] = vo;
  }
  for (int64_t i = vectors * N + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    out[i] = store<T>(binary_value<Op, A>(load(a[i]), load(b[i])));
}

// One operand is a single element (scalar broadcast): the other streams contiguously.
template <BinaryOp Op, typename T, int N, bool ScalarIsLeft>
__global__ void binary_scalar_kernel(const T* __restrict__ tensor, const T* __restrict__ scalar,
                                     T* __restrict__ out, int64_t n) {
  using A = AccType<T>;
  const A s = load(*scalar);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t vectors = n / N;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors; v += stride) {
    Vec<T, N> vt = reinterpret_cast<const Vec<T, N>*>(tensor)[v];
    Vec<T, N> vo;
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const A t = load(vt.v[k]);
      vo.v[k] = store<T>(ScalarIsLeft ? binary_value<Op, A>(s, t) : binary_value<Op, A>(t, s));
    }
    reinterpret_cast<Vec<T, N>*>(out)[v] = vo;
  }
  for (int64_t i = vectors * N + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const A t = load(tensor[i]);
    out[i] = store<T>(ScalarIsLeft ? binary_value<Op, A>(s, t) : binary_value<Op, A>(t, s));
  }
}

template <BinaryOp Op, typename T>
__global__ void binary_strided_kernel(const T* __restrict__ a, Layout la, const T* __restrict__ b, Layout lb,
                                      T* __restrict__ out, int64_t n) {
  using A = AccType<T>;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = store<T>(binary_value<Op, A>(load(a[la.offset_of(i)]), load(b[lb.offset_of(i)])));
}

template <UnaryOp Op, int Order, typename T, int N>
__global__ void unary_grad_kernel(const T* __restrict__ g, const T* __restrict__ x, T* __restrict__ out, int64_t n,
                                  AccType<T> a) {
  using A = AccType<T>;
  auto f = [a](A gv, A xv) {
    return Order == 1 ? gv * unary_derivative<Op, A>(xv, a) : gv * unary_second_derivative<Op, A>(xv, a);
  };
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t vectors = n / N;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors; v += stride) {
    Vec<T, N> vg = reinterpret_cast<const Vec<T, N>*>(g)[v];
    Vec<T, N> vx = reinterpret_cast<const Vec<T, N>*>(x)[v];
    Vec<T, N> vo;
#pragma unroll
    for (int k = 0; k < N; ++k) vo.v[k] = store<T>(f(load(vg.v[k]), load(vx.v[k])));
    reinterpret_cast<Vec<T, N>*>(out)[v] = vo;
  }
  for (int64_t i = vectors * N + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    out[i] = store<T>(f(load(g[i]), load(x[i])));
}

}  // namespace

void unary_cuda(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, UnaryParams params, void* stream) {
  if (n == 0) return;
  cuda::cuda_float_dtype_switch(dtype, "unary op", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    with_unary_op(op, [&](auto op_tag) {
      constexpr UnaryOp kOp = decltype(op_tag)::value;
      const auto s = cuda::stream_of(stream);
      if (cuda::aligned16(x) && cuda::aligned16(y)) {
        constexpr int N = cuda::vec_width<T>();
        unary_kernel<kOp, T, N><<<cuda::memory_bound_blocks(n / N + 1), cuda::kThreads, 0, s>>>(
            static_cast<const T*>(x), static_cast<T*>(y), n, static_cast<A>(params.a), static_cast<A>(params.b));
      } else {
        unary_kernel<kOp, T, 1><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, s>>>(
            static_cast<const T*>(x), static_cast<T*>(y), n, static_cast<A>(params.a), static_cast<A>(params.b));
      }
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void binary_cuda(BinaryOp op, DType dtype, const void* a, Layout la, const void* b, Layout lb, void* out,
                 void* stream) {
  Layout out_layout;
  out_layout.ndim = la.ndim;
  int64_t stride = 1;
  for (int d = la.ndim - 1; d >= 0; --d) {
    out_layout.sizes[d] = la.sizes[d];
    out_layout.strides[d] = stride;
    stride *= la.sizes[d];
  }
  Layout layouts[3] = {la, lb, out_layout};
  coalesce_layouts(layouts, 3);
  const int64_t n = layouts[0].numel();
  if (n == 0) return;
  const bool a_contiguous = layouts[0].ndim == 1 && layouts[0].strides[0] == 1;
  const bool b_contiguous = layouts[1].ndim == 1 && layouts[1].strides[0] == 1;
  const bool a_scalar = layouts[0].ndim == 1 && layouts[0].strides[0] == 0;
  const bool b_scalar = layouts[1].ndim == 1 && layouts[1].strides[0] == 0;
  const auto s = cuda::stream_of(stream);
  cuda::cuda_float_dtype_switch(dtype, "binary op", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    constexpr int N = cuda::vec_width<T>();
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    with_binary_op(op, [&](auto op_tag) {
      constexpr BinaryOp kOp = decltype(op_tag)::value;
      const bool vec_ok = cuda::aligned16(po);
      if (a_contiguous && b_contiguous && vec_ok && cuda::aligned16(pa) && cuda::aligned16(pb)) {
        binary_contiguous_kernel<kOp, T, N><<<cuda::memory_bound_blocks(n / N + 1), cuda::kThreads, 0, s>>>(pa, pb, po, n);
      } else if (a_contiguous && b_scalar && vec_ok && cuda::aligned16(pa)) {
        binary_scalar_kernel<kOp, T, N, false><<<cuda::memory_bound_blocks(n / N + 1), cuda::kThreads, 0, s>>>(pa, pb, po, n);
      } else if (a_scalar && b_contiguous && vec_ok && cuda::aligned16(pb)) {
        binary_scalar_kernel<kOp, T, N, true><<<cuda::memory_bound_blocks(n / N + 1), cuda::kThreads, 0, s>>>(pb, pa, po, n);
      } else {
        binary_strided_kernel<kOp, T><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, s>>>(
            pa, layouts[0], pb, layouts[1], po, n);
      }
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void unary_grad_cuda(UnaryOp op, int order, DType dtype, const void* g, const void* x, void* out, int64_t n,
                     UnaryParams params, void* stream) {
  if (n == 0) return;
  cuda::cuda_float_dtype_switch(dtype, "activation backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    constexpr int N = cuda::vec_width<T>();
    const bool vec = cuda::aligned16(g) && cuda::aligned16(x) && cuda::aligned16(out);
    const auto s = cuda::stream_of(stream);
    with_activation_op(op, [&](auto op_tag) {
      constexpr UnaryOp kOp = decltype(op_tag)::value;
      const auto pg = static_cast<const T*>(g);
      const auto px = static_cast<const T*>(x);
      auto po = static_cast<T*>(out);
      const A a = static_cast<A>(params.a);
      if (order == 1) {
        if (vec) unary_grad_kernel<kOp, 1, T, N><<<cuda::memory_bound_blocks(n / N + 1), cuda::kThreads, 0, s>>>(pg, px, po, n, a);
        else unary_grad_kernel<kOp, 1, T, 1><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, s>>>(pg, px, po, n, a);
      } else {
        if (vec) unary_grad_kernel<kOp, 2, T, N><<<cuda::memory_bound_blocks(n / N + 1), cuda::kThreads, 0, s>>>(pg, px, po, n, a);
        else unary_grad_kernel<kOp, 2, T, 1><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, s>>>(pg, px, po, n, a);
      }
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace tessera::kernels
