#include "framework/ops/shape.h"

#include <numeric>

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"

namespace tessera {
namespace {

struct ReshapeBackward : autograd::Node {
  Shape input_shape;
  std::string name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {reshape(g[0], input_shape)}; }
};

struct PermuteBackward : autograd::Node {
  std::vector<int64_t> inverse;
  std::string name() const override { return "PermuteBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {permute(g[0], inverse)}; }
};

struct SliceBackward : autograd::Node {
  Shape input_shape;
  int64_t dim, start, end, step;
  std::string name() const override { return "SliceBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    return {slice_backward(g[0], input_shape, dim, start, end, step)};
  }
};

struct SliceBackwardBackward : autograd::Node {
  int64_t dim, start, end, step;
  std::string name() const override { return "SliceBackwardBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {slice(g[0], dim, start, end, step)}; }
};

struct ExpandBackward : autograd::Node {
  Shape input_shape;
  std::string name() const override { return "ExpandBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {sum_to(g[0], input_shape)}; }
};

struct IdentityBackward : autograd::Node {
  std::string name() const override { return "ContiguousBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {g[0]}; }
};

struct CastBackward : autograd::Node {
  DType input_dtype;
  std::string name() const override { return "CastBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {cast(g[0], input_dtype)}; }
};

// Strides for viewing a tensor of `shape`/`strides` as `new_shape` without copying, if possible.
bool view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape, Shape& out) {
  if (shape_numel(shape) == 0) {
    out = contiguous_strides(new_shape);
    return true;
  }
  // Group old dims into chunks that are contiguous among themselves; each chunk must map onto
  // a run of new dims with the same element count (the algorithm of torch's computeStride).
  out.assign(new_shape.size(), 0);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Tensor make_view(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset,
                 std::shared_ptr<autograd::Node> node) {
  Tensor out = x.as_strided(shape, strides, offset);
  if (node) autograd::record(out, node);
  return out;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& requested) {
  ops::check_defined("reshape", x);
  Shape shape = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TESSERA_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      TESSERA_CHECK(shape[i] >= 0, "reshape: bad size in ", shape_str(requested));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    TESSERA_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot reshape ", shape_str(x.shape()), " into ",
                  shape_str(requested));
    shape[infer] = x.numel() / known;
  }
  TESSERA_CHECK(shape_numel(shape) == x.numel(), "reshape: cannot reshape ", shape_str(x.shape()), " (",
                x.numel(), " elements) into ", shape_str(requested));
  if (shape == x.shape()) return x;
  std::shared_ptr<autograd::Node> node;
  if (autograd::needs_grad({x})) {
    auto n = autograd::make_node<ReshapeBackward>({x});
    n->input_shape = x.shape();
    node = n;
  }
  Shape strides;
  if (view_strides(x.shape(), x.strides(), shape, strides)) return make_view(x, shape, strides, x.storage_offset(), node);
  const Tensor packed = x.clone_data();
  return make_view(packed, shape, contiguous_strides(shape), 0, node);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  start_dim = ops::normalize_dim("flatten", start_dim, x.dim());
  end_dim = ops::normalize_dim("flatten", end_dim, x.dim());
  TESSERA_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + start_dim);
  int64_t n = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) n *= x.shape()[d];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + end_dim + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  ops::check_defined("permute", x);
  TESSERA_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), "permute: ", dims.size(), " dims given for a tensor of shape ",
                shape_str(x.shape()));
  Shape shape(dims.size()), strides(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = ops::normalize_dim("permute", dims[i], x.dim());
    TESSERA_CHECK(inverse[d] < 0, "permute: dimension ", d, " repeated");
    inverse[d] = static_cast<int64_t>(i);
    shape[i] = x.shape()[d];
    strides[i] = x.strides()[d];
  }
  std::shared_ptr<autograd::Node> node;
  if (autograd::needs_grad({x})) {
    auto n = autograd::make_node<PermuteBackward>({x});
    n->inverse = inverse;
    node = n;
  }
  return make_view(x, shape, strides, x.storage_offset(), node);
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[ops::normalize_dim("transpose", dim0, x.dim())], dims[ops::normalize_dim("transpose", dim1, x.dim())]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  ops::check_defined("slice", x);
  dim = ops::normalize_dim("slice", dim, x.dim());
  TESSERA_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t size = x.shape()[dim];
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  Shape shape = x.shape(), strides = x.strides();
  shape[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  std::shared_ptr<autograd::Node> node;
  if (autograd::needs_grad({x})) {
    auto n = autograd::make_node<SliceBackward>({x});
    n->input_shape = x.shape();
    n->dim = dim;
    n->start = start;
    n->end = end;
    n->step = step;
    node = n;
  }
  return make_view(x, shape, strides, x.storage_offset() + start * x.strides()[dim], node);
}

Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = Tensor::zeros(shape, g.dtype(), g.device());
  Shape strides = out.strides();
  Shape view_shape = shape;
  view_shape[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  copy_into(out.as_strided(view_shape, strides, start * out.strides()[dim]), g);
  if (autograd::needs_grad({g})) {
    auto n = autograd::make_node<SliceBackwardBackward>({g});
    n->dim = dim;
    n->start = start;
    n->end = end;
    n->step = step;
    autograd::record(out, n);
  }
  return out;
}

Tensor expand(const Tensor& x, const Shape& requested) {
  ops::check_defined("expand", x);
  TESSERA_CHECK(requested.size() >= x.shape().size(), "expand: cannot expand ", shape_str(x.shape()), " to ",
                shape_str(requested));
  const size_t lead = requested.size() - x.shape().size();
  Shape shape(requested.size()), strides(requested.size(), 0);
  for (size_t i = 0; i < requested.size(); ++i) {
    if (i < lead) {
      TESSERA_CHECK(requested[i] >= 0, "expand: bad size in ", shape_str(requested));
      shape[i] = requested[i];
      continue;
    }
    const int64_t have = x.shape()[i - lead];
    const int64_t want = requested[i] == -1 ? have : requested[i];
    TESSERA_CHECK(have == want || have == 1, "expand: cannot expand ", shape_str(x.shape()), " to ",
                  shape_str(requested), " (dimension ", i, ")");
    shape[i] = want;
    strides[i] = have == want ? x.strides()[i - lead] : 0;
  }
  if (shape == x.shape()) return x;
  std::shared_ptr<autograd::Node> node;
  if (autograd::needs_grad({x})) {
    auto n = autograd::make_node<ExpandBackward>({x});
    n->input_shape = x.shape();
    node = n;
  }
  return make_view(x, shape, strides, x.storage_offset(), node);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  dim = ops::normalize_dim("unsqueeze", dim, x.dim() + 1);
  Shape shape = x.shape();
  shape.insert(shape.begin() + dim, 1);
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  dim = ops::normalize_dim("squeeze", dim, x.dim());
  if (x.shape()[dim] != 1) return x;
  Shape shape = x.shape();
  shape.erase(shape.begin() + dim);
  return reshape(x, shape);
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = x.clone_data();
  if (autograd::needs_grad({x})) autograd::record(out, autograd::make_node<IdentityBackward>({x}));
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  copy_into(out, x);
  if (is_floating_point(dtype) && autograd::needs_grad({x})) {
    auto n = autograd::make_node<CastBackward>({x});
    n->input_dtype = x.dtype();
    autograd::record(out, n);
  }
  return out;
}

// ---- Tensor's differentiable conveniences ----

Tensor Tensor::reshape(const Shape& shape) const { return tessera::reshape(*this, shape); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const { return tessera::flatten(*this, start_dim, end_dim); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return tessera::permute(*this, dims); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return tessera::transpose(*this, dim0, dim1); }
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  return tessera::slice(*this, dim, start, end, step);
}
Tensor Tensor::expand(const Shape& shape) const { return tessera::expand(*this, shape); }
Tensor Tensor::unsqueeze(int64_t dim) const { return tessera::unsqueeze(*this, dim); }
Tensor Tensor::squeeze(int64_t dim) const { return tessera::squeeze(*this, dim); }
Tensor Tensor::contiguous() const { return tessera::contiguous(*this); }
Tensor Tensor::to(DType dtype) const { return tessera::cast(*this, dtype); }
Tensor Tensor::sum() const { return tessera::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return tessera::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return tessera::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return tessera::mean(*this, dims, keepdim); }

}  // namespace tessera
