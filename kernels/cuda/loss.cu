// CUDA cross-entropy (kernels/loss.h); kernels/cpu/loss.cpp is the reference.
//
// The logits are read in their own dtype, in 16-byte vectors when the class count allows.
// Forward: a group of threads per row (kernels/cuda/rows.cuh) makes one pass over the row,
// keeping the online-softmax pair (max, sum of exp) and, with label smoothing, the sum of the
// logits; one thread then reads the target's logit and writes the row's loss and logsumexp.
// Reduce: a single block sums the row losses and counts the rows not ignored in a fixed order
// (deterministic; no host synchronisation, the count stays on the device). Backward: one pass
// per row recomputes softmax from the logits and the saved logsumexp.
// A target outside [0, classes) that is not ignore_index is never used as an index: its row
// gets a NaN loss and NaN gradients.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rows.cuh"
#include "kernels/loss.h"

namespace tessera::kernels {
namespace {

// Math through std:: so that no tessera function of the same name can hide it.
using std::exp; using std::log;
using cuda::AccType;
using cuda::load;
using cuda::load_vec;
using cuda::Pair;
using cuda::store;
using cuda::store_vec;

constexpr int kLossMaxThreadsPerRow = 1024;
constexpr int kReduceThreads = 1024;

template <typename Fn>
void index_dtype_switch(DType index_dtype, Fn&& fn) {
  switch (index_dtype) {
    case DType::i64: return fn(static_cast<int64_t*>(nullptr));
    case DType::i32: return fn(static_cast<int32_t*>(nullptr));
    default: break;
  }
  detail::throw_error(detail::cat("cross_entropy: targets must be class indices of dtype i64 or i32, got ",
                                  dtype_name(index_dtype)));
}

template <typename T, int N, typename I>
__global__ void cross_entropy_forward_kernel(const T* __restrict__ x, const I* __restrict__ targets, int64_t rows,
                                             int64_t classes, int64_t ignore_index, AccType<T> eps,
                                             AccType<T>* __restrict__ row_loss, AccType<T>* __restrict__ lse_out) {
  using A = AccType<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool active = row < rows;
  const int64_t vectors = classes / N;
  const T* xr = x + (active ? row : 0) * classes;
  Pair<A> state{-INFINITY, A(0)};
  A sum_x = 0;
  A xv[N];
  for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
    load_vec<T, N>(xr + v * N, xv);
#pragma unroll
    for (int j = 0; j < N; ++j) {
      cuda::online_add(state, xv[j]);
      sum_x += xv[j];
    }
  }
  state = cuda::row_allreduce_pair(state, cuda::OnlineSoftmaxOp{});
  if (eps != A(0)) sum_x = cuda::row_allreduce(sum_x, cuda::SumOp{});
  if (!active || threadIdx.x != 0) return;
  const A lse = state.a + log(state.b);
  lse_out[row] = lse;
  const int64_t t = static_cast<int64_t>(targets[row]);
  A loss;
  if (t == ignore_index) loss = A(0);
  else if (t < 0 || t >= classes) loss = NAN;
  else loss = lse - (A(1) - eps) * load(xr[t]) - eps * sum_x / static_cast<A>(classes);
  row_loss[row] = loss;
}

// One block of kReduceThreads threads; thread k sums rows k, k + kReduceThreads, ... in order.
template <typename T, typename I>
__global__ void cross_entropy_reduce_kernel(const AccType<T>* __restrict__ row_loss, const I* __restrict__ targets,
                                            int64_t rows, int64_t ignore_index, bool mean, T* __restrict__ out,
                                            AccType<T>* __restrict__ inv_count) {
  using A = AccType<T>;
  Pair<A> part{A(0), A(0)};  // (sum of losses, rows not ignored)
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    part.a += row_loss[r];
    part.b += static_cast<int64_t>(targets[r]) == ignore_index ? A(0) : A(1);
  }
  part = cuda::row_allreduce_pair(part, cuda::PairSumOp{});
  if (threadIdx.x != 0) return;
  const A scale = mean ? A(1) / (part.b > A(1) ? part.b : A(1)) : A(1);
  out[0] = store<T>(part.a * scale);
  inv_count[0] = scale;
}

template <typename T, int N, typename I>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ x, const AccType<T>* __restrict__ lse,
                                              const I* __restrict__ targets, const T* __restrict__ grad,
                                              bool grad_per_row, const AccType<T>* __restrict__ inv_count,
                                              int64_t rows, int64_t classes, int64_t ignore_index, AccType<T> eps,
                                              T* __restrict__ dx) {
  using A = AccType<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= rows) return;  // no reductions here, so rows past the end may leave
  const int64_t vectors = classes / N;
  const T* xr = x + row * classes;
  T* dxr = dx + row * classes;
  const int64_t t = static_cast<int64_t>(targets[row]);
  const bool ignored = t == ignore_index;
  const bool bad = !ignored && (t < 0 || t >= classes);
  const A g = bad ? A(NAN) : load(grad[grad_per_row ? row : 0]) * (inv_count ? inv_count[0] : A(1));
  const A row_lse = lse[row];
  const A uniform = eps / static_cast<A>(classes);
  A xv[N], out[N];
  for (int64_t v = threadIdx.x; v < vectors; v += blockDim.x) {
    if (ignored) {
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = A(0);
    } else {
      load_vec<T, N>(xr + v * N, xv);
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const A q = (v * N + j == t ? A(1) - eps : A(0)) + uniform;
        out[j] = g * (exp(xv[j] - row_lse) - q);
      }
    }
    store_vec<T, N>(dxr + v * N, out);
  }
}

template <typename T, typename I>
__global__ void cross_entropy_target_dist_kernel(const I* __restrict__ targets, int64_t rows, int64_t classes,
                                                 int64_t ignore_index, AccType<T> eps, T* __restrict__ dist,
                                                 T* __restrict__ valid) {
  using A = AccType<T>;
  const A uniform = eps / static_cast<A>(classes);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * classes;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / classes, c = i % classes;
    const int64_t t = static_cast<int64_t>(targets[r]);
    const bool ignored = t == ignore_index;
    const bool bad = !ignored && (t < 0 || t >= classes);
    A q = ignored ? A(0) : (c == t ? A(1) - eps : A(0)) + uniform;
    if (bad) q = NAN;
    dist[i] = store<T>(q);
    if (c == 0) valid[r] = store<T>(ignored ? A(0) : A(1));
  }
}

template <typename T, typename I, typename Launch>
void launch_rows(int64_t rows, int64_t classes, std::initializer_list<const void*> pointers, const char* op,
                 Launch&& launch) {
  cuda::with_vector_width<T>(classes, pointers, [&](auto width) {
    constexpr int N = decltype(width)::value;
    const cuda::RowPlan plan = cuda::plan_rows(classes / N, kLossMaxThreadsPerRow);
    const int64_t blocks = (rows + plan.rows_per_block - 1) / plan.rows_per_block;
    TESSERA_CHECK(blocks <= 0x7fffffff, op, ": too many rows (", rows, ")");
    launch(width, static_cast<unsigned>(blocks), dim3(plan.threads_per_row, plan.rows_per_block));
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

void cross_entropy_forward_cuda(DType dtype, DType index_dtype, const void* logits, const void* targets, int64_t rows,
                                int64_t classes, int64_t ignore_index, double smoothing, void* row_loss, void* lse,
                                void* stream) {
  if (rows == 0) return;
  cuda::cuda_float_dtype_switch(dtype, "cross_entropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      const auto x = static_cast<const T*>(logits);
      launch_rows<T, I>(rows, classes, {x}, "cross_entropy", [&](auto width, unsigned blocks, dim3 block) {
        constexpr int N = decltype(width)::value;
        cross_entropy_forward_kernel<T, N, I><<<blocks, block, 0, cuda::stream_of(stream)>>>(
            x, static_cast<const I*>(targets), rows, classes, ignore_index, static_cast<A>(smoothing),
            static_cast<A*>(row_loss), static_cast<A*>(lse));
      });
    });
  });
}

void cross_entropy_reduce_cuda(DType dtype, DType index_dtype, const void* row_loss, const void* targets, int64_t rows,
                               int64_t ignore_index, bool mean, void* out, void* inv_count, void* stream) {
  cuda::cuda_float_dtype_switch(dtype, "cross_entropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      cross_entropy_reduce_kernel<T, I><<<1, kReduceThreads, 0, cuda::stream_of(stream)>>>(
          static_cast<const A*>(row_loss), static_cast<const I*>(targets), rows, ignore_index, mean,
          static_cast<T*>(out), static_cast<A*>(inv_count));
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void cross_entropy_backward_cuda(DType dtype, DType index_dtype, const void* logits, const void* lse,
                                 const void* targets, const void* grad, bool grad_per_row, const void* inv_count,
                                 int64_t rows, int64_t classes, int64_t ignore_index, double smoothing, void* dlogits,
                                 void* stream) {
  if (rows == 0) return;
  cuda::cuda_float_dtype_switch(dtype, "cross_entropy backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      const auto x = static_cast<const T*>(logits);
      const auto dx = static_cast<T*>(dlogits);
      launch_rows<T, I>(rows, classes, {x, dx}, "cross_entropy backward", [&](auto width, unsigned blocks, dim3 block) {
        constexpr int N = decltype(width)::value;
        cross_entropy_backward_kernel<T, N, I><<<blocks, block, 0, cuda::stream_of(stream)>>>(
            x, static_cast<const A*>(lse), static_cast<const I*>(targets), static_cast<const T*>(grad), grad_per_row,
            static_cast<const A*>(inv_count), rows, classes, ignore_index, static_cast<A>(smoothing), dx);
      });
    });
  });
}

void cross_entropy_target_dist_cuda(DType dtype, DType index_dtype, const void* targets, int64_t rows,
                                    int64_t classes, int64_t ignore_index, double smoothing, void* dist, void* valid,
                                    void* stream) {
  if (rows == 0) return;
  cuda::cuda_float_dtype_switch(dtype, "cross_entropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      cross_entropy_target_dist_kernel<T, I><<<cuda::memory_bound_blocks(rows * classes), cuda::kThreads, 0,
                                                cuda::stream_of(stream)>>>(
          static_cast<const I*>(targets), rows, classes, ignore_index, static_cast<A>(smoothing), static_cast<T*>(dist),
          static_cast<T*>(valid));
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace tessera::kernels
