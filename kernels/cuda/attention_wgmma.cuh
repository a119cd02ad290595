// Hopper (sm_90a) building blocks of the wgmma attention kernels (sm90a/*.cu): warpgroup
// matrix multiplies from shared-memory descriptors, their fences, and the 128-byte-swizzled
// tile layout those descriptors describe. Include only from translation units built for
// sm_90a (kernels/cuda/sm90a, see CMakeLists.txt).
//
// defines: WgTile, load_wgtile_async, smem_desc, kmajor_desc, mnmajor_desc, wgmma_fence, wgmma_commit, wgmma_wait,
//          fence_operands, fence_proxy_async, wgmma_ss, wgmma_rs, mbar_init, mbar_init_fence,
//          mbar_arrive_expect_tx, mbar_wait, tma_load_4d, make_tile_map (host)
//
// wgmma.mma_async m64nNk16 (PTX ISA, "asynchronous warpgroup level matrix multiply"): the 4
// warps of a warpgroup compute D[64 x N] (+)= A[64 x 16] B[16 x N]; warp w holds rows
// [16w, 16w + 16) of D in the mma.m16n8 accumulator layout repeated over N / 8 column tiles
// (d[4j + e] is row 16w + g + 8 (e >= 2), column 8j + 2t + (e & 1); g = lane / 4, t = lane % 4).
// A comes from shared memory (descriptor) or from registers in the mma.m16n8k16 A layout for
// the warp's 16 rows, so two adjacent accumulator column tiles are one A k-slice, as with
// mma.sync. B always comes from shared memory.
//
// Shared layout (WgTile): a [Rows x Cols] tile of 16-bit elements is stored as Cols / 64
// column blocks of [Rows][64] (128-byte rows), each row's 16-byte chunk c at c ^ (row % 8) —
// the hardware's 128-byte swizzle, which XORs address bits [4, 7) with bits [7, 10), so tiles
// start 1024-byte aligned. A descriptor names a start address, the byte distance between
// 8-row groups (SBO, 1024 here) and, for operands whose contiguous dimension is M or N
// ("transposed", MN-major), the distance between 64-element column blocks (LBO):
//   K-major (K contiguous, e.g. K as A of K Q^T): 16 columns of K per instruction, inside
//     one column block: start = block + row0 * 128 + (k % 64) * 2.
//   MN-major (e.g. dout [queries][d] as B of P^T dout, K = queries): start = block + k0 * 128,
//     N spans column blocks LBO apart.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cuda.h>  // CUtensorMap (the type only; the encoder comes through the runtime)

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/attention_common.cuh"

namespace tessera::kernels::attention::sm90 {

template <int Rows, int Cols>
struct WgTile {
  static_assert(Cols % 64 == 0 && Rows % 8 == 0, "whole 8 x 64 swizzle atoms");
  static constexpr int kElements = Rows * Cols;
  static constexpr int kBytes = kElements * 2;
  static constexpr int kBlockBytes = Rows * 128;  // one 64-column block
  // Element offset of (row, col); col is a multiple of 2 (or of 8 for chunk accesses).
  __device__ __forceinline__ static int offset(int row, int col) {
    return (col >> 6) * (Rows * 64) + row * 64 + ((((col >> 3) & 7) ^ (row & 7)) << 3) + (col & 7);
  }
};

// cp.async copies of rows [row0, row0 + Rows) of a [len, Cols] global matrix into a WgTile;
// rows at or past `len` become zeros. Consecutive threads take consecutive 16-byte chunks of
// a row (coalesced reads; 8 threads fill one 128-byte shared row, conflict-free).
template <int Rows, int Cols, int Threads, typename T>
__device__ __forceinline__ void load_wgtile_async(T* smem, const T* global, int64_t row_stride, int row0, int len,
                                                  int tid) {
  constexpr int kChunksPerRow = Cols / 8;
  constexpr int kChunks = Rows * kChunksPerRow;
  static_assert(kChunks % Threads == 0, "tile chunks must divide evenly among threads");
#pragma unroll
  for (int i = 0; i < kChunks / Threads; ++i) {
    const int chunk = tid + i * Threads;
    const int row = chunk / kChunksPerRow, col = (chunk % kChunksPerRow) * 8;
    const bool valid = row0 + row < len;
    const T* src = valid ? global + static_cast<int64_t>(row0 + row) * row_stride + col : global;
    cp_async_16(smem_u32(smem + WgTile<Rows, Cols>::offset(row, col)), src, valid);
  }
}

// Descriptor of a 128-byte-swizzled operand at shared address `addr` (bits 0-13: addr / 16,
// 16-29: LBO / 16, 32-45: SBO / 16, 62-63: swizzle mode, 1 = 128 bytes).
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>((lbo_bytes >> 4) & 0x3FFF) << 16) |
         (static_cast<uint64_t>((sbo_bytes >> 4) & 0x3FFF) << 32) | (uint64_t{1} << 62);
}
// The two operand kinds over WgTile storage (8-row groups of 128-byte rows: SBO 1024 bytes).
// K-major: LBO unused (16). MN-major: LBO = the tile's 64-column block size (WgTile::kBlockBytes).
constexpr uint32_t kRowGroupBytes = 8 * 128;
__device__ __forceinline__ uint64_t kmajor_desc(uint32_t addr) { return smem_desc(addr, 16, kRowGroupBytes); }
__device__ __forceinline__ uint64_t mnmajor_desc(uint32_t addr, uint32_t block_bytes) {
  return smem_desc(addr, block_bytes, kRowGroupBytes);
}

// Orders this warpgroup's register writes before the wgmma that read them (accumulators, A).
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N committed wgmma groups of this warpgroup are pending.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins registers in place relative to the asm around it: after wgmma_wait, reads of an
// accumulator must not move above the wait (the compiler sees the wgmma asm as the write).
template <int N>
__device__ __forceinline__ void fence_operands(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// Makes this thread's generic-proxy shared-memory writes (st.shared, cp.async) visible to the
// async proxy that wgmma reads shared memory through; a barrier follows.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// --- Tensor memory accelerator (TMA) loads, completed on an mbarrier -------------------------

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes initialised barriers visible to the async proxy (the TMA unit); a block barrier follows.
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
// Arrives once and announces `bytes` of transactions (TMA writes) the phase waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Spins until the phase with the given parity has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// One box of a 4-d tensor map (coordinates innermost first) into shared memory at `dst`; the
// bytes count against `bar`'s current phase. Coordinates past the tensor read as zeros.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, int c3,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}

// Host: a tensor map over a [batch][heads][len][cols] tensor of 16-bit elements (strides in
// elements, the last dim contiguous) whose box is 64 columns x box_rows rows of one (batch,
// head), with the 128-byte swizzle: one box fills one 64-column block of a WgTile<box_rows, *>.
CUtensorMap make_tile_map(const void* base, bool bf16, int64_t cols, int64_t len, int64_t heads, int64_t batch,
                          int64_t row_stride, int64_t head_stride, int64_t batch_stride, int box_rows);

// D[64 x N] (+)= A B with f32 accumulators d[N / 2]; `accumulate` 0 overwrites D. wgmma_ss
// (N = 32, 64, 128): A and B from descriptors, TransA / TransB 1 for MN-major operands.
// wgmma_rs (N = 64, 128): A from registers (mma.m16n8k16 A layout of the warp's 16 rows).
// The PTX names the element type literally: each wrapper is one asm statement (a macro over
// the type name) expanded for bf16 and f16.
#define TESSERA_WGMMA_BY_TYPE(T, ASM) \
  if constexpr (std::is_same_v<T, __nv_bfloat16>) { \
    ASM("bf16"); \
  } else { \
    ASM("f16"); \
  }

#define TESSERA_WGMMA_D32 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
template <typename T, int TransA, int TransB>
__device__ __forceinline__ void wgmma_ss(float (&d)[16], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#define TESSERA_WGMMA_ASM(TY) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\nwgmma.mma_async.sync.aligned.m64n32k16.f32." TY "." TY \
               " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, %19, %20;\n}\n" \
               : TESSERA_WGMMA_D32 \
               : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(TransA), "n"(TransB))
  TESSERA_WGMMA_BY_TYPE(T, TESSERA_WGMMA_ASM)
#undef TESSERA_WGMMA_ASM
}

#undef TESSERA_WGMMA_D32

#define TESSERA_WGMMA_D64 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
template <typename T, int TransA, int TransB>
__device__ __forceinline__ void wgmma_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#define TESSERA_WGMMA_ASM(TY) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\nwgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY \
               " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n" \
               : TESSERA_WGMMA_D64 \
               : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(TransA), "n"(TransB))
  TESSERA_WGMMA_BY_TYPE(T, TESSERA_WGMMA_ASM)
#undef TESSERA_WGMMA_ASM
}

template <typename T, int TransB>
__device__ __forceinline__ void wgmma_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#define TESSERA_WGMMA_ASM(TY) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\nwgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY \
               " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n" \
               : TESSERA_WGMMA_D64 \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate), "n"(TransB))
  TESSERA_WGMMA_BY_TYPE(T, TESSERA_WGMMA_ASM)
#undef TESSERA_WGMMA_ASM
}

#undef TESSERA_WGMMA_D64

#define TESSERA_WGMMA_D128 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
template <typename T, int TransA, int TransB>
__device__ __forceinline__ void wgmma_ss(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#define TESSERA_WGMMA_ASM(TY) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\nwgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY \
               " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, %67, %68;\n}\n" \
               : TESSERA_WGMMA_D128 \
               : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(TransA), "n"(TransB))
  TESSERA_WGMMA_BY_TYPE(T, TESSERA_WGMMA_ASM)
#undef TESSERA_WGMMA_ASM
}

template <typename T, int TransB>
__device__ __forceinline__ void wgmma_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#define TESSERA_WGMMA_ASM(TY) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\nwgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY \
               " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n" \
               : TESSERA_WGMMA_D128 \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate), "n"(TransB))
  TESSERA_WGMMA_BY_TYPE(T, TESSERA_WGMMA_ASM)
#undef TESSERA_WGMMA_ASM
}

#undef TESSERA_WGMMA_D128

#undef TESSERA_WGMMA_BY_TYPE

}  // namespace tessera::kernels::attention::sm90
