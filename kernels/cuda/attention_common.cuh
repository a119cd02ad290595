// Building blocks of the tensor-core flash-attention kernels (attention_forward.cuh,
// attention_backward.cuh): kernel parameters, the PTX wrappers (mma.sync m16n8k16, ldmatrix,
// cp.async), the swizzled shared-memory tile layout and the tile loaders.
//
// defines: AttentionParams, mma_16816, ldmatrix_x4, ldmatrix_x4_trans, cp_async_16, cp_async_4,
//          cp_async_commit, cp_async_wait, SmemTile, load_tile_async, FragmentAddress,
//          pack_pair, unpack_pair, exp2_ftz, row_max_quad, row_sum_quad, kLog2e,
//          QueryTileWalk, visible_key_tiles, load_row_stats_async, store_staged_rows
//
// Fragment layouts of mma.m16n8k16 (g = lane / 4, t = lane % 4):
//   A (16x16, row-major) a0: (g, 2t..2t+1)  a1: (g+8, 2t..)  a2: (g, 2t+8..)  a3: (g+8, 2t+8..)
//   B (16x8, "col": stored as N rows of K) b0: (k 2t..2t+1, n g)  b1: (k 2t+8.., n g)
//   C (16x8 f32) c0,c1: (g, 2t..2t+1)  c2,c3: (g+8, 2t..2t+1)
// so the C fragments of two adjacent n8 tiles are exactly the A fragment of one k16 slice:
// probabilities computed in registers feed the next product without a trip through memory.
//
// Shared tiles hold rows of 16-byte chunks; chunk c of row r is stored at chunk c ^ (r % 8).
// ldmatrix reads one chunk from each of 8 consecutive rows, which then land in 8 different
// 16-byte bank groups: no bank conflicts, and cp.async still writes whole 16-byte chunks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace tessera::kernels::attention {

constexpr float kLog2e = 1.4426950408889634f;

// Everything a kernel needs, by value. Strides are in elements; the last dim is contiguous.
struct AttentionParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;  // [batch, heads, q_len]
  int64_t q_batch, q_head, q_row;
  int64_t k_batch, k_head, k_row;
  int64_t v_batch, v_head, v_row;
  int64_t o_batch, o_head, o_row;
  int batch, heads, kv_heads, group;  // group = heads / kv_heads
  int q_len, kv_len;
  int causal_offset;  // kv_len - q_len: query i sees keys j <= i + causal_offset
  float scale, scale_log2;  // scale and scale * log2(e)
  // Backward.
  const void* dout;
  int64_t do_batch, do_head, do_row;
  void* dq;
  void* dk;
  void* dv;
  int64_t dq_batch, dq_head, dq_row;
  int64_t dk_batch, dk_head, dk_row;
  int64_t dv_batch, dv_head, dv_row;
  float* delta;     // [batch, heads, q_len]: rowsum(dout * out)
  float* dq_accum;  // [batch, heads, q_len, head_dim] f32, atomically accumulated (non-deterministic path)
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// d += a * b on the tensor cores, f32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// 16 bytes global -> shared, bypassing L1; `valid` false writes 16 zero bytes instead.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

// 4 bytes global -> shared (row statistics); `valid` false writes zeros.
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Two floats as one register of two 16-bit values (the lower column in the low half).
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}

// The inverse of pack_pair.
template <typename T>
__device__ __forceinline__ float2 unpack_pair(uint32_t r) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&r));
  } else {
    return __half22float2(*reinterpret_cast<const __half2*>(&r));
  }
}

// 2^x on the special-function unit with subnormal results flushed to zero (exp2f without
// --use_fast_math adds a scale-and-fixup around MUFU.EX2 for subnormals; probabilities below
// 2^-126 do not matter here). 2^-inf = 0.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Reductions over the 4 lanes (t = 0..3) that share a fragment row.
__device__ __forceinline__ float row_max_quad(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float row_sum_quad(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// A [Rows x Cols] tile of 16-bit elements in shared memory, swizzled as described above.
// Cols is a multiple of 64 (at least 8 chunks per row).
template <int Rows, int Cols>
struct SmemTile {
  static_assert(Cols % 64 == 0, "swizzle needs at least 8 chunks per row");
  static constexpr int kElements = Rows * Cols;
  static constexpr int kBytes = kElements * 2;
  // Element offset of (row, col); col is a multiple of 8 for chunk accesses.
  __device__ __forceinline__ static int offset(int row, int col) {
    return row * Cols + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7);
  }
};

// Issues cp.async copies of rows [row0, row0 + Rows) of a [len, Cols] global matrix (row stride
// `row_stride` elements) into the swizzled tile at `smem`; rows at or past `len` become zeros.
template <int Rows, int Cols, int Threads, typename T>
__device__ __forceinline__ void load_tile_async(T* smem, const T* global, int64_t row_stride, int row0, int len) {
  constexpr int kChunksPerRow = Cols / 8;
  constexpr int kChunks = Rows * kChunksPerRow;
  static_assert(kChunks % Threads == 0, "tile chunks must divide evenly among threads");
#pragma unroll
  for (int i = 0; i < kChunks / Threads; ++i) {
    const int chunk = static_cast<int>(threadIdx.x) + i * Threads;
    const int row = chunk / kChunksPerRow, col = (chunk % kChunksPerRow) * 8;
    const bool valid = row0 + row < len;
    const T* src = valid ? global + static_cast<int64_t>(row0 + row) * row_stride + col : global;
    cp_async_16(smem_u32(smem + SmemTile<Rows, Cols>::offset(row, col)), src, valid);
  }
}

// The backward's walk of one block of keys [n0, n0 + kBlockN) over query tiles of BlockM rows:
// for each query head sharing the kv head (GQA), the tiles that can see the keys (causal
// skips those entirely above the diagonal), in order.
template <int BlockM, bool IsCausal>
struct QueryTileWalk {
  int first, per_head, steps;
  __device__ __forceinline__ QueryTileWalk(const AttentionParams& p, int n0) {
    const int q_tiles = (p.q_len + BlockM - 1) / BlockM;
    first = 0;
    if (IsCausal) {
      const int first_query = n0 - p.causal_offset;
      first = first_query <= 0 ? 0 : min(q_tiles, first_query / BlockM);
    }
    per_head = q_tiles - first;
    steps = p.group * per_head;
  }
  __device__ __forceinline__ int head(const AttentionParams& p, int hk, int step) const {
    return hk * p.group + step / per_head;
  }
  __device__ __forceinline__ int query0(int step) const { return (first + step % per_head) * BlockM; }
};

// The number of BlockN-key tiles that query rows [m0, m0 + BlockM) see: all of them, or with
// a causal mask those up to the diagonal of the block's last row (0 when it sees no key).
template <int BlockM, int BlockN, bool IsCausal>
__device__ __forceinline__ int visible_key_tiles(const AttentionParams& p, int m0) {
  const int n_tiles = (p.kv_len + BlockN - 1) / BlockN;
  if (!IsCausal) return n_tiles;
  const int last_key = m0 + BlockM - 1 + p.causal_offset;
  return last_key < 0 ? 0 : min(n_tiles, last_key / BlockN + 1);
}

// cp.async of lse and delta for query rows [q0, q0 + BlockM) of (batch, head) row block
// `rows` (= (b * heads + h) * q_len): threads [0, BlockM) copy lse, [BlockM, 2 BlockM) delta;
// rows past q_len become zeros.
template <int BlockM>
__device__ __forceinline__ void load_row_stats_async(float* lse_dst, float* delta_dst, const AttentionParams& p,
                                                     int64_t rows, int q0, int tid) {
  const int r = tid % BlockM;
  const bool valid = q0 + r < p.q_len;
  if (tid < BlockM) {
    cp_async_4(smem_u32(lse_dst + r), valid ? p.lse + rows + q0 + r : p.lse, valid);
  } else if (tid < 2 * BlockM) {
    cp_async_4(smem_u32(delta_dst + r), valid ? p.delta + rows + q0 + r : p.delta, valid);
  }
}

// Stores rows [0, Rows) of a tile staged in shared memory (layout Tile: SmemTile or the sm90
// WgTile) to global rows row0 + r < len, 16 bytes a thread.
template <typename Tile, int Rows, int Cols, int Threads, typename T>
__device__ __forceinline__ void store_staged_rows(T* global, int64_t row_stride, int row0, int len, const T* smem,
                                                  int tid) {
  constexpr int kChunksPerRow = Cols / 8;
#pragma unroll
  for (int c = tid; c < Rows * kChunksPerRow; c += Threads) {
    const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    if (row0 + row < len)
      *reinterpret_cast<uint4*>(global + static_cast<int64_t>(row0 + row) * row_stride + col) =
          *reinterpret_cast<const uint4*>(smem + Tile::offset(row, col));
  }
}

// Per-lane ldmatrix.x4 addresses into a swizzled [Rows][Cols] tile. Each lane supplies one
// row address: its row within a 16x16 block is (lane % 8) + 8 * (one lane bit) and its chunk
// (0 or 1, i.e. +8 columns) the other lane bit. Blocks start at rows that are multiples of 8
// and at even chunks, so the swizzled chunk is chunk0 ^ x with x = lane chunk ^ (lane row % 8)
// fixed per lane: (block start) only adds compile-time immediates to one of four per-lane
// values, which keeps the addresses of a fully unrolled loop out of the register file.
//   RowsFromBit3 (lane bit 3 picks rows +8, bit 4 picks cols +8), call (row0, col0):
//     - A fragment of a row-major [m][k] block          -> ldmatrix_x4(at(m0, k0))
//     - B fragments of a [k][n] block, two n8 tiles     -> ldmatrix_x4_trans(at(k0, n0))
//   RowsFromBit4 (lane bit 4 picks rows +8, bit 3 picks cols +8):
//     - B fragments of an [n][k] block, two n8 tiles    -> ldmatrix_x4(at(n0, k0))
//     - A fragment of a block stored as [k][m]           -> ldmatrix_x4_trans(at(k0, m0))
// Registers come back as {b0, b1} of the first n8 tile then {b0, b1} of the second.
enum class LanePattern { RowsFromBit3, RowsFromBit4 };

template <int Cols, LanePattern Pattern>
struct FragmentAddress {
  uint32_t row_base;  // shared address of the lane's row in block (0, 0)
  uint32_t x;         // lane chunk ^ (lane row % 8)

  __device__ __forceinline__ FragmentAddress(const void* tile, int lane) {
    const int bit3 = (lane >> 3) & 1, bit4 = lane >> 4;
    const int row = (lane & 7) + 8 * (Pattern == LanePattern::RowsFromBit3 ? bit3 : bit4);
    const int chunk = Pattern == LanePattern::RowsFromBit3 ? bit4 : bit3;
    row_base = smem_u32(tile) + row * Cols * 2;
    x = static_cast<uint32_t>(chunk ^ (lane & 7));
  }
  // The same for the sub-block starting at (row0, col0) of the tile, so that a warp's own
  // block (runtime offsets) is again addressed by compile-time immediates: row0 is a multiple
  // of 8 and col0 a multiple of the width W (a power of two, in columns, at least 16) of the
  // sub-block, which then holds columns col0 + [0, W) with col0 + c = col0 | c.
  __device__ __forceinline__ FragmentAddress(const void* tile, int lane, int row0, int col0)
      : FragmentAddress(tile, lane) {
    const uint32_t chunk0 = static_cast<uint32_t>(col0 >> 3);
    row_base += row0 * Cols * 2 + ((chunk0 & ~7u) << 4);
    x ^= chunk0 & 7u;
  }
  // row0: multiple of 8; col0: multiple of 16 (both compile-time in unrolled loops).
  __device__ __forceinline__ uint32_t at(int row0, int col0) const {
    const uint32_t chunk0 = static_cast<uint32_t>(col0 >> 3);
    return row_base + row0 * Cols * 2 + ((((chunk0 & 7u) ^ x)) << 4) + ((chunk0 & ~7u) << 4);
  }
  // The same address computed another way: the tile starts 128-byte aligned and its rows are
  // at least 128 bytes, so row_base has no low bits, the lane's chunk goes in once
  // (row_base + (x << 4)) and a block's swizzle is one XOR with an immediate. Which of the two
  // forms fits a kernel in 255 registers is up to ptxas's hoisting: the forward uses at(), the
  // dK/dV kernel at_xor() (with at() it spills).
  __device__ __forceinline__ uint32_t at_xor(int row0, int col0) const {
    const uint32_t chunk0 = static_cast<uint32_t>(col0 >> 3);
    return ((row_base + (x << 4)) + row0 * Cols * 2 + ((chunk0 & ~7u) << 4)) ^ ((chunk0 & 7u) << 4);
  }
};

}  // namespace tessera::kernels::attention
