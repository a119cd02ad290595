// CPU index and selection kernels (kernels/index.h): the reference for kernels/cuda/index.cu.
//
// Copies move whole rows with memcpy. index_add and scatter_add group contributions by
// destination first (a stable counting sort, or a sort of (destination, position) pairs), then
// let threads own disjoint destinations, each summing its contributions in position order:
// deterministic for any thread count, and the same order as the CUDA kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/index.h"

namespace tessera::kernels {
namespace {

// Calls fn(static_cast<U*>(nullptr)) with U an unsigned integer type of `bytes` bytes: copies
// need only the element size, not the element type.
template <typename Fn>
void element_size_switch(size_t bytes, Fn&& fn) {
  switch (bytes) {
    case 1: fn(static_cast<uint8_t*>(nullptr)); return;
    case 2: fn(static_cast<uint16_t*>(nullptr)); return;
    case 4: fn(static_cast<uint32_t*>(nullptr)); return;
    case 8: fn(static_cast<uint64_t*>(nullptr)); return;
    default: TESSERA_ASSERT(false, "no element type of ", bytes, " bytes");
  }
}

int64_t read_index(DType dtype, const void* index, int64_t offset) {
  return dtype == DType::i32 ? static_cast<const int32_t*>(index)[offset] : static_cast<const int64_t*>(index)[offset];
}

// Calls fn(i, offsets...) for every element i (row-major) of `count` layouts of the same sizes,
// in parallel over rows of the innermost dimension.
template <int Count, typename Fn>
void for_each_element(Layout (&layouts)[Count], Fn&& fn) {
  coalesce_layouts(layouts, Count);
  const int64_t n = layouts[0].numel();
  if (n == 0) return;
  const int inner_dim = layouts[0].ndim - 1;
  const int64_t inner = layouts[0].sizes[inner_dim];
  Layout outer[Count];
  int64_t step[Count];
  for (int k = 0; k < Count; ++k) {
    outer[k] = layouts[k];
    outer[k].ndim = inner_dim;
    step[k] = layouts[k].strides[inner_dim];
  }
  cpu::parallel_for(n / inner, [&](int64_t begin, int64_t end) {
    int64_t base[Count];
    for (int64_t r = begin; r < end; ++r) {
      for (int k = 0; k < Count; ++k) base[k] = outer[k].offset_of(r);
      for (int64_t i = 0; i < inner; ++i) {
        if constexpr (Count == 2) fn(r * inner + i, base[0] + i * step[0], base[1] + i * step[1]);
        else fn(r * inner + i, base[0] + i * step[0], base[1] + i * step[1], base[2] + i * step[2]);
      }
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(inner, 1)));
}

// Sums rows of `src` into rows of `out` given contributions grouped by destination:
// positions[starts[s] .. starts[s+1]) all go to destination row dest[s].
template <typename T>
void segment_add_rows(T* out, const T* src, const std::vector<int64_t>& dest, const std::vector<int64_t>& starts,
                      const std::vector<int64_t>& positions, int64_t width, int64_t dest_row_stride,
                      int64_t src_row_stride, const int64_t* src_offsets) {
  using A = cpu::AccType<T>;
  const int64_t segments = static_cast<int64_t>(dest.size());
  cpu::parallel_for(segments, [&](int64_t begin, int64_t end) {
    std::vector<A> acc(static_cast<size_t>(width));
    for (int64_t s = begin; s < end; ++s) {
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t p = starts[s]; p < starts[s + 1]; ++p) {
        const int64_t j = positions[p];
        const T* row = src + (src_offsets ? src_offsets[j] : j * src_row_stride);
        for (int64_t i = 0; i < width; ++i) acc[i] += cpu::load(row[i]);
      }
      T* target = out + dest[s] * dest_row_stride;
      for (int64_t i = 0; i < width; ++i) target[i] = cpu::store<T>(cpu::load(target[i]) + acc[i]);
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(width, 1)));
}

}  // namespace

int64_t find_bad_index_cpu(DType index_dtype, const void* index, Layout layout, int64_t bound, int64_t* bad_value) {
  const int64_t n = layout.numel();
  for (int64_t e = 0; e < n; ++e) {
    const int64_t v = read_index(index_dtype, index, layout.offset_of(e));
    if (v < 0 || v >= bound) {
      *bad_value = v;
      return e;
    }
  }
  return -1;
}

void cat_cpu(DType dtype, const CatSource* sources, int count, void* out, int64_t outer, int64_t out_size,
             int64_t inner) {
  const int64_t element = static_cast<int64_t>(dtype_size(dtype));
  const int64_t out_row = out_size * inner * element;
  char* dst = static_cast<char*>(out);
  cpu::parallel_for(outer, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      int64_t at = o * out_row;
      for (int k = 0; k < count; ++k) {
        const int64_t bytes = sources[k].size * inner * element;
        if (bytes > 0) std::memcpy(dst + at, static_cast<const char*>(sources[k].data) + o * bytes, bytes);
        at += bytes;
      }
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(out_size * inner, 1)));
}

void index_select_cpu(DType dtype, const void* x, int64_t outer, int64_t src_size, int64_t inner, DType index_dtype,
                      const void* index, int64_t n, void* out) {
  const int64_t row = inner * static_cast<int64_t>(dtype_size(dtype));
  const char* src = static_cast<const char*>(x);
  char* dst = static_cast<char*>(out);
  cpu::parallel_for(outer * n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r / n, j = r % n;
      const int64_t t = read_index(index_dtype, index, j);
      std::memcpy(dst + r * row, src + (o * src_size + t) * row, row);
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(inner, 1)));
}

void index_add_cpu(DType dtype, void* out, int64_t outer, int64_t dst_size, int64_t inner, DType index_dtype,
                   const void* index, int64_t n, const void* src) {
  if (n == 0 || outer * inner == 0) return;
  // Stable counting sort of positions by destination.
  std::vector<int64_t> count(static_cast<size_t>(dst_size) + 1, 0);
  for (int64_t j = 0; j < n; ++j) ++count[read_index(index_dtype, index, j) + 1];
  for (int64_t t = 0; t < dst_size; ++t) count[t + 1] += count[t];
  std::vector<int64_t> positions(static_cast<size_t>(n));
  {
    std::vector<int64_t> fill(count.begin(), count.end() - 1);
    for (int64_t j = 0; j < n; ++j) positions[fill[read_index(index_dtype, index, j)]++] = j;
  }
  // Segments: one per (outer row, used destination).
  std::vector<int64_t> dest, starts;
  std::vector<int64_t> seg_positions;
  seg_positions.reserve(static_cast<size_t>(outer * n));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t t = 0; t < dst_size; ++t) {
      if (count[t] == count[t + 1]) continue;
      dest.push_back(o * dst_size + t);
      starts.push_back(static_cast<int64_t>(seg_positions.size()));
      for (int64_t p = count[t]; p < count[t + 1]; ++p) seg_positions.push_back(o * n + positions[p]);
    }
  starts.push_back(static_cast<int64_t>(seg_positions.size()));
  float_dtype_switch(dtype, "index_add", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    segment_add_rows<T>(static_cast<T*>(out), static_cast<const T*>(src), dest, starts, seg_positions, inner, inner,
                        inner, nullptr);
  });
}

void gather_cpu(DType dtype, const void* x, Layout x_layout, int64_t x_dim_stride, DType index_dtype,
                const void* index, Layout index_layout, void* out) {
  element_size_switch(dtype_size(dtype), [&](auto* tag) {
    using U = std::remove_pointer_t<decltype(tag)>;
    const U* src = static_cast<const U*>(x);
    U* dst = static_cast<U*>(out);
    Layout layouts[2] = {x_layout, index_layout};
    for_each_element<2>(layouts, [&](int64_t e, int64_t x_offset, int64_t index_offset) {
      dst[e] = src[x_offset + read_index(index_dtype, index, index_offset) * x_dim_stride];
    });
  });
}

void scatter_add_cpu(DType dtype, void* out, Layout out_layout, int64_t out_dim_stride, DType index_dtype,
                     const void* index, Layout index_layout, const void* src, Layout src_layout) {
  const int64_t n = index_layout.numel();
  if (n == 0) return;
  // (destination offset, position) pairs sorted: positions stay in increasing order per destination.
  std::vector<std::pair<int64_t, int64_t>> pairs(static_cast<size_t>(n));
  std::vector<int64_t> src_offsets(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    const int64_t t = read_index(index_dtype, index, index_layout.offset_of(e));
    pairs[e] = {out_layout.offset_of(e) + t * out_dim_stride, e};
    src_offsets[e] = src_layout.offset_of(e);
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<int64_t> dest, starts, positions(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    if (p == 0 || pairs[p].first != pairs[p - 1].first) {
      dest.push_back(pairs[p].first);
      starts.push_back(p);
    }
    positions[p] = pairs[p].second;
  }
  starts.push_back(n);
  float_dtype_switch(dtype, "scatter_add", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    segment_add_rows<T>(static_cast<T*>(out), static_cast<const T*>(src), dest, starts, positions, 1, 1, 0,
                        src_offsets.data());
  });
}

void eq_cpu(DType dtype, const void* a, Layout la, const void* b, Layout lb, float* out) {
  dtype_switch(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    Layout layouts[2] = {la, lb};
    for_each_element<2>(layouts, [&](int64_t i, int64_t oa, int64_t ob) {
      bool equal;
      if constexpr (cpu::is_half_v<T>) equal = cpu::load(pa[oa]) == cpu::load(pb[ob]);
      else equal = pa[oa] == pb[ob];
      out[i] = equal ? 1.0f : 0.0f;
    });
  });
}

void where_cpu(DType cond_dtype, const void* cond, Layout lc, DType dtype, const void* a, Layout la, const void* b,
               Layout lb, void* out) {
  element_size_switch(dtype_size(dtype), [&](auto* value_tag) {
    using U = std::remove_pointer_t<decltype(value_tag)>;
    const U* pa = static_cast<const U*>(a);
    const U* pb = static_cast<const U*>(b);
    U* po = static_cast<U*>(out);
    dtype_switch(cond_dtype, [&](auto* cond_tag) {
      using C = std::remove_pointer_t<decltype(cond_tag)>;
      const C* pc = static_cast<const C*>(cond);
      Layout layouts[3] = {lc, la, lb};
      for_each_element<3>(layouts, [&](int64_t i, int64_t oc, int64_t oa, int64_t ob) {
        bool take_a;
        if constexpr (cpu::is_half_v<C>) take_a = cpu::load(pc[oc]) != 0.0f;
        else take_a = pc[oc] != C(0);
        po[i] = take_a ? pa[oa] : pb[ob];
      });
    });
  });
}

}  // namespace tessera::kernels
