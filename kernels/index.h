// Index and selection kernels: concatenation, row selection, deterministic scatter-add,
// gather, equality and three-way select.
//
// defines: CatSource, cat_cpu/cuda, index_select_cpu/cuda, index_add_cpu/cuda,
//          gather_cpu/cuda, scatter_add_cpu/cuda, eq_cpu/cuda, where_cpu/cuda,
//          find_bad_index_cpu
//
// Shapes use the [outer, size, inner] view of kernels/reduce.h (all contiguous):
//   cat:          out[o, start_k + j, i] = source_k[o, j, i]             any dtype
//   index_select: out[o, j, i] = x[o, index[j], i]                        any dtype
//   index_add:    out[o, t, i] += sum_{j : index[j] = t} src[o, j, i]     floating; `out` holds
//                                                                         the base on entry
// gather and scatter_add take strided layouts whose sizes are the index's shape:
//   gather:       out[e] = x[x_layout(e) + index[index_layout(e)] * x_dim_stride]
//   scatter_add:  out[out_layout(e) + index[index_layout(e)] * out_dim_stride] += src[src_layout(e)]
// (the layouts carry stride 0 on the indexed dimension; `out` is contiguous, e runs over the
// index's elements in row-major order). Broadcasting maps (layouts of the output's shape, stride
// 0 on broadcast dims; `out` contiguous):
//   eq:    out[i] = a[la(i)] == b[lb(i)] ? 1.0f : 0.0f                 any dtype, f32 result
//   where: out[i] = cond[lc(i)] != 0 ? a[la(i)] : b[lb(i)]              any dtypes
//
// Indices are i64 or i32 (`index_dtype`), valid in [0, bound). The ops layer checks CPU indices
// with find_bad_index_cpu before calling a kernel, so it can name the op in the error. CUDA
// kernels cannot report back without a host synchronisation: an out-of-range index raises a
// device-side assertion (the stream then fails with cudaErrorAssert, "device-side assert
// triggered", at the next synchronising call) and the offending thread touches no memory.
//
// Determinism: index_add and scatter_add use no atomics. Contributions are grouped by
// destination with a stable sort (counting sort on CPU, cub::DeviceRadixSort on CUDA); each
// destination sums its contributions in increasing source position, starting from zero, then
// adds that sum to the base value. Results do not depend on thread counts or timing, and CPU and
// CUDA add in the same order.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"
#include "kernels/layout.h"

namespace tessera::kernels {

struct CatSource {
  const void* data;  // contiguous [outer, size, inner]
  int64_t size;      // extent along the concatenated dimension
};

void cat_cpu(DType dtype, const CatSource* sources, int count, void* out, int64_t outer, int64_t out_size,
             int64_t inner);
void index_select_cpu(DType dtype, const void* x, int64_t outer, int64_t src_size, int64_t inner, DType index_dtype,
                      const void* index, int64_t n, void* out);
void index_add_cpu(DType dtype, void* out, int64_t outer, int64_t dst_size, int64_t inner, DType index_dtype,
                   const void* index, int64_t n, const void* src);
void gather_cpu(DType dtype, const void* x, Layout x_layout, int64_t x_dim_stride, DType index_dtype,
                const void* index, Layout index_layout, void* out);
void scatter_add_cpu(DType dtype, void* out, Layout out_layout, int64_t out_dim_stride, DType index_dtype,
                     const void* index, Layout index_layout, const void* src, Layout src_layout);
void eq_cpu(DType dtype, const void* a, Layout la, const void* b, Layout lb, float* out);
void where_cpu(DType cond_dtype, const void* cond, Layout lc, DType dtype, const void* a, Layout la, const void* b,
               Layout lb, void* out);
// Position (row-major over `layout`) of the first index outside [0, bound), or -1; its value
// goes to *bad_value.
int64_t find_bad_index_cpu(DType index_dtype, const void* index, Layout layout, int64_t bound, int64_t* bad_value);

#ifdef TESSERA_WITH_CUDA
void cat_cuda(DType dtype, const CatSource* sources, int count, void* out, int64_t outer, int64_t out_size,
              int64_t inner, void* stream);
void index_select_cuda(DType dtype, const void* x, int64_t outer, int64_t src_size, int64_t inner, DType index_dtype,
                       const void* index, int64_t n, void* out, void* stream);
void index_add_cuda(DType dtype, void* out, int64_t outer, int64_t dst_size, int64_t inner, DType index_dtype,
                    const void* index, int64_t n, const void* src, void* stream);
void gather_cuda(DType dtype, const void* x, Layout x_layout, int64_t x_dim_stride, int64_t bound, DType index_dtype,
                 const void* index, Layout index_layout, void* out, void* stream);
void scatter_add_cuda(DType dtype, void* out, int64_t out_numel, Layout out_layout, int64_t out_dim_stride,
                      int64_t bound, DType index_dtype, const void* index, Layout index_layout, const void* src,
                      Layout src_layout, void* stream);
void eq_cuda(DType dtype, const void* a, Layout la, const void* b, Layout lb, float* out, void* stream);
void where_cuda(DType cond_dtype, const void* cond, Layout lc, DType dtype, const void* a, Layout la, const void* b,
                Layout lb, void* out, void* stream);
#endif

}  // namespace tessera::kernels
