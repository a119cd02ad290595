#include "framework/ops/reduce.h"

#include <algorithm>

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/shape.h"

namespace tessera {
namespace ops {

std::vector<int64_t> reduction_dims(const char* op, const Tensor& x, const std::vector<int64_t>& dims) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(normalize_dim(op, d, x.dim()));
  std::sort(out.begin(), out.end());
  TESSERA_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": a dimension is repeated");
  if (x.dim() == 0) out.clear();
  return out;
}

Shape keepdim_shape(const Shape& shape, const std::vector<int64_t>& dims) {
  Shape out = shape;
  for (int64_t d : dims) out[d] = 1;
  return out;
}

Shape dropdim_shape(const Shape& shape, const std::vector<int64_t>& dims) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) out.push_back(shape[d]);
  return out;
}

Tensor reduce_raw(kernels::ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims) {
  check_floating("reduce", x);
  const Shape out_shape = keepdim_shape(x.shape(), dims);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  Tensor in = x;
  int64_t outer = 1, reduce = 1, inner = 1;
  const bool adjacent = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  if (adjacent && x.is_contiguous()) {
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (!dims.empty() && d < dims.front()) outer *= x.shape()[d];
      else if (!dims.empty() && d > dims.back()) inner *= x.shape()[d];
      else reduce *= x.shape()[d];
    }
    if (dims.empty()) reduce = 1, outer = x.numel();
  } else {  // move reduced dims last, then reduce rows
    std::vector<int64_t> order;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (!std::binary_search(dims.begin(), dims.end(), d)) order.push_back(d), outer *= x.shape()[d];
    for (int64_t d : dims) order.push_back(d), reduce *= x.shape()[d];
    NoGradGuard no_grad;
    in = permute(x, order).clone_data();
  }
  TESSERA_CHECK(reduce > 0, "reduce: cannot reduce over an empty dimension of ", shape_str(x.shape()));
  TESSERA_DEVICE_DISPATCH(out, kernels::reduce_cpu(op, in.dtype(), in.data_ptr(), out.data_ptr(), outer, reduce, inner),
                          kernels::reduce_cuda(op, in.dtype(), in.data_ptr(), out.data_ptr(), outer, reduce, inner,
                                               stream_for(out)));
  return out;
}

}  // namespace ops

namespace {

struct SumBackward : autograd::Node {
  Shape input_shape, keep_shape;
  double scale = 1.0;  // 1/n for mean
  std::string name() const override { return scale == 1.0 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    Tensor grad = expand(reshape(g[0], keep_shape), input_shape);
    return {scale == 1.0 ? grad : affine(grad, scale, 0.0)};
  }
};

Tensor sum_impl(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim, bool is_mean) {
  const char* name = is_mean ? "mean" : "sum";
  ops::check_defined(name, x);
  const std::vector<int64_t> dims = ops::reduction_dims(name, x, dims_in);
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  Tensor out = ops::reduce_raw(kernels::ReduceOp::sum, x, dims);
  const double scale = is_mean ? 1.0 / static_cast<double>(std::max<int64_t>(count, 1)) : 1.0;
  if (is_mean) out = ops::unary_raw(kernels::UnaryOp::affine, out, {scale, 0.0});
  if (!keepdim) out = out.as_strided(ops::dropdim_shape(x.shape(), dims), contiguous_strides(ops::dropdim_shape(x.shape(), dims)), 0);
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<SumBackward>({x});
    node->input_shape = x.shape();
    node->keep_shape = ops::keepdim_shape(x.shape(), dims);
    node->scale = scale;
    autograd::record(out, node);
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_impl(x, {}, false, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return sum_impl(x, dims, keepdim, false); }
Tensor mean(const Tensor& x) { return sum_impl(x, {}, false, true); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return sum_impl(x, dims, keepdim, true); }

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, int64_t correction) {
  const std::vector<int64_t> d = ops::reduction_dims("var", x, dims);
  int64_t count = 1;
  for (int64_t i : d) count *= x.shape()[i];
  TESSERA_CHECK(count - correction > 0, "var: ", count, " element(s) with correction ", correction);
  const Tensor centered = sub(x, mean(x, d, /*keepdim=*/true));
  const Tensor total = sum(square(centered), d, keepdim);
  return affine(total, 1.0 / static_cast<double>(count - correction), 0.0);
}

}  // namespace tessera
