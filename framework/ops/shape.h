// Differentiable views and layout ops.
//
// defines: reshape, flatten, permute, transpose, slice, expand, squeeze, unsqueeze,
//          contiguous, cast (Tensor::to(DType)), slice_backward
//
// reshape/permute/transpose/slice/expand/squeeze/unsqueeze return views that share storage
// with their input (reshape copies only when the input's layout does not allow a view, like
// torch.reshape). Tensor's methods of the same names forward here.
#pragma once

#include <vector>

#include "framework/core/tensor.h"

namespace tessera {

Tensor reshape(const Tensor& x, const Shape& shape);  // one dimension may be -1
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
// Elements start, start+step, ... < end along dim (negative start/end count from the end;
// both are clamped to the dimension like Python slices).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor expand(const Tensor& x, const Shape& shape);  // -1 keeps a dimension
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);
Tensor cast(const Tensor& x, DType dtype);
// Zeros of `shape` with `g` written into slice(dim, start, end, step): the backward of slice.
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start, int64_t end, int64_t step);

}  // namespace tessera
