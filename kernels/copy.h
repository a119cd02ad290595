// Copy and fill kernels: strided copies with dtype conversion, and constant fills.
//
// defines: copy_strided_cpu, fill_cpu, copy_strided_cuda, fill_cuda
//
// `copy_strided_*` writes dst[offset_of(i)] = convert(src[offset_of(i)]) for every i of the
// shared shape (both layouts carry the same sizes). Same-device only; cross-device copies are
// staged by the core (tensor.cpp).
#pragma once

#include "framework/core/dtype.h"
#include "kernels/layout.h"

namespace tessera::kernels {

void copy_strided_cpu(DType src_dtype, const void* src, Layout src_layout, DType dst_dtype, void* dst,
                      Layout dst_layout);
void fill_cpu(DType dtype, void* dst, int64_t n, double value);

#ifdef TESSERA_WITH_CUDA
void copy_strided_cuda(DType src_dtype, const void* src, Layout src_layout, DType dst_dtype, void* dst,
                       Layout dst_layout, void* stream);
void fill_cuda(DType dtype, void* dst, int64_t n, double value, void* stream);
#endif

}  // namespace tessera::kernels
