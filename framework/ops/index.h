// Differentiable index, shape and selection ops.
//
// defines: cat, stack, split, index_select, index_add, gather, scatter_add, embedding, eq, where
//
// Semantics follow PyTorch's functions of the same names (dims may be negative):
//  * cat / stack join tensors of one dtype and device; split returns views of its input (the
//    last piece may be smaller). Their gradients are slices and a concatenation.
//  * index_select(x, dim, index): index is 1-D i64 or i32; out.size(dim) = index.numel().
//    Its backward is index_add into zeros, whose backward is index_select again.
//  * index_add(base, dim, index, source): out-of-place base + contributions of source's slices
//    along dim; source.size(dim) = index.numel(), other sizes equal base's.
//  * gather(x, dim, index): out has index's shape, out[..., j, ...] = x[..., index[..., j, ...], ...]
//    with index.size(d) <= x.size(d) for d != dim (torch.gather). Backward: scatter_add.
//  * scatter_add(base, dim, index, source): out-of-place; source must have index's shape and
//    index.size(d) <= base.size(d) for d != dim. Backward: identity for base, gather for source.
//  * embedding(weight [V, D], indices of any shape) -> [..., D]; the gradient for weight is
//    dense and deterministic on both devices (contributions summed in index-position order).
//  * eq(a, b) broadcasts, takes any dtypes (different dtypes are compared as f64) and returns
//    f32 0/1; no gradient. where(condition, a, b) broadcasts all three, picks a where the
//    condition (any dtype) is non-zero, and is differentiable in a and b.
// index_add and scatter_add (and so every backward here) are deterministic: no atomics.
//
// Bad indices: on CPU, an index outside [0, size) throws tessera::Error naming the op, the
// offending index value, its position in the index tensor and the valid range, before anything
// is written. CUDA indices are not inspected on the host (that would need a synchronisation):
// the kernel raises a device-side assertion and touches no memory for that index, and the CUDA
// stream fails with "device-side assert triggered" at the next synchronising call.
#pragma once

#include <vector>

#include "framework/core/tensor.h"

namespace tessera {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source);
Tensor embedding(const Tensor& weight, const Tensor& indices);

Tensor eq(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

}  // namespace tessera
