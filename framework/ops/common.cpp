#include "framework/ops/common.h"

namespace tessera::ops {

void check_defined(const char* op, const Tensor& t, const char* name) {
  TESSERA_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  TESSERA_CHECK(a.device() == b.device(), op, ": tensors are on different devices (", a.device().str(), " and ",
                b.device().str(), ")");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  TESSERA_CHECK(a.dtype() == b.dtype(), op, ": tensors have different dtypes (", dtype_name(a.dtype()), " ",
                shape_str(a.shape()), " and ", dtype_name(b.dtype()), " ", shape_str(b.shape()),
                "); cast one with .to(dtype)");
}

void check_floating(const char* op, const Tensor& t) {
  TESSERA_CHECK(is_floating_point(t.dtype()), op, ": expected a floating-point tensor, got ", dtype_name(t.dtype()),
                " of shape ", shape_str(t.shape()));
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TESSERA_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                  " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

kernels::Layout broadcast_layout(const Tensor& t, const Shape& out) {
  const size_t lead = out.size() - t.shape().size();
  Shape strides(out.size(), 0);
  for (size_t i = 0; i < t.shape().size(); ++i) strides[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return layout_of(out, strides);
}

int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim) {
  const int64_t n = std::max<int64_t>(ndim, 1);
  TESSERA_CHECK(dim >= -n && dim < n, op, ": dimension ", dim, " is out of range for a tensor with ", ndim,
                " dimension(s)");
  return dim < 0 ? dim + n : dim;
}

Tensor contiguous_data(const Tensor& t) { return t.is_contiguous() ? t : t.clone_data(); }

Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

}  // namespace tessera::ops
