// Flat-buffer packing for communication: many tensors into one contiguous buffer and back, with
// a dtype conversion and a scale on the way.
//
// defines: FlatSegment, pack_flat_cpu, unpack_flat_cpu, pack_flat_cuda, unpack_flat_cuda
//
// The data-parallel reducer sends a bucket of gradients as one buffer in the wire dtype, ZeRO
// reduce-scatters all gradients at once and all-gathers the parameters, and
// broadcast_parameters sends a module's weights per dtype: all of them move tensors between
// their own storage and a flat buffer.
//   pack:   flat[offset + j] = cast<flat dtype>(tensor[j] * scale)     (tensor null: zeros)
//   unpack: tensor[j] = cast<tensor dtype>(flat[offset + j] * scale)   (tensor null: skipped)
// for j in [0, numel) of every segment. Arithmetic is in float (double when either side is
// f64); each value is rounded once. No reduction happens, so results do not depend on the
// thread count or launch shape. On CUDA one launch handles up to kMaxSegmentsPerLaunch
// segments (their pointers travel in the kernel argument), each block one chunk of one segment.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

struct FlatSegment {
  void* tensor = nullptr;  // contiguous data of `numel` elements, or null (see above)
  int64_t numel = 0;
  int64_t offset = 0;      // first element in the flat buffer
};

constexpr int kMaxSegmentsPerLaunch = 512;

void pack_flat_cpu(DType tensor_dtype, const FlatSegment* segments, int64_t count, DType flat_dtype, void* flat,
                   double scale);
void unpack_flat_cpu(DType flat_dtype, const void* flat, DType tensor_dtype, const FlatSegment* segments,
                     int64_t count, double scale);

#ifdef TESSERA_WITH_CUDA
void pack_flat_cuda(DType tensor_dtype, const FlatSegment* segments, int64_t count, DType flat_dtype, void* flat,
                    double scale, void* stream);
void unpack_flat_cuda(DType flat_dtype, const void* flat, DType tensor_dtype, const FlatSegment* segments,
                      int64_t count, double scale, void* stream);
#endif

}  // namespace tessera::kernels
