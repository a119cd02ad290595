// CUDA reductions (kernels/reduce.h).
//
// Rows (inner == 1) are reduced by one 256-thread block each, warp shuffles then shared
// memory. Columns (inner > 1) are reduced by one thread per output, consecutive threads on
// consecutive columns so loads coalesce. When there are too few outputs to fill the GPU, the
// reduced axis is split across blockIdx.y into partial results (scratch from the caching
// allocator) and a second pass combines them. Launch shapes depend only on the sizes, so the
// summation order, and the result, is the same on every run.
#include <cfloat>

#include "framework/core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace tessera::kernels {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;

constexpr int kRowThreads = 256;

template <ReduceOp Op, typename A>
__device__ __forceinline__ A identity() {
  if constexpr (Op == ReduceOp::sum) return A(0);
  else if constexpr (Op == ReduceOp::max) return -INFINITY;
  else return INFINITY;
}

template <ReduceOp Op, typename A>
__device__ __forceinline__ A combine(A acc, A v) {
  if constexpr (Op == ReduceOp::sum) {
    return acc + v;
  } else {
    if (isnan(v) || isnan(acc)) return NAN;
    return Op == ReduceOp::max ? (v > acc ? v : acc) : (v < acc ? v : acc);
  }
}

template <ReduceOp Op, typename A>
__device__ A block_reduce(A v) {
  __shared__ A warp_results[32];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v = combine<Op, A>(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_results[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / 32 ? warp_results[lane] : identity<Op, A>();
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v = combine<Op, A>(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;  // valid in thread 0
}

// grid (outer, splits): block (o, s) reduces chunk s of row o into out[o * splits + s].
template <ReduceOp Op, typename T, typename Out>
__global__ void row_reduce_kernel(const T* __restrict__ in, Out* __restrict__ out, int64_t reduce, int64_t chunk) {
  using A = AccType<T>;
  const int64_t o = blockIdx.x;
  const int64_t begin = blockIdx.y * chunk;
  const int64_t end = begin + chunk < reduce ? begin + chunk : reduce;
  const T* row = in + o * reduce;
  A acc = identity<Op, A>();
  for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) acc = combine<Op, A>(acc, load(row[r]));
  acc = block_reduce<Op, A>(acc);
  if (threadIdx.x == 0) out[o * gridDim.y + blockIdx.y] = store<Out>(acc);
}

// Same with 16-byte loads: N elements per load; requires reduce % N == 0, chunk % N == 0 and
// a 16-byte aligned input (checked by the caller). Two independent accumulators per thread
// keep two loads in flight.
template <ReduceOp Op, typename T, typename Out, int N>
__global__ void row_reduce_vec_kernel(const T* __restrict__ in, Out* __restrict__ out, int64_t reduce, int64_t chunk) {
  using A = AccType<T>;
  using V = cuda::Vec<T, N>;
  const int64_t o = blockIdx.x;
  const int64_t begin = blockIdx.y * chunk;
  const int64_t end = begin + chunk < reduce ? begin + chunk : reduce;
  const V* row = reinterpret_cast<const V*>(in + o * reduce);
  A acc0 = identity<Op, A>(), acc1 = identity<Op, A>();
  int64_t v = begin / N + threadIdx.x;
  const int64_t v_end = end / N;
  for (; v + blockDim.x < v_end; v += 2 * blockDim.x) {
    const V a = row[v], b = row[v + blockDim.x];
#pragma unroll
    for (int k = 0; k < N; ++k) {
      acc0 = combine<Op, A>(acc0, load(a.v[k]));
      acc1 = combine<Op, A>(acc1, load(b.v[k]));
    }
  }
  if (v < v_end) {
    const V a = row[v];
#pragma unroll
    for (int k = 0; k < N; ++k) acc0 = combine<Op, A>(acc0, load(a.v[k]));
  }
  A acc = block_reduce<Op, A>(combine<Op, A>(acc0, acc1));
  if (threadIdx.x == 0) out[o * gridDim.y + blockIdx.y] = store<Out>(acc);
}

// grid (ceil(outer*inner / threads), splits): one thread per output column per split.
template <ReduceOp Op, typename T, typename Out>
__global__ void column_reduce_kernel(const T* __restrict__ in, Out* __restrict__ out, int64_t outer, int64_t reduce,
                                     int64_t inner, int64_t chunk) {
  using A = AccType<T>;
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= outer * inner) return;
  const int64_t o = j / inner, i = j % inner;
  const int64_t begin = blockIdx.y * chunk;
  const int64_t end = begin + chunk < reduce ? begin + chunk : reduce;
  A acc = identity<Op, A>();
  for (int64_t r = begin; r < end; ++r) acc = combine<Op, A>(acc, load(in[(o * reduce + r) * inner + i]));
  out[blockIdx.y * outer * inner + j] = store<Out>(acc);
}

// Column pass with 16-byte loads. Block (32, kColumnLanes): threadIdx.x picks one of 32 groups
// of N adjacent columns (a warp reads 32 x 16 contiguous bytes of a row), threadIdx.y one of
// kColumnLanes rows, striding by kColumnLanes through the block's chunk of rows with two rows
// in flight; the lanes are then summed in order through shared memory, so the result does not
// depend on timing. Requires inner % N == 0 and a 16-byte aligned input (checked by the
// caller). grid (ceil(outer * inner / N / 32), splits).
constexpr int kColumnLanes = 8;

template <ReduceOp Op, typename T, typename Out, int N>
__global__ void column_reduce_vec_kernel(const T* __restrict__ in, Out* __restrict__ out, int64_t outer,
                                         int64_t reduce, int64_t inner, int64_t chunk) {
  using A = AccType<T>;
  using V = cuda::Vec<T, N>;
  __shared__ A partial[kColumnLanes][32][N];
  const int64_t groups = inner / N;
  const int64_t j = blockIdx.x * 32LL + threadIdx.x;
  const bool active = j < outer * groups;
  const int64_t o = active ? j / groups : 0, g = active ? j % groups : 0;
  const int64_t begin = blockIdx.y * chunk;
  const int64_t end = begin + chunk < reduce ? begin + chunk : reduce;
  const V* column = reinterpret_cast<const V*>(in + o * reduce * inner) + g;
  A acc0[N], acc1[N];
#pragma unroll
  for (int k = 0; k < N; ++k) acc0[k] = acc1[k] = identity<Op, A>();
  if (active) {
    int64_t r = begin + threadIdx.y;
    for (; r + kColumnLanes < end; r += 2 * kColumnLanes) {
      const V a = column[r * groups], b = column[(r + kColumnLanes) * groups];
#pragma unroll
      for (int k = 0; k < N; ++k) {
        acc0[k] = combine<Op, A>(acc0[k], load(a.v[k]));
        acc1[k] = combine<Op, A>(acc1[k], load(b.v[k]));
      }
    }
    if (r < end) {
      const V a = column[r * groups];
#pragma unroll
      for (int k = 0; k < N; ++k) acc0[k] = combine<Op, A>(acc0[k], load(a.v[k]));
    }
  }
#pragma unroll
  for (int k = 0; k < N; ++k) partial[threadIdx.y][threadIdx.x][k] = combine<Op, A>(acc0[k], acc1[k]);
  __syncthreads();
  if (threadIdx.y != 0 || !active) return;
  Out* dst = out + blockIdx.y * outer * inner + o * inner + g * N;
#pragma unroll
  for (int k = 0; k < N; ++k) {
    A acc = partial[0][threadIdx.x][k];
    for (int lane = 1; lane < kColumnLanes; ++lane) acc = combine<Op, A>(acc, partial[lane][threadIdx.x][k]);
    dst[k] = store<Out>(acc);
  }
}

template <ReduceOp Op, typename T>
__global__ void argreduce_kernel(const T* __restrict__ in, T* __restrict__ values, int64_t* __restrict__ indices,
                                 int64_t outer, int64_t reduce, int64_t inner) {
  using A = AccType<T>;
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= outer * inner) return;
  const int64_t o = j / inner, i = j % inner;
  A best = load(in[o * reduce * inner + i]);
  int64_t best_r = 0;
  for (int64_t r = 1; r < reduce && !isnan(best); ++r) {
    const A v = load(in[(o * reduce + r) * inner + i]);
    if (isnan(v) || (Op == ReduceOp::max ? v > best : v < best)) {
      best = v;
      best_r = r;
    }
  }
  values[j] = store<T>(best);
  indices[j] = best_r;
}

int sm_count() {
  static int count = [] {
    int device = 0, n = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device);
    return n > 0 ? n : 80;
  }();
  return count;
}

// Splits of the reduced axis so that about 8 blocks per multiprocessor exist, each chunk >= min_chunk.
int64_t choose_splits(int64_t outputs_blocks, int64_t reduce, int64_t min_chunk) {
  const int64_t want_blocks = 8LL * sm_count();
  if (outputs_blocks >= want_blocks) return 1;
  int64_t splits = (want_blocks + outputs_blocks - 1) / outputs_blocks;
  splits = std::min<int64_t>(splits, (reduce + min_chunk - 1) / min_chunk);
  return std::max<int64_t>(1, std::min<int64_t>(splits, 65535));
}

// First pass over rows: vectorised when the layout allows it.
template <ReduceOp Op, typename T, typename Out>
void launch_row_reduce(const T* in, Out* out, int64_t outer, int64_t splits, int64_t reduce, int64_t chunk,
                       cudaStream_t stream) {
  constexpr int N = cuda::vec_width<T>();
  const dim3 grid(static_cast<unsigned>(outer), static_cast<unsigned>(splits));
  if (reduce % N == 0 && chunk % N == 0 && cuda::aligned16(in)) {
    row_reduce_vec_kernel<Op, T, Out, N><<<grid, kRowThreads, 0, stream>>>(in, out, reduce, chunk);
  } else {
    row_reduce_kernel<Op, T, Out><<<grid, kRowThreads, 0, stream>>>(in, out, reduce, chunk);
  }
  TESSERA_CUDA_LAUNCH_CHECK();
}

// Columns per thread in the column pass: a 16-byte vector when the layout allows it.
template <typename T>
int64_t column_vector_width(int64_t inner, const T* in) {
  constexpr int N = cuda::vec_width<T>();
  return inner % N == 0 && cuda::aligned16(in) ? N : 1;
}

// Blocks of the column pass along the outputs (gridDim.x).
template <typename T>
int64_t column_blocks(int64_t outputs, int64_t inner, const T* in) {
  const int64_t width = column_vector_width<T>(inner, in);
  return width > 1 ? (outputs / width + 31) / 32 : (outputs + cuda::kThreads - 1) / cuda::kThreads;
}

template <ReduceOp Op, typename T, typename Out>
void launch_column_reduce(const T* in, Out* out, int64_t outer, int64_t splits, int64_t reduce, int64_t inner,
                          int64_t chunk, cudaStream_t stream) {
  constexpr int N = cuda::vec_width<T>();
  const dim3 grid(static_cast<unsigned>(column_blocks<T>(outer * inner, inner, in)), static_cast<unsigned>(splits));
  if (N > 1 && column_vector_width<T>(inner, in) == N) {
    column_reduce_vec_kernel<Op, T, Out, N><<<grid, dim3(32, kColumnLanes), 0, stream>>>(in, out, outer, reduce,
                                                                                         inner, chunk);
  } else {
    column_reduce_kernel<Op, T, Out><<<grid, cuda::kThreads, 0, stream>>>(in, out, outer, reduce, inner, chunk);
  }
  TESSERA_CUDA_LAUNCH_CHECK();
}

template <ReduceOp Op, typename T>
void reduce_typed(const T* in, T* out, int64_t outer, int64_t reduce, int64_t inner, cudaStream_t stream) {
  using A = AccType<T>;
  if (inner == 1) {
    const int64_t splits = choose_splits(outer, reduce, 8192);
    // Chunks are a multiple of 16 elements so every split starts on a 16-byte boundary.
    const int64_t chunk = ((reduce + splits - 1) / splits + 15) / 16 * 16;
    if (splits == 1) {
      launch_row_reduce<Op, T, T>(in, out, outer, 1, reduce, reduce, stream);
      return;
    }
    A* partial = static_cast<A*>(cuda_allocate(sizeof(A) * outer * splits, cuda::current_device(), stream));
    launch_row_reduce<Op, T, A>(in, partial, outer, splits, reduce, chunk, stream);
    row_reduce_kernel<Op, A, T><<<dim3(static_cast<unsigned>(outer), 1), kRowThreads, 0, stream>>>(partial, out, splits,
                                                                                                     splits);
    TESSERA_CUDA_LAUNCH_CHECK();
    cuda_free(partial);
    return;
  }
  const int64_t outputs = outer * inner;
  const int64_t splits = choose_splits(column_blocks<T>(outputs, inner, in), reduce, 64);
  const int64_t chunk = (reduce + splits - 1) / splits;
  if (splits == 1) {
    launch_column_reduce<Op, T, T>(in, out, outer, 1, reduce, inner, chunk, stream);
    return;
  }
  A* partial = static_cast<A*>(cuda_allocate(sizeof(A) * outputs * splits, cuda::current_device(), stream));
  launch_column_reduce<Op, T, A>(in, partial, outer, splits, reduce, inner, chunk, stream);
  // partial is [splits, outputs]: reduce its middle axis with outer = 1.
  launch_column_reduce<Op, A, T>(partial, out, 1, 1, splits, outputs, splits, stream);
  cuda_free(partial);
}

}  // namespace

void reduce_cuda(ReduceOp op, DType dtype, const void* in, void* out, int64_t outer, int64_t reduce, int64_t inner,
                 void* stream) {
  if (outer * inner == 0) return;
  TESSERA_CHECK(reduce > 0, "reduce: empty reduction");
  TESSERA_CHECK(outer <= 0x7fffffff, "reduce: too many rows");
  cuda::cuda_float_dtype_switch(dtype, "reduce", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const auto s = cuda::stream_of(stream);
    switch (op) {
      case ReduceOp::sum: reduce_typed<ReduceOp::sum, T>(static_cast<const T*>(in), static_cast<T*>(out), outer, reduce, inner, s); break;
      case ReduceOp::max: reduce_typed<ReduceOp::max, T>(static_cast<const T*>(in), static_cast<T*>(out), outer, reduce, inner, s); break;
      case ReduceOp::min: reduce_typed<ReduceOp::min, T>(static_cast<const T*>(in), static_cast<T*>(out), outer, reduce, inner, s); break;
    }
  });
}

void argreduce_cuda(ReduceOp op, DType dtype, const void* in, void* values, int64_t* indices, int64_t outer,
                    int64_t reduce, int64_t inner, void* stream) {
  if (outer * inner == 0) return;
  cuda::cuda_float_dtype_switch(dtype, "argmax/argmin", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const unsigned blocks = static_cast<unsigned>((outer * inner + cuda::kThreads - 1) / cuda::kThreads);
    const auto s = cuda::stream_of(stream);
    if (op == ReduceOp::min) {
      argreduce_kernel<ReduceOp::min, T><<<blocks, cuda::kThreads, 0, s>>>(static_cast<const T*>(in), static_cast<T*>(values), indices, outer, reduce, inner);
    } else {
      argreduce_kernel<ReduceOp::max, T><<<blocks, cuda::kThreads, 0, s>>>(static_cast<const T*>(in), static_cast<T*>(values), indices, outer, reduce, inner);
    }
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace tessera::kernels
