// CUDA index and selection kernels (kernels/index.h); kernels/cpu/index.cpp is the reference.
//
// Pure copies (cat, index_select, gather, where) move "units": the widest unsigned type (up to
// 16 bytes) that divides every row and to which every pointer is aligned, so rows of bf16
// embeddings move as 16-byte vectors.
//
// index_add and scatter_add are deterministic without float atomics:
//   1. a keys kernel writes each contribution's destination (checked against its bound) and
//      its position 0..n-1;
//   2. cub::DeviceRadixSort::SortPairs sorts (destination, position) stably by destination, so
//      positions stay increasing within a destination;
//   3. a flags kernel marks where a new destination starts and cub::DeviceSelect::Flagged
//      compacts those starts into segments (their count stays on the device);
//   4. one thread per (segment, column) sums its positions in order from zero and adds the sum
//      to the base value: a grid-stride loop whose bound it reads from device memory, so the
//      launch shape depends only on the sizes and nothing waits on the host.
// Scratch comes from the stream-ordered caching allocator.
#include <algorithm>
#include <initializer_list>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>

#include "framework/core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/index.h"

namespace tessera::kernels {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;

// An out-of-range index is a device-side assertion whatever NDEBUG says; the thread then stops.
#define TESSERA_INDEX_ASSERT(ok, message)                                   \
  do {                                                                      \
    if (!(ok)) __assert_fail(message, __FILE__, __LINE__, __func__);       \
  } while (0)

template <typename Fn>
void index_dtype_switch(DType dtype, Fn&& fn) {
  if (dtype == DType::i32) {
    fn(static_cast<int32_t*>(nullptr));
  } else {
    TESSERA_ASSERT(dtype == DType::i64, "index kernels take i64 or i32 indices, got ", dtype_name(dtype));
    fn(static_cast<int64_t*>(nullptr));
  }
}

// fn(static_cast<U*>(nullptr)) with U an unsigned type of `bytes` bytes (16: uint4).
template <typename Fn>
void unit_switch(int64_t bytes, Fn&& fn) {
  switch (bytes) {
    case 1: fn(static_cast<uint8_t*>(nullptr)); return;
    case 2: fn(static_cast<uint16_t*>(nullptr)); return;
    case 4: fn(static_cast<uint32_t*>(nullptr)); return;
    case 8: fn(static_cast<uint2*>(nullptr)); return;
    case 16: fn(static_cast<uint4*>(nullptr)); return;
    default: TESSERA_ASSERT(false, "no copy unit of ", bytes, " bytes");
  }
}

// The widest unit (<= 16 bytes, >= the element size) dividing every length and aligning every pointer.
int64_t copy_unit(int64_t element, std::initializer_list<int64_t> lengths, std::initializer_list<const void*> pointers) {
  int64_t unit = 16;
  while (unit > element) {
    bool ok = true;
    for (int64_t len : lengths) ok = ok && len % unit == 0;
    for (const void* p : pointers) ok = ok && reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(unit) == 0;
    if (ok) break;
    unit /= 2;
  }
  return unit;
}

#define TESSERA_GRID_STRIDE_LOOP(i, n)                                                   \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// ---- cat ----

constexpr int kCatBatch = 8;

struct CatBatch {
  const void* data[kCatBatch];
  int64_t start[kCatBatch + 1];  // in units, relative to the batch's first unit in an output row
  int count;
};

template <typename U>
__global__ void cat_kernel(CatBatch batch, U* __restrict__ out, int64_t outer, int64_t row_units, int64_t first) {
  const int64_t span = batch.start[batch.count];
  TESSERA_GRID_STRIDE_LOOP(e, outer * span) {
    const int64_t o = e / span, r = e % span;
    int k = 0;
    while (batch.start[k + 1] <= r) ++k;
    const int64_t width = batch.start[k + 1] - batch.start[k];
    out[o * row_units + first + r] = static_cast<const U*>(batch.data[k])[o * width + (r - batch.start[k])];
  }
}

// ---- index_select, gather ----

template <typename U, typename I>
__global__ void index_select_kernel(const U* __restrict__ x, const I* __restrict__ index, U* __restrict__ out,
                                    int64_t outer, int64_t src_size, int64_t n, int64_t row_units) {
  TESSERA_GRID_STRIDE_LOOP(e, outer * n * row_units) {
    const int64_t row = e / row_units, u = e % row_units;
    const int64_t o = row / n, j = row % n;
    const int64_t t = static_cast<int64_t>(index[j]);
    TESSERA_INDEX_ASSERT(t >= 0 && t < src_size, "index_select/embedding: index out of range");
    if (t < 0 || t >= src_size) return;
    out[e] = x[(o * src_size + t) * row_units + u];
  }
}

template <typename U, typename I>
__global__ void gather_kernel(const U* __restrict__ x, Layout x_layout, int64_t x_dim_stride, int64_t bound,
                              const I* __restrict__ index, Layout index_layout, U* __restrict__ out, int64_t n) {
  TESSERA_GRID_STRIDE_LOOP(e, n) {
    const int64_t t = static_cast<int64_t>(index[index_layout.offset_of(e)]);
    TESSERA_INDEX_ASSERT(t >= 0 && t < bound, "gather: index out of range");
    if (t < 0 || t >= bound) return;
    out[e] = x[x_layout.offset_of(e) + t * x_dim_stride];
  }
}

// ---- deterministic segmented sums (index_add, scatter_add) ----

template <typename I>
__global__ void index_add_keys_kernel(const I* __restrict__ index, int64_t n, int64_t bound, uint32_t* keys,
                                      int32_t* positions) {
  TESSERA_GRID_STRIDE_LOOP(j, n) {
    const int64_t t = static_cast<int64_t>(index[j]);
    TESSERA_INDEX_ASSERT(t >= 0 && t < bound, "index_add/embedding backward: index out of range");
    keys[j] = static_cast<uint32_t>(t >= 0 && t < bound ? t : 0);
    positions[j] = static_cast<int32_t>(j);
  }
}

template <typename I>
__global__ void scatter_keys_kernel(const I* __restrict__ index, Layout index_layout, Layout out_layout,
                                    int64_t out_dim_stride, int64_t bound, uint32_t* keys, int32_t* positions,
                                    int64_t n) {
  TESSERA_GRID_STRIDE_LOOP(e, n) {
    const int64_t t = static_cast<int64_t>(index[index_layout.offset_of(e)]);
    TESSERA_INDEX_ASSERT(t >= 0 && t < bound, "scatter_add: index out of range");
    keys[e] = static_cast<uint32_t>(out_layout.offset_of(e) + (t >= 0 && t < bound ? t : 0) * out_dim_stride);
    positions[e] = static_cast<int32_t>(e);
  }
}

__global__ void segment_flags_kernel(const uint32_t* __restrict__ keys, uint8_t* __restrict__ flags, int64_t n) {
  TESSERA_GRID_STRIDE_LOOP(p, n) flags[p] = p == 0 || keys[p] != keys[p - 1];
}

// index_add: column c = (o, i) of [outer, inner]; key t is a row of the destination.
struct RowAddressing {
  int64_t inner, n, dst_size;
  __device__ int64_t source(int64_t c, int64_t position) const {
    return ((c / inner) * n + position) * inner + c % inner;
  }
  __device__ int64_t destination(int64_t c, int64_t key) const {
    return ((c / inner) * dst_size + key) * inner + c % inner;
  }
};

// scatter_add: one column; the key is the destination element, sources are strided.
struct ElementAddressing {
  Layout src_layout;
  __device__ int64_t source(int64_t, int64_t position) const { return src_layout.offset_of(position); }
  __device__ int64_t destination(int64_t, int64_t key) const { return key; }
};

template <typename T, typename Addressing>
__global__ void segment_add_kernel(T* __restrict__ out, const T* __restrict__ src, const uint32_t* __restrict__ keys,
                                   const int32_t* __restrict__ positions, const int32_t* __restrict__ starts,
                                   const int32_t* __restrict__ segment_count, int64_t n, int64_t columns,
                                   Addressing addressing) {
  using A = AccType<T>;
  const int64_t segments = *segment_count;
  TESSERA_GRID_STRIDE_LOOP(w, segments * columns) {
    const int64_t s = w / columns, c = w % columns;
    const int64_t begin = starts[s], end = s + 1 < segments ? starts[s + 1] : n;
    A acc = A(0);
    for (int64_t p = begin; p < end; ++p) acc += load(src[addressing.source(c, positions[p])]);
    T* target = out + addressing.destination(c, keys[begin]);
    *target = store<T>(load(*target) + acc);
  }
}

// Scratch for one segmented sum; freed (stream-ordered) when it goes out of scope.
struct SegmentScratch {
  int64_t n;
  cudaStream_t stream;
  uint32_t* keys = nullptr;
  uint32_t* sorted_keys = nullptr;
  int32_t* positions = nullptr;
  int32_t* sorted_positions = nullptr;
  uint8_t* flags = nullptr;
  int32_t* starts = nullptr;
  int32_t* segment_count = nullptr;

  SegmentScratch(int64_t n, cudaStream_t stream) : n(n), stream(stream) {
    TESSERA_CHECK(n <= 0x7fffffff, "index_add/scatter_add: at most 2^31-1 contributions per call, got ", n);
    const int device = cuda::current_device();
    auto take = [&](size_t bytes) { return cuda_allocate(bytes, device, stream); };
    keys = static_cast<uint32_t*>(take(sizeof(uint32_t) * n));
    sorted_keys = static_cast<uint32_t*>(take(sizeof(uint32_t) * n));
    positions = static_cast<int32_t*>(take(sizeof(int32_t) * n));
    sorted_positions = static_cast<int32_t*>(take(sizeof(int32_t) * n));
    flags = static_cast<uint8_t*>(take(n));
    starts = static_cast<int32_t*>(take(sizeof(int32_t) * n));
    segment_count = static_cast<int32_t*>(take(sizeof(int32_t)));
  }
  ~SegmentScratch() {
    for (void* p : {static_cast<void*>(keys), static_cast<void*>(sorted_keys), static_cast<void*>(positions),
                    static_cast<void*>(sorted_positions), static_cast<void*>(flags), static_cast<void*>(starts),
                    static_cast<void*>(segment_count)})
      cuda_free(p);
  }
  SegmentScratch(const SegmentScratch&) = delete;
  SegmentScratch& operator=(const SegmentScratch&) = delete;

  // Sorts (keys, positions) by key (keys < 2^key_bits) and finds the segment starts.
  void build(int key_bits) {
    size_t sort_bytes = 0, select_bytes = 0;
    TESSERA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys, sorted_keys, positions,
                                                        sorted_positions, n, 0, key_bits, stream));
    TESSERA_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, select_bytes, positions, flags, starts, segment_count, n,
                                                  stream));
    const size_t bytes = std::max<size_t>(std::max(sort_bytes, select_bytes), 1);
    void* temp = cuda_allocate(bytes, cuda::current_device(), stream);
    size_t sort_bytes_used = bytes, select_bytes_used = bytes;
    TESSERA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, sort_bytes_used, keys, sorted_keys, positions,
                                                        sorted_positions, n, 0, key_bits, stream));
    segment_flags_kernel<<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, stream>>>(sorted_keys, flags, n);
    TESSERA_CUDA_LAUNCH_CHECK();
    // `positions` still holds 0..n-1, so selecting it by the flags yields the start positions.
    TESSERA_CUDA_CHECK(cub::DeviceSelect::Flagged(temp, select_bytes_used, positions, flags, starts, segment_count,
                                                  n, stream));
    cuda_free(temp);
  }
};

int bits_for(uint64_t max_key) {
  int bits = 1;
  while (bits < 32 && (max_key >> bits) != 0) ++bits;
  return bits;
}

template <typename T, typename Addressing>
void launch_segment_add(void* out, const void* src, const SegmentScratch& s, int64_t columns, Addressing addressing) {
  segment_add_kernel<T, Addressing><<<cuda::memory_bound_blocks(s.n * columns), cuda::kThreads, 0, s.stream>>>(
      static_cast<T*>(out), static_cast<const T*>(src), s.sorted_keys, s.sorted_positions, s.starts,
      s.segment_count, s.n, columns, addressing);
  TESSERA_CUDA_LAUNCH_CHECK();
}

// ---- eq, where ----

template <typename T>
__global__ void eq_kernel(const T* __restrict__ a, Layout la, const T* __restrict__ b, Layout lb,
                          float* __restrict__ out, int64_t n) {
  TESSERA_GRID_STRIDE_LOOP(i, n) {
    bool equal;
    if constexpr (cuda::is_half_v<T>) equal = load(a[la.offset_of(i)]) == load(b[lb.offset_of(i)]);
    else equal = a[la.offset_of(i)] == b[lb.offset_of(i)];
    out[i] = equal ? 1.0f : 0.0f;
  }
}

template <typename C, typename U>
__global__ void where_kernel(const C* __restrict__ cond, Layout lc, const U* __restrict__ a, Layout la,
                             const U* __restrict__ b, Layout lb, U* __restrict__ out, int64_t n) {
  TESSERA_GRID_STRIDE_LOOP(i, n) {
    bool take_a;
    if constexpr (cuda::is_half_v<C>) take_a = load(cond[lc.offset_of(i)]) != 0.0f;
    else take_a = cond[lc.offset_of(i)] != C(0);
    out[i] = take_a ? a[la.offset_of(i)] : b[lb.offset_of(i)];
  }
}

}  // namespace

void cat_cuda(DType dtype, const CatSource* sources, int count, void* out, int64_t outer, int64_t out_size,
              int64_t inner, void* stream) {
  const int64_t element = static_cast<int64_t>(dtype_size(dtype));
  if (outer * out_size * inner == 0) return;
  int64_t unit = copy_unit(element, {out_size * inner * element}, {out});
  for (int k = 0; k < count; ++k) unit = std::min(unit, copy_unit(element, {sources[k].size * inner * element}, {sources[k].data}));
  const int64_t row_units = out_size * inner * element / unit;
  const auto s = cuda::stream_of(stream);
  unit_switch(unit, [&](auto* tag) {
    using U = std::remove_pointer_t<decltype(tag)>;
    int64_t first = 0;
    for (int k0 = 0; k0 < count; k0 += kCatBatch) {
      CatBatch batch{};
      batch.count = std::min(kCatBatch, count - k0);
      for (int k = 0; k < batch.count; ++k) {
        batch.data[k] = sources[k0 + k].data;
        batch.start[k + 1] = batch.start[k] + sources[k0 + k].size * inner * element / unit;
      }
      if (batch.start[batch.count] > 0) {
        cat_kernel<U><<<cuda::memory_bound_blocks(outer * batch.start[batch.count]), cuda::kThreads, 0, s>>>(
            batch, static_cast<U*>(out), outer, row_units, first);
        TESSERA_CUDA_LAUNCH_CHECK();
      }
      first += batch.start[batch.count];
    }
  });
}

void index_select_cuda(DType dtype, const void* x, int64_t outer, int64_t src_size, int64_t inner, DType index_dtype,
                       const void* index, int64_t n, void* out, void* stream) {
  const int64_t element = static_cast<int64_t>(dtype_size(dtype));
  if (outer * n * inner == 0) return;
  const int64_t unit = copy_unit(element, {inner * element}, {x, out});
  const int64_t row_units = inner * element / unit;
  unit_switch(unit, [&](auto* unit_tag) {
    using U = std::remove_pointer_t<decltype(unit_tag)>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      index_select_kernel<U, I><<<cuda::memory_bound_blocks(outer * n * row_units), cuda::kThreads, 0,
                                  cuda::stream_of(stream)>>>(static_cast<const U*>(x), static_cast<const I*>(index),
                                                             static_cast<U*>(out), outer, src_size, n, row_units);
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void index_add_cuda(DType dtype, void* out, int64_t outer, int64_t dst_size, int64_t inner, DType index_dtype,
                    const void* index, int64_t n, const void* src, void* stream) {
  if (n == 0 || outer * inner == 0) return;
  TESSERA_CHECK(dst_size <= 0xffffffffLL, "index_add: destination dimension of ", dst_size, " rows is too large");
  SegmentScratch scratch(n, cuda::stream_of(stream));
  index_dtype_switch(index_dtype, [&](auto* tag) {
    using I = std::remove_pointer_t<decltype(tag)>;
    index_add_keys_kernel<I><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, scratch.stream>>>(
        static_cast<const I*>(index), n, dst_size, scratch.keys, scratch.positions);
    TESSERA_CUDA_LAUNCH_CHECK();
  });
  scratch.build(bits_for(static_cast<uint64_t>(std::max<int64_t>(dst_size - 1, 0))));
  cuda::cuda_float_dtype_switch(dtype, "index_add", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    launch_segment_add<T>(out, src, scratch, outer * inner, RowAddressing{inner, n, dst_size});
  });
}

void gather_cuda(DType dtype, const void* x, Layout x_layout, int64_t x_dim_stride, int64_t bound, DType index_dtype,
                 const void* index, Layout index_layout, void* out, void* stream) {
  Layout layouts[2] = {x_layout, index_layout};
  coalesce_layouts(layouts, 2);
  const int64_t n = layouts[0].numel();
  if (n == 0) return;
  unit_switch(static_cast<int64_t>(dtype_size(dtype)), [&](auto* unit_tag) {
    using U = std::remove_pointer_t<decltype(unit_tag)>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      gather_kernel<U, I><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
          static_cast<const U*>(x), layouts[0], x_dim_stride, bound, static_cast<const I*>(index), layouts[1],
          static_cast<U*>(out), n);
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void scatter_add_cuda(DType dtype, void* out, int64_t out_numel, Layout out_layout, int64_t out_dim_stride,
                      int64_t bound, DType index_dtype, const void* index, Layout index_layout, const void* src,
                      Layout src_layout, void* stream) {
  Layout layouts[3] = {out_layout, index_layout, src_layout};
  coalesce_layouts(layouts, 3);
  const int64_t n = layouts[0].numel();
  if (n == 0) return;
  TESSERA_CHECK(out_numel <= 0xffffffffLL, "scatter_add: destination of ", out_numel, " elements is too large");
  SegmentScratch scratch(n, cuda::stream_of(stream));
  index_dtype_switch(index_dtype, [&](auto* tag) {
    using I = std::remove_pointer_t<decltype(tag)>;
    scatter_keys_kernel<I><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, scratch.stream>>>(
        static_cast<const I*>(index), layouts[1], layouts[0], out_dim_stride, bound, scratch.keys, scratch.positions,
        n);
    TESSERA_CUDA_LAUNCH_CHECK();
  });
  scratch.build(bits_for(static_cast<uint64_t>(std::max<int64_t>(out_numel - 1, 0))));
  cuda::cuda_float_dtype_switch(dtype, "scatter_add", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    launch_segment_add<T>(out, src, scratch, 1, ElementAddressing{layouts[2]});
  });
}

void eq_cuda(DType dtype, const void* a, Layout la, const void* b, Layout lb, float* out, void* stream) {
  Layout layouts[2] = {la, lb};
  coalesce_layouts(layouts, 2);
  const int64_t n = layouts[0].numel();
  if (n == 0) return;
  cuda::cuda_dtype_switch(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    eq_kernel<T><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
        static_cast<const T*>(a), layouts[0], static_cast<const T*>(b), layouts[1], out, n);
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

void where_cuda(DType cond_dtype, const void* cond, Layout lc, DType dtype, const void* a, Layout la, const void* b,
                Layout lb, void* out, void* stream) {
  Layout layouts[3] = {lc, la, lb};
  coalesce_layouts(layouts, 3);
  const int64_t n = layouts[0].numel();
  if (n == 0) return;
  unit_switch(static_cast<int64_t>(dtype_size(dtype)), [&](auto* unit_tag) {
    using U = std::remove_pointer_t<decltype(unit_tag)>;
    cuda::cuda_dtype_switch(cond_dtype, [&](auto* cond_tag) {
      using C = std::remove_pointer_t<decltype(cond_tag)>;
      where_kernel<C, U><<<cuda::memory_bound_blocks(n), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
          static_cast<const C*>(cond), layouts[0], static_cast<const U*>(a), layouts[1], static_cast<const U*>(b),
          layouts[2], static_cast<U*>(out), n);
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace tessera::kernels
