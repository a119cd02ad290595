// CUDA flat-buffer packing (kernels/dist.h); kernels/cpu/dist.cpp is the reference.
//
// One launch covers up to kMaxSegmentsPerLaunch segments: their pointers, sizes and offsets
// travel in a SegmentTable passed by value (__grid_constant__), with the prefix sums of their
// chunk counts; block b finds its segment by binary search and converts chunk
// b - block_start[s] (kChunk elements) of it. Consecutive threads touch consecutive elements,
// so loads and stores coalesce on both sides whatever the offsets' alignment. The launch shape
// depends only on the sizes.
#include <climits>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/dist.h"

namespace tessera::kernels {
namespace {

constexpr int64_t kChunk = 8192;
constexpr int kMax = kMaxSegmentsPerLaunch;

struct SegmentTable {
  void* tensor[kMax];
  int64_t numel[kMax];
  int64_t offset[kMax];
  int32_t block_start[kMax + 1];
  int32_t count;
};
static_assert(sizeof(SegmentTable) + 256 < 32764, "SegmentTable exceeds the kernel-argument limit");

__device__ __forceinline__ int find_segment(const SegmentTable& table, int32_t block) {
  int lo = 0, hi = table.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (table.block_start[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

template <typename A, typename B>
using PairAcc = std::conditional_t<std::is_same_v<A, double> || std::is_same_v<B, double>, double, float>;

template <typename Src, typename Dst>
__device__ __forceinline__ Dst convert(Src v, double scale, bool exact) {
  using A = PairAcc<Src, Dst>;
  if (exact) return cuda::cast_value<Dst>(v);
  return cuda::store<Dst>(static_cast<A>(cuda::load(v)) * static_cast<A>(scale));
}

// Pack (ToFlat) or unpack one chunk of one segment per block.
template <typename T, typename F, bool ToFlat>
__global__ void __launch_bounds__(cuda::kThreads) flat_kernel(const __grid_constant__ SegmentTable table, F* flat,
                                                              double scale) {
  const int s = find_segment(table, static_cast<int32_t>(blockIdx.x));
  const int64_t begin = static_cast<int64_t>(static_cast<int32_t>(blockIdx.x) - table.block_start[s]) * kChunk;
  const int64_t end = min(begin + kChunk, table.numel[s]);
  T* tensor = static_cast<T*>(table.tensor[s]);
  F* base = flat + table.offset[s];
  const bool exact = scale == 1.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    if constexpr (ToFlat) {
      base[i] = tensor ? convert<T, F>(tensor[i], scale, exact) : cuda::store<F>(0.0f);
    } else {
      if (tensor) tensor[i] = convert<F, T>(base[i], scale, exact);
    }
  }
}

template <bool ToFlat>
void launch_flat(DType tensor_dtype, const FlatSegment* segments, int64_t count, DType flat_dtype, void* flat,
                 double scale, void* stream) {
  cuda::cuda_dtype_switch(tensor_dtype, [&](auto* ttag) {
    using T = std::remove_pointer_t<decltype(ttag)>;
    cuda::cuda_dtype_switch(flat_dtype, [&](auto* ftag) {
      using F = std::remove_pointer_t<decltype(ftag)>;
      SegmentTable table;
      table.count = 0;
      int64_t blocks = 0;
      auto flush = [&] {
        if (table.count == 0) return;
        table.block_start[table.count] = static_cast<int32_t>(blocks);
        flat_kernel<T, F, ToFlat><<<static_cast<unsigned>(blocks), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
            table, static_cast<F*>(flat), scale);
        TESSERA_CUDA_LAUNCH_CHECK();
        table.count = 0;
        blocks = 0;
      };
      for (int64_t i = 0; i < count; ++i) {
        const FlatSegment& seg = segments[i];
        if (seg.numel == 0 || (!ToFlat && seg.tensor == nullptr)) continue;
        const int64_t chunks = (seg.numel + kChunk - 1) / kChunk;
        TESSERA_ASSERT(chunks < INT32_MAX, "segment of ", seg.numel, " elements is too large for one launch");
        if (table.count == kMax || blocks + chunks >= INT32_MAX) flush();
        const int slot = table.count++;
        table.tensor[slot] = seg.tensor;
        table.numel[slot] = seg.numel;
        table.offset[slot] = seg.offset;
        table.block_start[slot] = static_cast<int32_t>(blocks);
        blocks += chunks;
      }
      flush();
    });
  });
}

}  // namespace

void pack_flat_cuda(DType tensor_dtype, const FlatSegment* segments, int64_t count, DType flat_dtype, void* flat,
                    double scale, void* stream) {
  launch_flat<true>(tensor_dtype, segments, count, flat_dtype, flat, scale, stream);
}

void unpack_flat_cuda(DType flat_dtype, const void* flat, DType tensor_dtype, const FlatSegment* segments,
                      int64_t count, double scale, void* stream) {
  launch_flat<false>(tensor_dtype, segments, count, flat_dtype, const_cast<void*>(flat), scale, stream);
}

}  // namespace tessera::kernels
