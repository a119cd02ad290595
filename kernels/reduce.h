// Reductions over the middle axis of a contiguous [outer, reduce, inner] view.
//
// defines: ReduceOp, reduce_cpu, reduce_cuda, argreduce_cpu, argreduce_cuda
//
// Any set of adjacent dimensions can be reduced this way without a copy; the ops layer
// permutes (and copies) only when the reduced dimensions are not adjacent. Accumulation is in
// float (double for f64) in a fixed order that does not depend on the number of threads, so
// results are bitwise reproducible run to run.
//   reduce:    out[o, i] = op_{r} in[o, r, i]
//   argreduce: values[o, i] = max/min_{r} in[o, r, i]; indices[o, i] = its r (first on ties)
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

enum class ReduceOp : uint8_t { sum, max, min };

void reduce_cpu(ReduceOp op, DType dtype, const void* in, void* out, int64_t outer, int64_t reduce, int64_t inner);
void argreduce_cpu(ReduceOp op, DType dtype, const void* in, void* values, int64_t* indices, int64_t outer,
                   int64_t reduce, int64_t inner);
#ifdef TESSERA_WITH_CUDA
void reduce_cuda(ReduceOp op, DType dtype, const void* in, void* out, int64_t outer, int64_t reduce, int64_t inner,
                 void* stream);
void argreduce_cuda(ReduceOp op, DType dtype, const void* in, void* values, int64_t* indices, int64_t outer,
                    int64_t reduce, int64_t inner, void* stream);
#endif

}  // namespace tessera::kernels
