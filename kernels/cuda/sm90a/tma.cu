// Host side of the TMA loads of the sm90a kernels: tensor maps (kernels/cuda/attention_wgmma.cuh).
// The driver's cuTensorMapEncodeTiled is reached through the runtime (cudaGetDriverEntryPointByVersion),
// so nothing links against libcuda directly.
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <mutex>

#include "framework/core/cuda_check.h"
#include "framework/core/error.h"
#include "kernels/cuda/attention_wgmma.cuh"

namespace tessera::kernels::attention::sm90 {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    TESSERA_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    TESSERA_CHECK(found == cudaDriverEntryPointSuccess && fn != nullptr,
                  "cuTensorMapEncodeTiled is not available from the CUDA driver");
    encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  });
  return encode;
}

}  // namespace

CUtensorMap make_tile_map(const void* base, bool bf16, int64_t cols, int64_t len, int64_t heads, int64_t batch,
                          int64_t row_stride, int64_t head_stride, int64_t batch_stride, int box_rows) {
  // Strides in bytes must be multiples of 16; a dim of size 1 is never stepped over, so its
  // stride may be replaced by any valid one.
  const uint64_t row_bytes = static_cast<uint64_t>(row_stride) * 2;
  const uint64_t head_bytes = heads > 1 ? static_cast<uint64_t>(head_stride) * 2 : row_bytes * static_cast<uint64_t>(len > 0 ? len : 1);
  const uint64_t batch_bytes = batch > 1 ? static_cast<uint64_t>(batch_stride) * 2 : head_bytes * static_cast<uint64_t>(heads);
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(len > 0 ? len : 1),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  const cuuint64_t strides[3] = {row_bytes, (head_bytes + 15) / 16 * 16, (batch_bytes + 15) / 16 * 16};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_rows), 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  CUtensorMap map{};
  const CUresult status = tensor_map_encoder()(
      &map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, const_cast<void*>(base), dims,
      strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  TESSERA_CHECK(status == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed (CUresult ", static_cast<int>(status),
                ") for a [", batch, ", ", heads, ", ", len, ", ", cols, "] tensor with row stride ", row_stride);
  return map;
}

}  // namespace tessera::kernels::attention::sm90
