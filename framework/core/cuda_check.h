// Check macros for the CUDA libraries. Include only from code built with TESSERA_WITH_CUDA.
//
// defines: TESSERA_CUDA_CHECK, TESSERA_CUDA_LAUNCH_CHECK, TESSERA_CUBLAS_CHECK,
//          TESSERA_CUDNN_CHECK (with TESSERA_WITH_CUDNN), TESSERA_NCCL_CHECK (with TESSERA_WITH_NCCL)
//
// Each reports file:line, the failing statement and the library's error string, and throws
// tessera::Error. Every kernel launch is followed by TESSERA_CUDA_LAUNCH_CHECK().
#pragma once

#include <cuda_runtime.h>

#include "framework/core/error.h"

namespace tessera::detail {
[[noreturn]] void throw_library_error(const char* library, const char* file, int line, const char* statement,
                                      int code, const char* text);
const char* cublas_status_text(int status);
}  // namespace tessera::detail

#define TESSERA_CUDA_CHECK(statement)                                                                     \
  do {                                                                                                    \
    cudaError_t tessera_status_ = (statement);                                                            \
    if (tessera_status_ != cudaSuccess)                                                                   \
      ::tessera::detail::throw_library_error("CUDA", __FILE__, __LINE__, #statement, tessera_status_,     \
                                             cudaGetErrorString(tessera_status_));                        \
  } while (0)

#define TESSERA_CUDA_LAUNCH_CHECK() TESSERA_CUDA_CHECK(cudaGetLastError())

#define TESSERA_CUBLAS_CHECK(statement)                                                                   \
  do {                                                                                                    \
    int tessera_status_ = static_cast<int>(statement);                                                    \
    if (tessera_status_ != 0)                                                                             \
      ::tessera::detail::throw_library_error("cuBLAS", __FILE__, __LINE__, #statement, tessera_status_,   \
                                             ::tessera::detail::cublas_status_text(tessera_status_));     \
  } while (0)

#ifdef TESSERA_WITH_CUDNN
#include <cudnn.h>
#define TESSERA_CUDNN_CHECK(statement)                                                                    \
  do {                                                                                                    \
    cudnnStatus_t tessera_status_ = (statement);                                                          \
    if (tessera_status_ != CUDNN_STATUS_SUCCESS)                                                          \
      ::tessera::detail::throw_library_error("cuDNN", __FILE__, __LINE__, #statement, tessera_status_,    \
                                             cudnnGetErrorString(tessera_status_));                       \
  } while (0)
#endif

#ifdef TESSERA_WITH_NCCL
#include <nccl.h>
#define TESSERA_NCCL_CHECK(statement)                                                                     \
  do {                                                                                                    \
    ncclResult_t tessera_status_ = (statement);                                                           \
    if (tessera_status_ != ncclSuccess && tessera_status_ != ncclInProgress)                              \
      ::tessera::detail::throw_library_error("NCCL", __FILE__, __LINE__, #statement, tessera_status_,     \
                                             ncclGetErrorString(tessera_status_));                        \
  } while (0)
#endif
