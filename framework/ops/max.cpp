// max and argmax (declared in framework/ops/reduce.h).
//
// Both run kernels::argreduce over the [outer, reduce, inner] view of the input, which returns
// the maximum and the position of its first occurrence (a NaN counts as the maximum). The
// gradient of max goes to that one position: scatter_add of the incoming gradient into zeros,
// which is differentiable again (its backward is gather), so second derivatives work.
//
// max over all elements of a large tensor would give one GPU thread the whole reduction, so
// above kChunk elements it is computed as a max of per-chunk maxima (plus the tail): the first
// chunk holding the maximum, then the first position in it, is the first maximal element, so
// the result and its gradient are the same as a single pass, on every device.
#include <algorithm>

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/index.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape.h"

namespace tessera {
namespace {

constexpr int64_t kChunk = 4096;

struct ArgReduceResult {
  Tensor values;   // keepdim shape
  Tensor indices;  // keepdim shape, i64
};

ArgReduceResult argmax_raw(const char* op, const Tensor& x, int64_t dim) {
  ops::check_floating(op, x);
  const Tensor in = ops::contiguous_data(x);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.shape()[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.shape()[d];
  const int64_t reduce = x.shape()[dim];
  TESSERA_CHECK(reduce > 0, op, ": cannot reduce over dimension ", dim, " of size 0 in ", shape_str(x.shape()));
  const Shape keep = ops::keepdim_shape(x.shape(), {dim});
  ArgReduceResult r{Tensor::empty(keep, x.dtype(), x.device()), Tensor::empty(keep, DType::i64, x.device())};
  if (r.values.numel() == 0) return r;
  TESSERA_DEVICE_DISPATCH(x,
                          kernels::argreduce_cpu(kernels::ReduceOp::max, x.dtype(), in.data_ptr(), r.values.data_ptr(),
                                                 r.indices.data<int64_t>(), outer, reduce, inner),
                          kernels::argreduce_cuda(kernels::ReduceOp::max, x.dtype(), in.data_ptr(),
                                                  r.values.data_ptr(), r.indices.data<int64_t>(), outer, reduce,
                                                  inner, stream_for(x)));
  return r;
}

Tensor drop_dim(const Tensor& t, int64_t dim) {
  Shape shape = t.shape();
  shape.erase(shape.begin() + dim);
  return t.as_strided(shape, contiguous_strides(shape), t.storage_offset());
}

struct MaxBackward : autograd::Node {
  int64_t dim = 0;
  Shape input_shape;
  autograd::SavedTensor indices;  // keepdim shape
  std::string name() const override { return "MaxBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    const Tensor idx = indices.unpack();
    const Tensor zeros = Tensor::zeros(input_shape, g[0].dtype(), g[0].device());
    return {scatter_add(zeros, dim, idx, reshape(g[0], idx.shape()))};
  }
  void release_saved() override { indices.reset(); }
};

}  // namespace

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  ops::check_defined("max", x);
  if (x.dim() == 0) {
    ops::normalize_dim("max", dim, 0);
    return reshape(max(reshape(x, {1}), 0, false), {});
  }
  dim = ops::normalize_dim("max", dim, x.dim());
  const ArgReduceResult r = argmax_raw("max", x, dim);
  Tensor out = keepdim ? r.values : drop_dim(r.values, dim);
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<MaxBackward>({x});
    node->dim = dim;
    node->input_shape = x.shape();
    node->indices = autograd::SavedTensor(r.indices, false);
    autograd::record(out, node);
  }
  return out;
}

Tensor max(const Tensor& x) {
  ops::check_defined("max", x);
  TESSERA_CHECK(x.numel() > 0, "max: the input ", shape_str(x.shape()), " has no elements");
  const Tensor flat = reshape(x, {-1});
  const int64_t n = flat.numel();
  if (n <= kChunk) return max(flat, 0, false);
  const int64_t full = n / kChunk;
  const Tensor chunk_max = max(reshape(slice(flat, 0, 0, full * kChunk), {full, kChunk}), 1, false);
  if (full * kChunk == n) return max(chunk_max, 0, false);
  const Tensor tail_max = max(slice(flat, 0, full * kChunk, n), 0, true);
  return max(cat({chunk_max, tail_max}, 0), 0, false);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  ops::check_defined("argmax", x);
  if (x.dim() == 0) {
    ops::normalize_dim("argmax", dim, 0);
    return reshape(argmax(reshape(x, {1}), 0, false), {});
  }
  dim = ops::normalize_dim("argmax", dim, x.dim());
  const Tensor indices = argmax_raw("argmax", x, dim).indices;
  return keepdim ? indices : drop_dim(indices, dim);
}

}  // namespace tessera
