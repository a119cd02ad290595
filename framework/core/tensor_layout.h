// Bridges tensors to the kernels layer's raw layouts.
//
// defines: tessera::layout_of, stream_for
#pragma once

#include "framework/core/tensor.h"
#include "kernels/layout.h"

namespace tessera {

// The tensor's shape and strides as a kernels::Layout; errors above kernels::kMaxDims dims.
kernels::Layout layout_of(const Tensor& t);
// Same with `shape`/`strides` given explicitly (e.g. a broadcast view of an operand).
kernels::Layout layout_of(const Shape& shape, const Shape& strides);
// The compute stream of the tensor's CUDA device (nullptr for CPU tensors).
void* stream_for(const Tensor& t);

}  // namespace tessera
