// CPU copy and fill kernels (kernels/copy.h).
#include <cstring>

#include "framework/core/dtype.h"
#include "kernels/copy.h"
#include "kernels/cpu/common.h"

namespace tessera::kernels {

void copy_strided_cpu(DType src_dtype, const void* src, Layout src_layout, DType dst_dtype, void* dst,
                      Layout dst_layout) {
  Layout layouts[2] = {src_layout, dst_layout};
  coalesce_layouts(layouts, 2);
  const Layout& sl = layouts[0];
  const Layout& dl = layouts[1];
  const int64_t n = sl.numel();
  if (n == 0) return;
  if (src_dtype == dst_dtype && sl.ndim == 1 && sl.strides[0] == 1 && dl.strides[0] == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * dtype_size(src_dtype));
    return;
  }
  dtype_switch(src_dtype, [&](auto* s_tag) {
    using S = std::remove_pointer_t<decltype(s_tag)>;
    dtype_switch(dst_dtype, [&](auto* d_tag) {
      using D = std::remove_pointer_t<decltype(d_tag)>;
      const S* s = static_cast<const S*>(src);
      D* d = static_cast<D*>(dst);
      if (sl.ndim == 1) {
        const int64_t ss = sl.strides[0], ds = dl.strides[0];
        cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) d[i * ds] = cpu::cast_value<D>(s[i * ss]);
        });
      } else {
        cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) d[dl.offset_of(i)] = cpu::cast_value<D>(s[sl.offset_of(i)]);
        });
      }
    });
  });
}

void fill_cpu(DType dtype, void* dst, int64_t n, double value) {
  dtype_switch(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T v = cpu::cast_value<T>(value);
    T* d = static_cast<T*>(dst);
    cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) d[i] = v;
    });
  });
}

}  // namespace tessera::kernels
