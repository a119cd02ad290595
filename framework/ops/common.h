// Helpers for writing ops: device dispatch, argument checks, broadcasting.
//
// defines: TESSERA_DEVICE_DISPATCH, check_same_device, check_same_dtype, check_floating,
//          broadcast_shapes, broadcast_layout, normalize_dim, contiguous_data, empty_like
#pragma once

#include <string>
#include <vector>

#include "framework/autograd/node.h"
#include "framework/core/error.h"
#include "framework/core/tensor.h"
#include "framework/core/tensor_layout.h"

// Runs `cpu_call` for CPU tensors and `cuda_call` for CUDA tensors; in a build without CUDA a
// CUDA tensor cannot exist, so only the CPU call is compiled.
#ifdef TESSERA_WITH_CUDA
#define TESSERA_DEVICE_DISPATCH(tensor, cpu_call, cuda_call) \
  do {                                                       \
    if ((tensor).device().is_cpu()) {                        \
      cpu_call;                                              \
    } else {                                                 \
      cuda_call;                                             \
    }                                                        \
  } while (0)
#else
#define TESSERA_DEVICE_DISPATCH(tensor, cpu_call, cuda_call) \
  do {                                                       \
    cpu_call;                                                \
  } while (0)
#endif

namespace tessera::ops {

void check_defined(const char* op, const Tensor& t, const char* name = "input");
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_floating(const char* op, const Tensor& t);
// Broadcast shape of a and b (NumPy rules); error names the op and both shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// `t` viewed with shape `out` (stride 0 on broadcast dims) as a kernel layout.
kernels::Layout broadcast_layout(const Tensor& t, const Shape& out);
// Wraps negative dims; error names the op.
int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim);
// `t` itself if contiguous, otherwise a contiguous copy (raw, no history).
Tensor contiguous_data(const Tensor& t);
Tensor empty_like(const Tensor& t);

}  // namespace tessera::ops
