// Packing tensors into flat communication buffers on their device. Internal to framework/dist.
//
// defines: tessera::dist::pack_segments, unpack_segments
//
// Thin device dispatch over kernels/dist.h: CPU kernels run inline, CUDA kernels on the
// device's compute stream (so they are ordered with the surrounding tensor work).
#pragma once

#include <vector>

#include "framework/core/tensor.h"
#include "kernels/dist.h"

namespace tessera::dist {

// flat[seg.offset + j] = tensor[j] * scale, converted to flat's dtype (null tensor: zeros).
void pack_segments(DType tensor_dtype, const std::vector<kernels::FlatSegment>& segments, const Tensor& flat,
                   double scale = 1.0);
// tensor[j] = flat[seg.offset + j] * scale, converted to tensor_dtype (null tensor: skipped).
void unpack_segments(const Tensor& flat, DType tensor_dtype, const std::vector<kernels::FlatSegment>& segments,
                     double scale = 1.0);

}  // namespace tessera::dist
