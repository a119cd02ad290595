// Device dispatch for flat-buffer packing (flat.h).
#include "framework/dist/flat.h"

#include "framework/core/cuda_context.h"
#include "framework/core/error.h"

namespace tessera::dist {

void pack_segments(DType tensor_dtype, const std::vector<kernels::FlatSegment>& segments, const Tensor& flat,
                   double scale) {
  TESSERA_ASSERT(flat.is_contiguous());
  const auto count = static_cast<int64_t>(segments.size());
  if (flat.device().is_cpu()) {
    kernels::pack_flat_cpu(tensor_dtype, segments.data(), count, flat.dtype(), flat.data_ptr(), scale);
    return;
  }
#ifdef TESSERA_WITH_CUDA
  kernels::pack_flat_cuda(tensor_dtype, segments.data(), count, flat.dtype(), flat.data_ptr(), scale,
                          cuda::compute_stream(flat.device().index));
#else
  TESSERA_ASSERT(false, "a CUDA tensor in a build without CUDA");
#endif
}

void unpack_segments(const Tensor& flat, DType tensor_dtype, const std::vector<kernels::FlatSegment>& segments,
                     double scale) {
  TESSERA_ASSERT(flat.is_contiguous());
  const auto count = static_cast<int64_t>(segments.size());
  if (flat.device().is_cpu()) {
    kernels::unpack_flat_cpu(flat.dtype(), flat.data_ptr(), tensor_dtype, segments.data(), count, scale);
    return;
  }
#ifdef TESSERA_WITH_CUDA
  kernels::unpack_flat_cuda(flat.dtype(), flat.data_ptr(), tensor_dtype, segments.data(), count, scale,
                            cuda::compute_stream(flat.device().index));
#else
  TESSERA_ASSERT(false, "a CUDA tensor in a build without CUDA");
#endif
}

}  // namespace tessera::dist
