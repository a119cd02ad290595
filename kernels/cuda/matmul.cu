// CUDA matrix products through cuBLASLt (kernels/matmul.h).
//
// cuBLASLt is column-major; a row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T,
// so the operands are swapped and the sizes become (n, m, k) with no copies. A plan (descriptors
// and the heuristic's algorithm) is built once per problem shape and cached, so repeated shapes
// (every training step) cost one cublasLtMatmul call. The 32 MiB workspace is taken once per
// device from the caching allocator and kept, so addresses are stable for CUDA graphs.
// The heuristic assumes 256-byte-aligned operands unless told otherwise, so the actual
// alignment of each pointer (views and per-group sub-matrices are often less aligned) is part
// of the plan key and passed as the minimum-alignment preferences.
#include <cublasLt.h>

#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "framework/core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/matmul.h"

namespace tessera::kernels {
namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;
constexpr int kMaxDevices = 64;

struct DeviceState {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

using PlanKey = std::tuple<int, int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, bool, uint32_t, uint32_t, uint32_t>;

// Largest power of two up to 256 that divides the address.
uint32_t alignment_of(const void* p) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

std::mutex plan_mutex;

DeviceState& device_state(int device, cudaStream_t stream) {
  static DeviceState states[kMaxDevices];
  DeviceState& s = states[device];
  if (s.handle == nullptr) {
    TESSERA_CUBLAS_CHECK(cublasLtCreate(&s.handle));
    s.workspace = cuda_allocate(kWorkspaceBytes, device, stream);
  }
  return s;
}

cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t layout;
  TESSERA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, type, rows, cols, ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    TESSERA_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    TESSERA_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                          sizeof(stride)));
  }
  return layout;
}

const Plan& get_plan(const GemmArgs& g, int device, cublasLtHandle_t handle) {
  static std::map<PlanKey, Plan> plans;
  const bool beta_nonzero = g.beta != 0.0f;
  const uint32_t align_a = alignment_of(g.a), align_b = alignment_of(g.b), align_c = alignment_of(g.c);
  const PlanKey key{device,       static_cast<int>(g.dtype), 0,          g.trans_a,  g.trans_b, g.m,
                    g.n,          g.k,                       g.lda,      g.ldb,      g.ldc,     g.batch,
                    g.stride_a,   g.stride_b,                g.stride_c, beta_nonzero, align_a, align_b,
                    align_c};
  std::lock_guard<std::mutex> lock(plan_mutex);
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;

  cudaDataType_t type;
  cublasComputeType_t compute;
  cudaDataType_t scale = CUDA_R_32F;
  switch (g.dtype) {
    case DType::bf16: type = CUDA_R_16BF; compute = CUBLAS_COMPUTE_32F; break;
    case DType::f16: type = CUDA_R_16F; compute = CUBLAS_COMPUTE_32F; break;
    case DType::f32: type = CUDA_R_32F; compute = CUBLAS_COMPUTE_32F; break;
    case DType::f64: type = CUDA_R_64F; compute = CUBLAS_COMPUTE_64F; scale = CUDA_R_64F; break;
    default: detail::throw_error(detail::cat("matmul: unsupported dtype ", dtype_name(g.dtype)));
  }
  // Column-major view: C^T (n x m) = op(B)^T (n x k) * op(A)^T (k x m).
  const cublasOperation_t op_first = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  Plan plan;
  TESSERA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.op, compute, scale));
  TESSERA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  TESSERA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  plan.a = make_layout(type, g.trans_b ? g.k : g.n, g.trans_b ? g.n : g.k, g.ldb, g.batch, g.stride_b);
  plan.b = make_layout(type, g.trans_a ? g.m : g.k, g.trans_a ? g.k : g.m, g.lda, g.batch, g.stride_a);
  plan.c = make_layout(type, g.n, g.m, g.ldc, g.batch, g.stride_c);

  cublasLtMatmulPreference_t preference;
  TESSERA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const size_t workspace = kWorkspaceBytes;
  TESSERA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                            &workspace, sizeof(workspace)));
  // cuBLASLt's A is our B and its B our A (the column-major swap above); C and D are g.c.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
  for (const auto& [attribute, bytes] : alignments)
    TESSERA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof(bytes)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  TESSERA_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, plan.op, plan.a, plan.b, plan.c, plan.c, preference, 1,
                                                      &result, &found));
  cublasLtMatmulPreferenceDestroy(preference);
  TESSERA_CHECK(found > 0, "matmul: cuBLASLt found no algorithm for ", dtype_name(g.dtype), " m=", g.m, " n=", g.n,
                " k=", g.k, " batch=", g.batch);
  plan.algo = result.algo;
  return plans.emplace(key, plan).first->second;
}

}  // namespace

void gemm_cuda(const GemmArgs& g, void* stream_ptr) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  const cudaStream_t stream = cuda::stream_of(stream_ptr);
  const int device = cuda::current_device();
  DeviceState& state = device_state(device, stream);
  if (g.k == 0) {  // C = beta * C: nothing to multiply
    TESSERA_CHECK(g.beta == 0.0f, "matmul: k = 0 with beta != 0 is not supported");
    const bool packed = g.ldc == g.n && (g.batch == 1 || g.stride_c == g.m * g.n);
    TESSERA_CHECK(packed, "matmul: k = 0 needs a packed output");
    TESSERA_CUDA_CHECK(cudaMemsetAsync(g.c, 0, static_cast<size_t>(g.batch * g.m * g.n) * dtype_size(g.dtype), stream));
    return;
  }
  const Plan& plan = get_plan(g, device, state.handle);
  const double alpha64 = g.alpha, beta64 = g.beta;
  const void* alpha = g.dtype == DType::f64 ? static_cast<const void*>(&alpha64) : static_cast<const void*>(&g.alpha);
  const void* beta = g.dtype == DType::f64 ? static_cast<const void*>(&beta64) : static_cast<const void*>(&g.beta);
  TESSERA_CUBLAS_CHECK(cublasLtMatmul(state.handle, plan.op, alpha, g.b, plan.a, g.a, plan.b, beta, g.c, plan.c, g.c,
                                      plan.c, &plan.algo, state.workspace, kWorkspaceBytes, stream));
}

}  // namespace tessera::kernels
