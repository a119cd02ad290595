// CPU elementwise kernels (kernels/elementwise.h).
#include "kernels/cpu/common.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_math.h"

namespace tessera::kernels {

void unary_cpu(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, UnaryParams params) {
  float_dtype_switch(dtype, "unary op", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
    const A a = static_cast<A>(params.a), b = static_cast<A>(params.b);
    with_unary_op(op, [&](auto op_tag) {
      constexpr UnaryOp kOp = decltype(op_tag)::value;
      cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = cpu::store<T>(unary_value<kOp, A>(cpu::load(in[i]), a, b));
      });
    });
  });
}

void binary_cpu(BinaryOp op, DType dtype, const void* a, Layout la, const void* b, Layout lb, void* out) {
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
  const Layout& l0 = layouts[0];
  const Layout& l1 = layouts[1];
  const int64_t n = l0.numel();
  float_dtype_switch(dtype, "binary op", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    with_binary_op(op, [&](auto op_tag) {
      constexpr BinaryOp kOp = decltype(op_tag)::value;
      if (l0.ndim == 1) {  // contiguous or scalar-broadcast operands: the common case
        const int64_t sa = l0.strides[0], sb = l1.strides[0];
        cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            po[i] = cpu::store<T>(binary_value<kOp, A>(cpu::load(pa[i * sa]), cpu::load(pb[i * sb])));
        });
        return;
      }
      // Innermost dimension as a tight loop, outer dimensions by index arithmetic.
      const int inner_dim = l0.ndim - 1;
      const int64_t inner = l0.sizes[inner_dim];
      const int64_t sa = l0.strides[inner_dim], sb = l1.strides[inner_dim];
      Layout outer0 = l0, outer1 = l1;
      outer0.ndim = outer1.ndim = inner_dim;
      const int64_t rows = n / inner;
      cpu::parallel_for(rows, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* ra = pa + outer0.offset_of(r);
          const T* rb = pb + outer1.offset_of(r);
          T* ro = po + r * inner;
          for (int64_t i = 0; i < inner; ++i)
            ro[i] = cpu::store<T>(binary_value<kOp, A>(cpu::load(ra[i * sa]), cpu::load(rb[i * sb])));
        }
      }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(inner, 1)));
    });
  });
}

void unary_grad_cpu(UnaryOp op, int order, DType dtype, const void* g, const void* x, void* out, int64_t n,
                    UnaryParams params) {
  float_dtype_switch(dtype, "activation backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const T* pg = static_cast<const T*>(g);
    const T* px = static_cast<const T*>(x);
    T* po = static_cast<T*>(out);
    const A a = static_cast<A>(params.a);
    with_activation_op(op, [&](auto op_tag) {
      constexpr UnaryOp kOp = decltype(op_tag)::value;
      cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
        if (order == 1) {
          for (int64_t i = begin; i < end; ++i)
            po[i] = cpu::store<T>(cpu::load(pg[i]) * unary_derivative<kOp, A>(cpu::load(px[i]), a));
        } else {
          for (int64_t i = begin; i < end; ++i)
            po[i] = cpu::store<T>(cpu::load(pg[i]) * unary_second_derivative<kOp, A>(cpu::load(px[i]), a));
        }
      });
    });
  });
}

}  // namespace tessera::kernels
