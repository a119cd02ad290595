// Index, shape and selection ops (framework/ops/index.h): argument checks, device dispatch to
// kernels/index.h, and backward nodes written with these same ops, so second derivatives work
// (index_select <-> index_add, gather <-> scatter_add, cat <-> slice/split, where <-> where).
#include "framework/ops/index.h"

#include <algorithm>

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/shape.h"
#include "kernels/index.h"

namespace tessera {
namespace {

// ---- argument helpers ----

void check_index_tensor(const char* op, const Tensor& index, const Tensor& data) {
  ops::check_defined(op, index, "index");
  TESSERA_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, op, ": index must be i64 or i32, got ",
                dtype_name(index.dtype()), " of shape ", shape_str(index.shape()));
  ops::check_same_device(op, data, index);
}

// Row-major coordinates of element `position` of `shape`, as "[i, j]".
std::string coordinates(const Shape& shape, int64_t position) {
  Shape coords(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    coords[d] = position % std::max<int64_t>(shape[d], 1);
    position /= std::max<int64_t>(shape[d], 1);
  }
  return shape_str(coords);
}

// On CPU, throws if an index lies outside [0, bound). `range` says what the index selects from.
void check_index_range(const char* op, const Tensor& index, int64_t bound, const std::string& range) {
  if (!index.device().is_cpu() || index.numel() == 0) return;
  int64_t value = 0;
  const int64_t at = kernels::find_bad_index_cpu(index.dtype(), index.data_ptr(), layout_of(index), bound, &value);
  TESSERA_CHECK(at < 0, op, ": index ", value, " at position ", coordinates(index.shape(), at), " of the index tensor ",
                shape_str(index.shape()), " is out of range for ", range, " (valid indices are 0..", bound - 1, ")");
}

std::string dim_range(int64_t dim, int64_t size) { return detail::cat("dimension ", dim, " of size ", size); }

int64_t outer_size(const Shape& shape, int64_t dim) {
  int64_t n = 1;
  for (int64_t d = 0; d < dim; ++d) n *= shape[d];
  return n;
}

int64_t inner_size(const Shape& shape, int64_t dim) {
  int64_t n = 1;
  for (int64_t d = dim + 1; d < static_cast<int64_t>(shape.size()); ++d) n *= shape[d];
  return n;
}

int64_t tensor_dim(const char* op, const Tensor& x, int64_t dim) {
  TESSERA_CHECK(x.dim() >= 1, op, ": expected a tensor with at least one dimension, got a scalar");
  return ops::normalize_dim(op, dim, x.dim());
}

// ---- backward nodes ----

struct CatBackward : autograd::Node {
  int64_t dim = 0;
  std::vector<int64_t> sizes;
  std::string name() const override { return "CatBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    std::vector<Tensor> out(sizes.size());
    int64_t start = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      if (needs_input_grad(k)) out[k] = slice(g[0], dim, start, start + sizes[k]);
      start += sizes[k];
    }
    return out;
  }
};

struct SplitBackward : autograd::Node {
  int64_t dim = 0;
  std::string name() const override { return "SplitBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {cat(g, dim)}; }
};

Tensor index_add_impl(const Tensor& base, const Shape& shape, int64_t dim, const Tensor& index,
                      const Tensor& source);
Tensor scatter_add_impl(const Tensor& base, const Shape& shape, int64_t dim, const Tensor& index,
                        const Tensor& source);

struct IndexSelectBackward : autograd::Node {
  int64_t dim = 0;
  Shape input_shape;
  autograd::SavedTensor index;
  std::string name() const override { return "IndexSelectBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    return {index_add_impl(Tensor(), input_shape, dim, index.unpack(), g[0])};
  }
  void release_saved() override { index.reset(); }
};

// Inputs: base, source.
struct IndexAddBackward : autograd::Node {
  int64_t dim = 0;
  autograd::SavedTensor index;
  std::string name() const override { return "IndexAddBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    Tensor g_base, g_source;
    if (needs_input_grad(0)) g_base = g[0];
    if (needs_input_grad(1)) g_source = index_select(g[0], dim, index.unpack());
    return {g_base, g_source};
  }
  void release_saved() override { index.reset(); }
};

struct GatherBackward : autograd::Node {
  int64_t dim = 0;
  Shape input_shape;
  autograd::SavedTensor index;
  std::string name() const override { return "GatherBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    return {scatter_add_impl(Tensor(), input_shape, dim, index.unpack(), g[0])};
  }
  void release_saved() override { index.reset(); }
};

// Inputs: base, source.
struct ScatterAddBackward : autograd::Node {
  int64_t dim = 0;
  autograd::SavedTensor index;
  std::string name() const override { return "ScatterAddBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    Tensor g_base, g_source;
    if (needs_input_grad(0)) g_base = g[0];
    if (needs_input_grad(1)) g_source = gather(g[0], dim, index.unpack());
    return {g_base, g_source};
  }
  void release_saved() override { index.reset(); }
};

struct EmbeddingBackward : autograd::Node {
  Shape weight_shape;
  autograd::SavedTensor flat_indices;
  std::string name() const override { return "EmbeddingBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    const Tensor rows = reshape(g[0], {-1, weight_shape[1]});
    return {index_add_impl(Tensor(), weight_shape, 0, flat_indices.unpack(), rows)};
  }
  void release_saved() override { flat_indices.reset(); }
};

// Inputs: a, b.
struct WhereBackward : autograd::Node {
  autograd::SavedTensor condition;
  Shape a_shape, b_shape;
  std::string name() const override { return "WhereBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    const Tensor c = condition.unpack();
    const Tensor zero = Tensor::zeros({}, g[0].dtype(), g[0].device());
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(where(c, g[0], zero), a_shape);
    if (needs_input_grad(1)) gb = sum_to(where(c, zero, g[0]), b_shape);
    return {ga, gb};
  }
  void release_saved() override { condition.reset(); }
};

// ---- scatter-style implementations shared by the public ops and the backward nodes ----

// `base` may be undefined: then the destination is zeros of `shape` (the backward case).
Tensor index_add_impl(const Tensor& base, const Shape& shape, int64_t dim, const Tensor& index,
                      const Tensor& source) {
  const Tensor src = ops::contiguous_data(source);
  const Tensor idx = ops::contiguous_data(index);
  Tensor out = base.defined() ? base.clone_data() : Tensor::zeros(shape, source.dtype(), source.device());
  const int64_t outer = outer_size(shape, dim), inner = inner_size(shape, dim);
  TESSERA_DEVICE_DISPATCH(out, kernels::index_add_cpu(out.dtype(), out.data_ptr(), outer, shape[dim], inner,
                                                      idx.dtype(), idx.data_ptr(), idx.numel(), src.data_ptr()),
                          kernels::index_add_cuda(out.dtype(), out.data_ptr(), outer, shape[dim], inner, idx.dtype(),
                                                  idx.data_ptr(), idx.numel(), src.data_ptr(), stream_for(out)));
  if (autograd::needs_grad({base, source})) {
    auto node = autograd::make_node<IndexAddBackward>({base, source});
    node->dim = dim;
    node->index = autograd::SavedTensor(index, false);
    autograd::record(out, node);
  }
  return out;
}

Tensor scatter_add_impl(const Tensor& base, const Shape& shape, int64_t dim, const Tensor& index,
                        const Tensor& source) {
  Tensor out = base.defined() ? base.clone_data() : Tensor::zeros(shape, source.dtype(), source.device());
  Shape out_strides = out.strides();
  out_strides[dim] = 0;
  const kernels::Layout out_layout = layout_of(index.shape(), out_strides);
  TESSERA_DEVICE_DISPATCH(
      out,
      kernels::scatter_add_cpu(out.dtype(), out.data_ptr(), out_layout, out.strides()[dim], index.dtype(),
                               index.data_ptr(), layout_of(index), source.data_ptr(), layout_of(source)),
      kernels::scatter_add_cuda(out.dtype(), out.data_ptr(), out.numel(), out_layout, out.strides()[dim], shape[dim],
                                index.dtype(), index.data_ptr(), layout_of(index), source.data_ptr(),
                                layout_of(source), stream_for(out)));
  if (autograd::needs_grad({base, source})) {
    auto node = autograd::make_node<ScatterAddBackward>({base, source});
    node->dim = dim;
    node->index = autograd::SavedTensor(index, false);
    autograd::record(out, node);
  }
  return out;
}

// Checks for gather/scatter_add: index has x's rank and fits inside x except along dim.
void check_gather_shapes(const char* op, const Tensor& x, int64_t dim, const Tensor& index, const char* x_name) {
  TESSERA_CHECK(index.dim() == x.dim(), op, ": index ", shape_str(index.shape()), " must have as many dimensions as ",
                x_name, " ", shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d)
    TESSERA_CHECK(d == dim || index.shape()[d] <= x.shape()[d], op, ": index ", shape_str(index.shape()),
                  " is larger than ", x_name, " ", shape_str(x.shape()), " in dimension ", d);
}

Tensor where_raw(const Tensor& condition, const Tensor& a, const Tensor& b) {
  const Shape shape = ops::broadcast_shapes("where", ops::broadcast_shapes("where", condition.shape(), a.shape()),
                                           b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const kernels::Layout lc = ops::broadcast_layout(condition, shape), la = ops::broadcast_layout(a, shape),
                        lb = ops::broadcast_layout(b, shape);
  TESSERA_DEVICE_DISPATCH(out,
                          kernels::where_cpu(condition.dtype(), condition.data_ptr(), lc, a.dtype(), a.data_ptr(), la,
                                             b.data_ptr(), lb, out.data_ptr()),
                          kernels::where_cuda(condition.dtype(), condition.data_ptr(), lc, a.dtype(), a.data_ptr(),
                                              la, b.data_ptr(), lb, out.data_ptr(), stream_for(out)));
  return out;
}

}  // namespace

// ---- cat, stack, split ----

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  TESSERA_CHECK(!tensors.empty(), "cat: no tensors given");
  for (size_t k = 0; k < tensors.size(); ++k) ops::check_defined("cat", tensors[k], "a tensor in the list");
  const Tensor& first = tensors[0];
  dim = tensor_dim("cat", first, dim);
  Shape shape = first.shape();
  shape[dim] = 0;
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& t = tensors[k];
    ops::check_same_device("cat", first, t);
    ops::check_same_dtype("cat", first, t);
    bool compatible = t.dim() == first.dim();
    for (int64_t d = 0; compatible && d < t.dim(); ++d) compatible = d == dim || t.shape()[d] == first.shape()[d];
    TESSERA_CHECK(compatible, "cat: tensor ", k, " has shape ", shape_str(t.shape()), " but tensor 0 has shape ",
                  shape_str(first.shape()), "; all sizes must match except in dimension ", dim);
    sizes.push_back(t.shape()[dim]);
    shape[dim] += t.shape()[dim];
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  std::vector<Tensor> packed;
  std::vector<kernels::CatSource> sources;
  for (const Tensor& t : tensors) {
    packed.push_back(ops::contiguous_data(t));
    sources.push_back({packed.back().data_ptr(), t.shape()[dim]});
  }
  const int64_t outer = outer_size(shape, dim), inner = inner_size(shape, dim);
  const int count = static_cast<int>(sources.size());
  TESSERA_DEVICE_DISPATCH(out, kernels::cat_cpu(out.dtype(), sources.data(), count, out.data_ptr(), outer, shape[dim], inner),
                          kernels::cat_cuda(out.dtype(), sources.data(), count, out.data_ptr(), outer, shape[dim],
                                            inner, stream_for(out)));
  if (autograd::needs_grad(tensors)) {
    auto node = autograd::make_node<CatBackward>(tensors);
    node->dim = dim;
    node->sizes = sizes;
    autograd::record(out, node);
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  TESSERA_CHECK(!tensors.empty(), "stack: no tensors given");
  ops::check_defined("stack", tensors[0], "a tensor in the list");
  dim = ops::normalize_dim("stack", dim, tensors[0].dim() + 1);
  std::vector<Tensor> expanded;
  for (size_t k = 0; k < tensors.size(); ++k) {
    ops::check_defined("stack", tensors[k], "a tensor in the list");
    TESSERA_CHECK(tensors[k].shape() == tensors[0].shape(), "stack: tensor ", k, " has shape ",
                  shape_str(tensors[k].shape()), " but tensor 0 has shape ", shape_str(tensors[0].shape()));
    expanded.push_back(unsqueeze(tensors[k], dim));
  }
  return cat(expanded, dim);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  ops::check_defined("split", x);
  dim = tensor_dim("split", x, dim);
  TESSERA_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  const int64_t size = x.shape()[dim];
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < size; start += split_size) sizes.push_back(std::min(split_size, size - start));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  ops::check_defined("split", x);
  dim = tensor_dim("split", x, dim);
  TESSERA_CHECK(!sizes.empty(), "split: no sizes given");
  int64_t total = 0;
  for (int64_t s : sizes) {
    TESSERA_CHECK(s >= 0, "split: negative size ", s);
    total += s;
  }
  TESSERA_CHECK(total == x.shape()[dim], "split: sizes add up to ", total, " but dimension ", dim, " of ",
                shape_str(x.shape()), " has size ", x.shape()[dim]);
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape[dim] = s;
    pieces.push_back(x.as_strided(shape, x.strides(), x.storage_offset() + start * x.strides()[dim]));
    start += s;
  }
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<SplitBackward>({x});
    node->dim = dim;
    autograd::record(pieces, node);
  }
  return pieces;
}

// ---- index_select, index_add ----

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  ops::check_defined("index_select", x);
  dim = tensor_dim("index_select", x, dim);
  check_index_tensor("index_select", index, x);
  TESSERA_CHECK(index.dim() == 1, "index_select: index must be 1-D, got shape ", shape_str(index.shape()));
  check_index_range("index_select", index, x.shape()[dim], dim_range(dim, x.shape()[dim]));
  const Tensor in = ops::contiguous_data(x), idx = ops::contiguous_data(index);
  Shape shape = x.shape();
  shape[dim] = idx.numel();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  const int64_t outer = outer_size(shape, dim), inner = inner_size(shape, dim);
  TESSERA_DEVICE_DISPATCH(out, kernels::index_select_cpu(x.dtype(), in.data_ptr(), outer, x.shape()[dim], inner,
                                                         idx.dtype(), idx.data_ptr(), idx.numel(), out.data_ptr()),
                          kernels::index_select_cuda(x.dtype(), in.data_ptr(), outer, x.shape()[dim], inner,
                                                     idx.dtype(), idx.data_ptr(), idx.numel(), out.data_ptr(),
                                                     stream_for(out)));
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<IndexSelectBackward>({x});
    node->dim = dim;
    node->input_shape = x.shape();
    node->index = autograd::SavedTensor(idx, false);
    autograd::record(out, node);
  }
  return out;
}

Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source) {
  ops::check_defined("index_add", base, "base");
  ops::check_defined("index_add", source, "source");
  dim = tensor_dim("index_add", base, dim);
  ops::check_floating("index_add", base);
  ops::check_same_device("index_add", base, source);
  ops::check_same_dtype("index_add", base, source);
  check_index_tensor("index_add", index, base);
  TESSERA_CHECK(index.dim() == 1, "index_add: index must be 1-D, got shape ", shape_str(index.shape()));
  Shape expected = base.shape();
  expected[dim] = index.numel();
  TESSERA_CHECK(source.shape() == expected, "index_add: source has shape ", shape_str(source.shape()), " but base ",
                shape_str(base.shape()), " with ", index.numel(), " indices along dimension ", dim, " needs ",
                shape_str(expected));
  check_index_range("index_add", index, base.shape()[dim], dim_range(dim, base.shape()[dim]));
  return index_add_impl(base, base.shape(), dim, index, source);
}

// ---- gather, scatter_add ----

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  ops::check_defined("gather", x);
  dim = tensor_dim("gather", x, dim);
  check_index_tensor("gather", index, x);
  check_gather_shapes("gather", x, dim, index, "input");
  check_index_range("gather", index, x.shape()[dim], dim_range(dim, x.shape()[dim]));
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  Shape x_strides = x.strides();
  x_strides[dim] = 0;
  const kernels::Layout x_layout = layout_of(index.shape(), x_strides);
  TESSERA_DEVICE_DISPATCH(out,
                          kernels::gather_cpu(x.dtype(), x.data_ptr(), x_layout, x.strides()[dim], index.dtype(),
                                              index.data_ptr(), layout_of(index), out.data_ptr()),
                          kernels::gather_cuda(x.dtype(), x.data_ptr(), x_layout, x.strides()[dim], x.shape()[dim],
                                               index.dtype(), index.data_ptr(), layout_of(index), out.data_ptr(),
                                               stream_for(out)));
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<GatherBackward>({x});
    node->dim = dim;
    node->input_shape = x.shape();
    node->index = autograd::SavedTensor(index, false);
    autograd::record(out, node);
  }
  return out;
}

Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source) {
  ops::check_defined("scatter_add", base, "base");
  ops::check_defined("scatter_add", source, "source");
  dim = tensor_dim("scatter_add", base, dim);
  ops::check_floating("scatter_add", base);
  ops::check_same_device("scatter_add", base, source);
  ops::check_same_dtype("scatter_add", base, source);
  check_index_tensor("scatter_add", index, base);
  TESSERA_CHECK(source.shape() == index.shape(), "scatter_add: source ", shape_str(source.shape()),
                " must have the index's shape ", shape_str(index.shape()));
  check_gather_shapes("scatter_add", base, dim, index, "base");
  check_index_range("scatter_add", index, base.shape()[dim], dim_range(dim, base.shape()[dim]));
  return scatter_add_impl(base, base.shape(), dim, index, source);
}

// ---- embedding ----

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  ops::check_defined("embedding", weight, "weight");
  TESSERA_CHECK(weight.dim() == 2, "embedding: weight must be [num_embeddings, dim], got ", shape_str(weight.shape()));
  check_index_tensor("embedding", indices, weight);
  const int64_t rows = weight.shape()[0], width = weight.shape()[1];
  check_index_range("embedding", indices, rows,
                    detail::cat("an embedding table of ", rows, " rows (weight ", shape_str(weight.shape()), ")"));
  const Tensor w = ops::contiguous_data(weight);
  const Tensor packed = ops::contiguous_data(indices);
  const Tensor flat = packed.as_strided({packed.numel()}, {1}, packed.storage_offset());
  Shape shape = indices.shape();
  shape.push_back(width);
  Tensor out = Tensor::empty(shape, weight.dtype(), weight.device());
  TESSERA_DEVICE_DISPATCH(out, kernels::index_select_cpu(w.dtype(), w.data_ptr(), 1, rows, width, flat.dtype(),
                                                         flat.data_ptr(), flat.numel(), out.data_ptr()),
                          kernels::index_select_cuda(w.dtype(), w.data_ptr(), 1, rows, width, flat.dtype(),
                                                     flat.data_ptr(), flat.numel(), out.data_ptr(), stream_for(out)));
  if (autograd::needs_grad({weight})) {
    auto node = autograd::make_node<EmbeddingBackward>({weight});
    node->weight_shape = weight.shape();
    node->flat_indices = autograd::SavedTensor(flat, false);
    autograd::record(out, node);
  }
  return out;
}

// ---- eq, where ----

Tensor eq(const Tensor& a, const Tensor& b) {
  ops::check_defined("eq", a, "first operand");
  ops::check_defined("eq", b, "second operand");
  ops::check_same_device("eq", a, b);
  Tensor x = a, y = b;
  if (a.dtype() != b.dtype()) {  // compare mixed dtypes as f64 values
    NoGradGuard no_grad;
    x = cast(a, DType::f64);
    y = cast(b, DType::f64);
  }
  const Shape shape = ops::broadcast_shapes("eq", x.shape(), y.shape());
  Tensor out = Tensor::empty(shape, DType::f32, a.device());
  const kernels::Layout la = ops::broadcast_layout(x, shape), lb = ops::broadcast_layout(y, shape);
  TESSERA_DEVICE_DISPATCH(out, kernels::eq_cpu(x.dtype(), x.data_ptr(), la, y.data_ptr(), lb, out.data<float>()),
                          kernels::eq_cuda(x.dtype(), x.data_ptr(), la, y.data_ptr(), lb, out.data<float>(),
                                           stream_for(out)));
  return out;
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  ops::check_defined("where", condition, "condition");
  ops::check_defined("where", a, "first value");
  ops::check_defined("where", b, "second value");
  ops::check_same_device("where", condition, a);
  ops::check_same_device("where", a, b);
  ops::check_same_dtype("where", a, b);
  Tensor out = where_raw(condition, a, b);
  if (autograd::needs_grad({a, b})) {
    auto node = autograd::make_node<WhereBackward>({a, b});
    node->condition = autograd::SavedTensor(condition.detach(), false);
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    autograd::record(out, node);
  }
  return out;
}

}  // namespace tessera
