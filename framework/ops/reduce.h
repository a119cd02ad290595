// Differentiable reductions.
//
// defines: sum, mean, max (values along a dim), argmax, var, norm helpers
//
// `dims` may be empty (reduce everything) and may hold negative dims; keepdim keeps reduced
// dims as size 1. Sums accumulate in float (double for f64) in a fixed order: results are
// bitwise reproducible on a device.
#pragma once

#include <vector>

#include "framework/core/tensor.h"
#include "kernels/reduce.h"

namespace tessera {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Maximum along `dim`; the gradient flows to the first maximal element.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // i64, no gradient
// Variance along dims with Bessel's correction `correction` (1 = unbiased, like torch.var).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false, int64_t correction = 1);

namespace ops {
// Sorted, de-duplicated, non-negative dims (all dims when `dims` is empty).
std::vector<int64_t> reduction_dims(const char* op, const Tensor& x, const std::vector<int64_t>& dims);
// Raw reduction (no autograd) of `x` over sorted `dims`; the result has keepdim shape.
Tensor reduce_raw(kernels::ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims);
// The keepdim shape of x reduced over sorted dims, and the same without those dims.
Shape keepdim_shape(const Shape& shape, const std::vector<int64_t>& dims);
Shape dropdim_shape(const Shape& shape, const std::vector<int64_t>& dims);
}  // namespace ops

}  // namespace tessera
