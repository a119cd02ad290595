// Matrix products.
//
// defines: matmul (torch.matmul semantics: 1-D operands, broadcast batch dims), linear
//
// Transposed operands are passed to the GEMM as transposed, not copied; a 2-D right operand
// with a batched left operand becomes one large GEMM (the Linear layer's case).
#pragma once

#include "framework/core/tensor.h"

namespace tessera {

Tensor matmul(const Tensor& a, const Tensor& b);
// x @ weight^T + bias, weight [out, in], bias [out] (optional).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace tessera
