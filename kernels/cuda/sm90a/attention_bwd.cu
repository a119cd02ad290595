// Flash-attention backward on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a):
// the dK/dV kernel of attention_backward.cuh rebuilt around wgmma.mma_async, for head_dim 64
// and 128.
// Built for sm_90a only (CMakeLists.txt); launch_backward (attention_backward.cuh) calls it on
// compute capability 9.0 unless TESSERA_ATTENTION_WGMMA=0.
//
// One block of two warpgroups owns kBlockN = 128 keys of one (batch, kv head); warpgroup w
// owns keys [64w, 64w + 64) and keeps their dK and dV (64 x d each, f32) in registers over
// every 64-query tile of every query head sharing the kv head. Per query tile:
//   1. S^T = K Q^T and dP^T = V dout^T (each warpgroup: 64 keys x 64 queries, A = its K or V
//      rows, B = the Q or dout tile, both K-major from shared memory), two commit groups so
//      the exponentials of P^T = 2^(S^T c - lse log2 e) overlap the dP^T product;
//      dS^T = P^T (dP^T - delta), all in registers.
//   2. dV += P^T dout and dK += dS^T Q with P^T and dS^T as register A operands (the
//      accumulator layout is the A layout) and dout, Q as MN-major B: no shared-memory round
//      trip for P. dS^T also goes to shared memory for step 3.
//   3. After a barrier (both warpgroups' dS^T): dQ += dS K over the block's 128 keys,
//      warpgroup w taking head-dim columns [w d/2, (w + 1) d/2) (A = dS^T read MN-major, B = K
//      MN-major), added with float2 atomics to the f32 accumulator (as the mma.sync path).
//      Without AccumulateDq (the deterministic backward) step 3 is left to the dQ kernel of
//      attention_backward.cuh.
// Q and dout of the next tile are prefetched by TMA (one thread, an mbarrier per stage) and its
// row statistics by cp.async (double buffer), right after the barrier that opens a step.
#include <cuda_runtime.h>

#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/attention_wgmma.cuh"

namespace tessera::kernels::attention {
namespace sm90 {

template <int HeadDim>
struct BackwardTraits {
  static constexpr int kThreads = 256;  // two warpgroups
  static constexpr int kBlockN = 128;   // keys per block, 64 per warpgroup
  static constexpr int kBlockM = 64;    // queries per step
  static constexpr int kDqCols = HeadDim / 2;  // dQ columns per warpgroup
  using KTile = WgTile<kBlockN, HeadDim>;
  using QTile = WgTile<kBlockM, HeadDim>;
  using STile = WgTile<kBlockN, kBlockM>;  // dS^T [keys][queries]
  // K, V, Q stage 0/1, dout stage 0/1, dS^T, lse and delta for two stages, an mbarrier per
  // stage; plus slack to align the start to 1024 bytes (the swizzle pattern's period).
  static constexpr int kSmemBytes =
      2 * KTile::kBytes + 4 * QTile::kBytes + STile::kBytes + 4 * kBlockM * 4 + 2 * 8 + 1024;
  static_assert(HeadDim == 64 || HeadDim == 128, "head_dim 64 or 128");
};

template <typename T, int HeadDim, bool IsCausal, bool AccumulateDq>
__global__ void __launch_bounds__(BackwardTraits<HeadDim>::kThreads, 1)
    flash_backward_wgmma_kernel(const AttentionParams p, const __grid_constant__ CUtensorMap q_map,
                                const __grid_constant__ CUtensorMap do_map) {
  using Tr = BackwardTraits<HeadDim>;
  using KTile = typename Tr::KTile;
  using QTile = typename Tr::QTile;
  using STile = typename Tr::STile;
  constexpr int kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN, kThreads = Tr::kThreads;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024u - (smem_u32(smem_raw) & 1023u)) & 1023u);
  T* sK = reinterpret_cast<T*>(smem);
  T* sV = sK + KTile::kElements;
  T* sQ = sV + KTile::kElements;
  T* sdO = sQ + 2 * QTile::kElements;
  T* sdSt = sdO + 2 * QTile::kElements;
  float* sLse = reinterpret_cast<float*>(sdSt + STile::kElements);
  float* sDelta = sLse + 2 * kBlockM;
  const uint32_t bars = smem_u32(sDelta + 2 * kBlockM);  // stage s: bars + 8 s

  const int b = blockIdx.x / p.kv_heads, hk = blockIdx.x % p.kv_heads;
  const int n0 = blockIdx.y * kBlockN;
  const int tid = threadIdx.x, wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32, g = lane / 4, t = lane % 4;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_batch + hk * p.k_head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_batch + hk * p.v_head;

  const QueryTileWalk<kBlockM, IsCausal> walk(p, n0);
  const int steps = walk.steps;

  // Q and dout of a step by TMA (thread 0; one box per 64 columns, completed on the stage's
  // mbarrier: use u of a stage waits for parity u & 1, step s is use s / 2), lse and delta by
  // cp.async.
  auto issue = [&](int step, int stage) {
    const int h = walk.head(p, hk, step), q0 = walk.query0(step);
    if (tid == 0) {
      const uint32_t bar = bars + 8 * stage;
      mbar_arrive_expect_tx(bar, 2 * QTile::kBytes);
#pragma unroll
      for (int c = 0; c < HeadDim / 64; ++c) {
        tma_load_4d(smem_u32(sQ + stage * QTile::kElements) + c * QTile::kBlockBytes, &q_map, c * 64, q0, h, b, bar);
        tma_load_4d(smem_u32(sdO + stage * QTile::kElements) + c * QTile::kBlockBytes, &do_map, c * 64, q0, h, b, bar);
      }
    }
    load_row_stats_async<kBlockM>(sLse + stage * kBlockM, sDelta + stage * kBlockM, p,
                                  static_cast<int64_t>(b * p.heads + h) * p.q_len, q0, tid);
  };

  if (tid == 0) {
    mbar_init(bars, 1);
    mbar_init(bars + 8, 1);
    mbar_init_fence();
  }
  __syncthreads();
  load_wgtile_async<kBlockN, HeadDim, kThreads>(sK, kg, p.k_row, n0, p.kv_len, tid);
  load_wgtile_async<kBlockN, HeadDim, kThreads>(sV, vg, p.v_row, n0, p.kv_len, tid);
  if (steps > 0) issue(0, 0);
  cp_async_commit();

  const uint32_t k_addr = smem_u32(sK), v_addr = smem_u32(sV), q_addr = smem_u32(sQ), do_addr = smem_u32(sdO);
  const uint32_t st_addr = smem_u32(sdSt);

  float dk[HeadDim / 2], dv[HeadDim / 2];
#pragma unroll
  for (int i = 0; i < HeadDim / 2; ++i) dk[i] = dv[i] = 0.f;

  for (int step = 0; step < steps; ++step) {
    const int stage = step & 1;
    // This step's tiles have landed (K and V, loaded by cp.async, made visible to wgmma's async
    // proxy), and every warpgroup is done with the previous step (its dS^T, and the stage
    // refilled next).
    mbar_wait(bars + 8 * stage, (step >> 1) & 1);
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();
    if (step + 1 < steps) {
      issue(step + 1, stage ^ 1);
      cp_async_commit();
    }
    const int h = walk.head(p, hk, step), q0 = walk.query0(step);
    const uint32_t qs = q_addr + stage * QTile::kBytes, dos = do_addr + stage * QTile::kBytes;

    // 1. S^T and dP^T for keys [64 wg, +64) x the tile's 64 queries.
    float s[32], dp[32];
    // acc = rows [64 wg, +64) of the key tile at `a` times the query tile at `b`, both K-major.
    auto product = [&](float (&acc)[32], uint32_t a, uint32_t b) {
#pragma unroll
      for (int kk = 0; kk < HeadDim / 16; ++kk) {
        const uint32_t aoff = (kk / 4) * KTile::kBlockBytes + wg * 64 * 128 + (kk % 4) * 32;
        const uint32_t boff = (kk / 4) * QTile::kBlockBytes + (kk % 4) * 32;
        wgmma_ss<T, 0, 0>(acc, kmajor_desc(a + aoff), kmajor_desc(b + boff), kk > 0);
      }
      wgmma_commit();
    };
    wgmma_fence();
    product(s, k_addr, qs);
    product(dp, v_addr, dos);

    const float* lse_s = sLse + stage * kBlockM;
    const float* delta_s = sDelta + stage * kBlockM;
    const int key0 = n0 + wg * 64 + warp * 16 + g;  // this thread's rows: key0, key0 + 8
    const bool masked = n0 + kBlockN > p.kv_len || (IsCausal && n0 + kBlockN - 1 > q0 + p.causal_offset);
    wgmma_wait<1>();
    fence_operands(s);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int ql = 8 * j + 2 * t;
      const float2 l = *reinterpret_cast<const float2*>(lse_s + ql);
      const float l0 = l.x * kLog2e, l1 = l.y * kLog2e;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[4 * j + e];
        if (masked) {
          const int key = key0 + (e >= 2 ? 8 : 0), q = q0 + ql + (e & 1);
          if (key >= p.kv_len || (IsCausal && key > q + p.causal_offset)) x = -INFINITY;
        }
        s[4 * j + e] = exp2_ftz(fmaf(x, p.scale_log2, -((e & 1) ? l1 : l0)));
      }
    }
    wgmma_wait<0>();
    fence_operands(dp);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float2 d = *reinterpret_cast<const float2*>(delta_s + 8 * j + 2 * t);
#pragma unroll
      for (int e = 0; e < 4; ++e) dp[4 * j + e] = s[4 * j + e] * (dp[4 * j + e] - ((e & 1) ? d.y : d.x));
    }
    // P^T and dS^T as A operands: k-slice kk (queries 16kk..) is column tiles 2kk, 2kk + 1.
    uint32_t pa[4][4], da[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        pa[kk][r] = pack_pair<T>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
        da[kk][r] = pack_pair<T>(dp[8 * kk + 2 * r], dp[8 * kk + 2 * r + 1]);
      }
    }
    if constexpr (AccumulateDq) {
      uint32_t* st32 = reinterpret_cast<uint32_t*>(sdSt);
      const int row = wg * 64 + warp * 16 + g;
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        st32[STile::offset(row, 16 * kk + 2 * t) / 2] = da[kk][0];
        st32[STile::offset(row + 8, 16 * kk + 2 * t) / 2] = da[kk][1];
        st32[STile::offset(row, 16 * kk + 8 + 2 * t) / 2] = da[kk][2];
        st32[STile::offset(row + 8, 16 * kk + 8 + 2 * t) / 2] = da[kk][3];
      }
    }

    // 2. dV += P^T dout, dK += dS^T Q (the 1/sqrt(d) scale of dK is applied at the end).
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
      wgmma_rs<T, 1>(dv, pa[kk], mnmajor_desc(dos + kk * 16 * 128, QTile::kBlockBytes), 1);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
      wgmma_rs<T, 1>(dk, da[kk], mnmajor_desc(qs + kk * 16 * 128, QTile::kBlockBytes), 1);
    wgmma_commit();

    if constexpr (AccumulateDq) {
      // 3. dQ[queries, columns 64 wg + 64] += dS K over the block's 128 keys.
      fence_proxy_async();
      __syncthreads();
      float dq[Tr::kDqCols / 2];
      const uint32_t kcol = k_addr + (wg * Tr::kDqCols / 64) * KTile::kBlockBytes + (wg * Tr::kDqCols % 64) * 2;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk)
        wgmma_ss<T, 1, 1>(dq, mnmajor_desc(st_addr + kk * 16 * 128, STile::kBlockBytes),
                          mnmajor_desc(kcol + kk * 16 * 128, KTile::kBlockBytes), kk > 0);
      wgmma_commit();
      wgmma_wait<0>();
      fence_operands(dq);
      float* accum = p.dq_accum + static_cast<int64_t>(b * p.heads + h) * p.q_len * HeadDim + wg * Tr::kDqCols + 2 * t;
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int row = q0 + warp * 16 + g + hf * 8;
        if (row < p.q_len) {
#pragma unroll
          for (int j = 0; j < Tr::kDqCols / 8; ++j)
            atomicAdd(reinterpret_cast<float2*>(accum + static_cast<int64_t>(row) * HeadDim + 8 * j),
                      make_float2(dq[4 * j + 2 * hf], dq[4 * j + 2 * hf + 1]));
        }
      }
    } else {
      wgmma_wait<0>();
    }
    fence_operands(dv);
    fence_operands(dk);
  }

  // Epilogue: stage dK (scaled) and dV in sK / sV, then store 16 bytes a thread.
  cp_async_wait<0>();
  __syncthreads();
  uint32_t* sk32 = reinterpret_cast<uint32_t*>(sK);
  uint32_t* sv32 = reinterpret_cast<uint32_t*>(sV);
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int row = wg * 64 + warp * 16 + g + hf * 8;
#pragma unroll
    for (int j = 0; j < HeadDim / 8; ++j) {
      const int off = KTile::offset(row, 8 * j + 2 * t) / 2;
      sk32[off] = pack_pair<T>(dk[4 * j + 2 * hf] * p.scale, dk[4 * j + 2 * hf + 1] * p.scale);
      sv32[off] = pack_pair<T>(dv[4 * j + 2 * hf], dv[4 * j + 2 * hf + 1]);
    }
  }
  __syncthreads();
  T* dkg = static_cast<T*>(p.dk) + b * p.dk_batch + hk * p.dk_head;
  T* dvg = static_cast<T*>(p.dv) + b * p.dv_batch + hk * p.dv_head;
  store_staged_rows<KTile, kBlockN, HeadDim, kThreads>(dkg, p.dk_row, n0, p.kv_len, sK, tid);
  store_staged_rows<KTile, kBlockN, HeadDim, kThreads>(dvg, p.dv_row, n0, p.kv_len, sV, tid);
}

}  // namespace sm90

template <typename T, int HeadDim, bool IsCausal>
void launch_backward_dkdv_sm90(const AttentionParams& p, bool accumulate_dq, cudaStream_t stream) {
  using Tr = sm90::BackwardTraits<HeadDim>;
  const dim3 grid(static_cast<unsigned>(p.batch * p.kv_heads), static_cast<unsigned>((p.kv_len + Tr::kBlockN - 1) / Tr::kBlockN));
  if (grid.x == 0 || grid.y == 0) return;
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
  const CUtensorMap q_map = sm90::make_tile_map(p.q, kBf16, HeadDim, p.q_len, p.heads, p.batch, p.q_row, p.q_head,
                                                p.q_batch, Tr::kBlockM);
  const CUtensorMap do_map = sm90::make_tile_map(p.dout, kBf16, HeadDim, p.q_len, p.heads, p.batch, p.do_row,
                                                 p.do_head, p.do_batch, Tr::kBlockM);
  if (accumulate_dq) {
    constexpr auto kernel = sm90::flash_backward_wgmma_kernel<T, HeadDim, IsCausal, true>;
    set_dynamic_smem<kernel>(Tr::kSmemBytes);
    kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p, q_map, do_map);
  } else {
    constexpr auto kernel = sm90::flash_backward_wgmma_kernel<T, HeadDim, IsCausal, false>;
    set_dynamic_smem<kernel>(Tr::kSmemBytes);
    kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p, q_map, do_map);
  }
  TESSERA_CUDA_LAUNCH_CHECK();
}

template void launch_backward_dkdv_sm90<__nv_bfloat16, 64, false>(const AttentionParams&, bool, cudaStream_t);
template void launch_backward_dkdv_sm90<__nv_bfloat16, 64, true>(const AttentionParams&, bool, cudaStream_t);
template void launch_backward_dkdv_sm90<__half, 64, false>(const AttentionParams&, bool, cudaStream_t);
template void launch_backward_dkdv_sm90<__half, 64, true>(const AttentionParams&, bool, cudaStream_t);
template void launch_backward_dkdv_sm90<__nv_bfloat16, 128, false>(const AttentionParams&, bool, cudaStream_t);
template void launch_backward_dkdv_sm90<__nv_bfloat16, 128, true>(const AttentionParams&, bool, cudaStream_t);
template void launch_backward_dkdv_sm90<__half, 128, false>(const AttentionParams&, bool, cudaStream_t);
template void launch_backward_dkdv_sm90<__half, 128, true>(const AttentionParams&, bool, cudaStream_t);

}  // namespace tessera::kernels::attention
