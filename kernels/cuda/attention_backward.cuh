// Tensor-core flash-attention backward (mma.sync m16n8k16, bf16/f16 in, f32 accumulation).
//
// defines: BackwardTraits, flash_backward_dkdv_kernel, DqTraits, flash_backward_dq_kernel,
//          launch_backward (template; instantiated in attention_bwd_d64.cu / _d128.cu)
//
// Both kernels recompute the probabilities from the forward's lse, P = 2^(S c - lse log2 e),
// and use delta = rowsum(dout * out) (computed beforehand, attention.cu):
//   dP = dout V^T,  dS = P (dP - delta),  dV = P^T dout,  dK = dS^T Q scale,  dQ = dS K scale.
//
// flash_backward_dkdv_kernel (FlashAttention-2's decomposition): one block of 8 warps owns
// kBlockN = 128 keys of one (batch, kv head); dK and dV accumulate in registers over every
// query tile (kBlockM queries: 128 at d=64, 64 at d=128) of every query head sharing the kv
// head, in order (deterministic). Per query tile:
//   1. S^T = K Q^T, warps 4 (keys) x 2 (queries); P^T = 2^(S^T c - lse log2 e) goes to shared
//      memory as bf16/f16; then dP^T = V dout^T in the same accumulators and dS^T = P^T (dP^T -
//      delta) to shared memory (P^T read back: keeping it in registers spills).
//   2. barrier; dV += P^T dout and dK += dS^T Q, warps 4 (keys) x 2 (head-dim halves), A
//      fragments from shared memory — the staging lets this product split the work differently
//      from step 1 (32 keys x 64 columns a warp instead of 16 keys x 128).
//   3. with AccumulateDq: dQ += dS K for the tile's queries (warps along queries x columns),
//      added with float2 atomics to an f32 accumulator (fast; summation order varies).
// Q, dout and the row statistics of the next tile are prefetched with cp.async (double buffer)
// right after the barrier that opens a step. Two barriers per step.

// flash_backward_dq_kernel (deterministic path): one block owns 64 query rows, walks the key
// tiles like the forward, recomputes S and dP and accumulates dQ += dS K in registers. It
// costs three products per tile against the two of the atomic path.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.cuh"

namespace tessera::kernels::attention {

template <int HeadDim>
struct BackwardTraits {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockN = 128;                       // keys per block
  static constexpr int kBlockM = HeadDim <= 64 ? 128 : 64;  // queries per step
  // S^T = K Q^T and dP^T = V dout^T: 4 warps along the keys times 2 along the queries.
  static constexpr int kSKeys = kBlockN / 4, kSQueries = kBlockM / 2;
  // dV += P^T dout and dK += dS^T Q: 4 warps along the keys times 2 along the head dim.
  static constexpr int kKvKeys = kBlockN / 4, kKvCols = HeadDim / 2;
  // dQ += dS K: warps of 32 query rows times the rest along the head dim.
  static constexpr int kQWarpsM = kBlockM / 32, kQCols = HeadDim / (kWarps / kQWarpsM);
  using KTile = SmemTile<kBlockN, HeadDim>;
  using QTile = SmemTile<kBlockM, HeadDim>;
  using PTile = SmemTile<kBlockN, kBlockM>;  // P^T and dS^T, [keys][queries]
  // K, V, Q stage 0/1, dout stage 0/1, P^T, dS^T, then lse and delta for two stages.
  static constexpr int kSmemBytes = 2 * KTile::kBytes + 4 * QTile::kBytes + 2 * PTile::kBytes + 4 * kBlockM * 4;
  static_assert(kSKeys == 32 && kKvKeys == 32 && kQCols % 16 == 0 && kSQueries % 16 == 0, "bad warp split");
  static_assert(2 * kBlockM <= kThreads, "row statistics are loaded one thread per value");
};

template <typename T, int HeadDim, bool IsCausal, bool AccumulateDq>
__global__ void __launch_bounds__(BackwardTraits<HeadDim>::kThreads, 1)
    flash_backward_dkdv_kernel(const AttentionParams p) {
  using Tr = BackwardTraits<HeadDim>;
  constexpr int kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN, kThreads = Tr::kThreads;
  constexpr int kSQueries = Tr::kSQueries, kKvCols = Tr::kKvCols, kQCols = Tr::kQCols;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sK = reinterpret_cast<T*>(smem);
  T* sV = sK + Tr::KTile::kElements;
  T* sQ = sV + Tr::KTile::kElements;
  T* sdO = sQ + 2 * Tr::QTile::kElements;
  T* sPt = sdO + 2 * Tr::QTile::kElements;
  T* sdSt = sPt + Tr::PTile::kElements;
  float* sLse = reinterpret_cast<float*>(sdSt + Tr::PTile::kElements);
  float* sDelta = sLse + 2 * kBlockM;

  const int b = blockIdx.x / p.kv_heads, hk = blockIdx.x % p.kv_heads;
  const int n0 = blockIdx.y * kBlockN;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  // This warp's part of each product (first key / query row / column).
  const int s_key0 = (warp % 4) * Tr::kSKeys, s_q0 = (warp / 4) * kSQueries;
  const int kv_key0 = (warp % 4) * Tr::kKvKeys, kv_col0 = (warp / 4) * kKvCols;
  const int dq_row0 = (warp % Tr::kQWarpsM) * 32, dq_col0 = (warp / Tr::kQWarpsM) * kQCols;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_batch + hk * p.k_head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_batch + hk * p.v_head;

  const QueryTileWalk<kBlockM, IsCausal> walk(p, n0);
  const int steps = walk.steps;

  auto issue = [&](int step, int stage) {
    const int h = walk.head(p, hk, step), q0 = walk.query0(step);
    load_tile_async<kBlockM, HeadDim, kThreads>(
        sQ + stage * Tr::QTile::kElements, static_cast<const T*>(p.q) + b * p.q_batch + h * p.q_head, p.q_row, q0,
        p.q_len);
    load_tile_async<kBlockM, HeadDim, kThreads>(
        sdO + stage * Tr::QTile::kElements, static_cast<const T*>(p.dout) + b * p.do_batch + h * p.do_head,
        p.do_row, q0, p.q_len);
    load_row_stats_async<kBlockM>(sLse + stage * kBlockM, sDelta + stage * kBlockM, p,
                                  static_cast<int64_t>(b * p.heads + h) * p.q_len, q0, tid);
  };

  load_tile_async<kBlockN, HeadDim, kThreads>(sK, kg, p.k_row, n0, p.kv_len);
  load_tile_async<kBlockN, HeadDim, kThreads>(sV, vg, p.v_row, n0, p.kv_len);
  if (steps > 0) issue(0, 0);
  cp_async_commit();

  // Per-lane ldmatrix addresses of this warp's blocks (FragmentAddress):
  //   S^T, dP^T:  K, V rows [s_key0, +32) as A ([keys][d]); Q, dout rows [s_q0, +kSQueries) as B ([q][d] = [n][k])
  //   dV, dK:     P^T, dS^T rows [kv_key0, +32) as A ([keys][q] = [m][k]); dout, Q columns
  //               [kv_col0, +kKvCols) as B ([q][d] = [k][n])
  //   dQ:         dS^T columns [dq_row0, +32) as A stored [k][m]; K columns [dq_col0, +kQCols) as B ([keys][d] = [k][n])
  using Bit3 = FragmentAddress<HeadDim, LanePattern::RowsFromBit3>;
  using Bit4 = FragmentAddress<HeadDim, LanePattern::RowsFromBit4>;
  const Bit3 k_s(sK, lane, s_key0, 0), v_s(sV, lane, s_key0, 0);
  const Bit4 q_s(sQ, lane, s_q0, 0), do_s(sdO, lane, s_q0, 0);
  const FragmentAddress<kBlockM, LanePattern::RowsFromBit3> pt_kv(sPt, lane, kv_key0, 0), dst_kv(sdSt, lane, kv_key0, 0);
  const Bit3 do_kv(sdO, lane, 0, kv_col0), q_kv(sQ, lane, 0, kv_col0);
  const FragmentAddress<kBlockM, LanePattern::RowsFromBit4> dst_dq(sdSt, lane, 0, dq_row0);
  const Bit3 k_dq(sK, lane, 0, dq_col0);

  constexpr int kKvTiles = kKvCols / 8;
  float dk[2][kKvTiles][4], dv[2][kKvTiles][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int dt = 0; dt < kKvTiles; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) dk[mi][dt][e] = dv[mi][dt][e] = 0.f;

  for (int step = 0; step < steps; ++step) {
    const int stage = step & 1;
    // This step's Q / dout / statistics have landed, and every warp is done with the previous
    // step (its P^T, dS^T and the stage refilled next).
    cp_async_wait<0>();
    __syncthreads();
    if (step + 1 < steps) {
      issue(step + 1, stage ^ 1);
      cp_async_commit();
    }
    const int h = walk.head(p, hk, step), q0 = walk.query0(step);
    const uint32_t stage_bytes = stage * Tr::QTile::kBytes;

    // S^T = K Q^T for keys [s_key0, +32) x queries [s_q0, +kSQueries), then P^T = 2^(S^T c -
    // lse log2 e) (masked: 0) as bf16/f16 to shared memory; then dP^T = V dout^T in the same
    // accumulators and dS^T = P^T (dP^T - delta), with P^T read back (each lane its own
    // words), to shared memory. One accumulator set at a time, and P not kept in registers,
    // keep the kernel within 255 registers unspilled. Query rows past
    // the end were loaded as zeros (Q, dout, lse, delta), which makes their dS and dV terms zero.
    constexpr int kSTiles = kSQueries / 8;
    float acc[2][kSTiles][4];
    auto product = [&](const Bit3& a_rows, const Bit4& b_rows) {
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[mi][nt][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < HeadDim / 16; ++kk) {
        uint32_t a[2][4];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) ldmatrix_x4(a[mi], a_rows.at_xor(mi * 16, kk * 16));
#pragma unroll
        for (int nn = 0; nn < kSQueries / 16; ++nn) {
          uint32_t bq[4];
          ldmatrix_x4(bq, b_rows.at_xor(nn * 16, kk * 16) + stage_bytes);
#pragma unroll
          for (int mi = 0; mi < 2; ++mi) {
            mma_16816<T>(acc[mi][2 * nn], a[mi], bq[0], bq[1]);
            mma_16816<T>(acc[mi][2 * nn + 1], a[mi], bq[2], bq[3]);
          }
        }
      }
    };
    const float* lse_s = sLse + stage * kBlockM;
    const float* delta_s = sDelta + stage * kBlockM;
    uint32_t* spt = reinterpret_cast<uint32_t*>(sPt);
    uint32_t* sdst = reinterpret_cast<uint32_t*>(sdSt);

    product(k_s, q_s);
    if (n0 + kBlockN > p.kv_len || (IsCausal && n0 + kBlockN - 1 > q0 + p.causal_offset)) {
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = n0 + s_key0 + mi * 16 + g + (e >= 2 ? 8 : 0), q = q0 + s_q0 + nt * 8 + 2 * t + (e & 1);
            if (key >= p.kv_len || (IsCausal && key > q + p.causal_offset)) acc[mi][nt][e] = -INFINITY;
          }
    }
#pragma unroll
    for (int nt = 0; nt < kSTiles; ++nt) {
      const int ql = s_q0 + nt * 8 + 2 * t;
      const float lse0 = lse_s[ql] * kLog2e, lse1 = lse_s[ql + 1] * kLog2e;
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        const int row = s_key0 + mi * 16 + g;
        const float* c = acc[mi][nt];
        spt[Tr::PTile::offset(row, ql) / 2] =
            pack_pair<T>(exp2_ftz(fmaf(c[0], p.scale_log2, -lse0)), exp2_ftz(fmaf(c[1], p.scale_log2, -lse1)));
        spt[Tr::PTile::offset(row + 8, ql) / 2] =
            pack_pair<T>(exp2_ftz(fmaf(c[2], p.scale_log2, -lse0)), exp2_ftz(fmaf(c[3], p.scale_log2, -lse1)));
      }
    }

    product(v_s, do_s);
#pragma unroll
    for (int nt = 0; nt < kSTiles; ++nt) {
      const int ql = s_q0 + nt * 8 + 2 * t;
      const float delta0 = delta_s[ql], delta1 = delta_s[ql + 1];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        const int row = s_key0 + mi * 16 + g;
        const float* c = acc[mi][nt];
        const float2 p01 = unpack_pair<T>(spt[Tr::PTile::offset(row, ql) / 2]);
        const float2 p23 = unpack_pair<T>(spt[Tr::PTile::offset(row + 8, ql) / 2]);
        sdst[Tr::PTile::offset(row, ql) / 2] = pack_pair<T>(p01.x * (c[0] - delta0), p01.y * (c[1] - delta1));
        sdst[Tr::PTile::offset(row + 8, ql) / 2] = pack_pair<T>(p23.x * (c[2] - delta0), p23.y * (c[3] - delta1));
      }
    }
    __syncthreads();

    // dV += P^T dout and dK += dS^T Q: keys [kv_key0, +32) x columns [kv_col0, +kKvCols) (the
    // 1/sqrt(d) scale of dK is applied at the end).
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      uint32_t pa[2][4], da[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        ldmatrix_x4(pa[mi], pt_kv.at_xor(mi * 16, kk * 16));
        ldmatrix_x4(da[mi], dst_kv.at_xor(mi * 16, kk * 16));
      }
#pragma unroll
      for (int dd = 0; dd < kKvCols / 16; ++dd) {
        uint32_t gb[4], qb[4];
        ldmatrix_x4_trans(gb, do_kv.at_xor(kk * 16, dd * 16) + stage_bytes);
        ldmatrix_x4_trans(qb, q_kv.at_xor(kk * 16, dd * 16) + stage_bytes);
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          mma_16816<T>(dv[mi][2 * dd], pa[mi], gb[0], gb[1]);
          mma_16816<T>(dv[mi][2 * dd + 1], pa[mi], gb[2], gb[3]);
          mma_16816<T>(dk[mi][2 * dd], da[mi], qb[0], qb[1]);
          mma_16816<T>(dk[mi][2 * dd + 1], da[mi], qb[2], qb[3]);
        }
      }
    }

    if constexpr (AccumulateDq) {
      // dQ[rows dq_row0 + 32, columns dq_col0 + kQCols] += dS K over the block's 128 keys,
      // added to the f32 accumulator.
      constexpr int kQTiles = kQCols / 8;
      float dqa[2][kQTiles][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int dt = 0; dt < kQTiles; ++dt)
#pragma unroll
          for (int e = 0; e < 4; ++e) dqa[mi][dt][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        uint32_t a[2][4];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) ldmatrix_x4_trans(a[mi], dst_dq.at_xor(kk * 16, mi * 16));
#pragma unroll
        for (int dd = 0; dd < kQCols / 16; ++dd) {
          uint32_t kb[4];
          ldmatrix_x4_trans(kb, k_dq.at_xor(kk * 16, dd * 16));
#pragma unroll
          for (int mi = 0; mi < 2; ++mi) {
            mma_16816<T>(dqa[mi][2 * dd], a[mi], kb[0], kb[1]);
            mma_16816<T>(dqa[mi][2 * dd + 1], a[mi], kb[2], kb[3]);
          }
        }
      }
      float* accum = p.dq_accum + static_cast<int64_t>(b * p.heads + h) * p.q_len * HeadDim + dq_col0 + 2 * t;
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int row = q0 + dq_row0 + mi * 16 + g + hf * 8;
          if (row < p.q_len) {
#pragma unroll
            for (int dt = 0; dt < kQTiles; ++dt)
              atomicAdd(reinterpret_cast<float2*>(accum + static_cast<int64_t>(row) * HeadDim + dt * 8),
                        make_float2(dqa[mi][dt][2 * hf], dqa[mi][dt][2 * hf + 1]));
          }
        }
      }
    }
  }

  // Epilogue: stage dK (scaled) and dV in sK / sV, then store 16 bytes a thread.
  cp_async_wait<0>();
  __syncthreads();
  uint32_t* sk32 = reinterpret_cast<uint32_t*>(sK);
  uint32_t* sv32 = reinterpret_cast<uint32_t*>(sV);
#pragma unroll
  for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int row = kv_key0 + mi * 16 + g + hf * 8;
#pragma unroll
      for (int dt = 0; dt < kKvTiles; ++dt) {
        const int off = Tr::KTile::offset(row, kv_col0 + dt * 8 + 2 * t) / 2;
        sk32[off] = pack_pair<T>(dk[mi][dt][2 * hf] * p.scale, dk[mi][dt][2 * hf + 1] * p.scale);
        sv32[off] = pack_pair<T>(dv[mi][dt][2 * hf], dv[mi][dt][2 * hf + 1]);
      }
    }
  }
  __syncthreads();
  T* dkg = static_cast<T*>(p.dk) + b * p.dk_batch + hk * p.dk_head;
  T* dvg = static_cast<T*>(p.dv) + b * p.dv_batch + hk * p.dv_head;
  store_staged_rows<typename Tr::KTile, kBlockN, HeadDim, kThreads>(dkg, p.dk_row, n0, p.kv_len, sK, tid);
  store_staged_rows<typename Tr::KTile, kBlockN, HeadDim, kThreads>(dvg, p.dv_row, n0, p.kv_len, sV, tid);
}

template <int HeadDim>
struct DqTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockM = kWarps * 16;  // 16 query rows per warp
  static constexpr int kBlockN = HeadDim <= 64 ? 64 : 32;  // d=128: fits 255 registers
  using QTile = SmemTile<kBlockM, HeadDim>;
  using KTile = SmemTile<kBlockN, HeadDim>;
  // Q, dout, then K stage 0/1, V stage 0/1.
  static constexpr int kSmemBytes = 2 * QTile::kBytes + 4 * KTile::kBytes;
};

template <typename T, int HeadDim, bool IsCausal>
__global__ void __launch_bounds__(DqTraits<HeadDim>::kThreads) flash_backward_dq_kernel(const AttentionParams p) {
  using Tr = DqTraits<HeadDim>;
  constexpr int kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN, kThreads = Tr::kThreads;
  constexpr int kDTiles = HeadDim / 8, kNTiles = kBlockN / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);
  T* sdO = sQ + Tr::QTile::kElements;
  T* sK = sdO + Tr::QTile::kElements;
  T* sV = sK + 2 * Tr::KTile::kElements;

  const int bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads, hk = h / p.group;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kBlockM;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_batch + hk * p.k_head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_batch + hk * p.v_head;

  const int n_tiles = visible_key_tiles<kBlockM, kBlockN, IsCausal>(p, m0);
  load_tile_async<kBlockM, HeadDim, kThreads>(sQ, static_cast<const T*>(p.q) + b * p.q_batch + h * p.q_head,
                                              p.q_row, m0, p.q_len);
  load_tile_async<kBlockM, HeadDim, kThreads>(sdO, static_cast<const T*>(p.dout) + b * p.do_batch + h * p.do_head,
                                              p.do_row, m0, p.q_len);
  if (n_tiles > 0) {
    load_tile_async<kBlockN, HeadDim, kThreads>(sK, kg, p.k_row, 0, p.kv_len);
    load_tile_async<kBlockN, HeadDim, kThreads>(sV, vg, p.v_row, 0, p.kv_len);
  }
  cp_async_commit();

  // This thread's two rows: lse in log2 units (+inf past the end: P = 0) and delta.
  float lse2[2], delta[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int row = m0 + warp * 16 + g + hf * 8;
    const int64_t at = static_cast<int64_t>(bh) * p.q_len + row;
    lse2[hf] = row < p.q_len ? p.lse[at] * kLog2e : INFINITY;
    delta[hf] = row < p.q_len ? p.delta[at] : 0.f;
  }

  const FragmentAddress<HeadDim, LanePattern::RowsFromBit3> q_rows(sQ, lane), do_rows(sdO, lane), k_kn(sK, lane);
  const FragmentAddress<HeadDim, LanePattern::RowsFromBit4> k_nk(sK, lane), v_nk(sV, lane);

  float dq[kDTiles][4];
#pragma unroll
  for (int dt = 0; dt < kDTiles; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dq[dt][e] = 0.f;

  for (int j = 0; j < n_tiles; ++j) {
    const int stage = j & 1;
    if (j + 1 < n_tiles) {
      load_tile_async<kBlockN, HeadDim, kThreads>(sK + (stage ^ 1) * Tr::KTile::kElements, kg, p.k_row,
                                                  (j + 1) * kBlockN, p.kv_len);
      load_tile_async<kBlockN, HeadDim, kThreads>(sV + (stage ^ 1) * Tr::KTile::kElements, vg, p.v_row,
                                                  (j + 1) * kBlockN, p.kv_len);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const uint32_t stage_bytes = stage * Tr::KTile::kBytes;

    float s[kNTiles][4], dp[kNTiles][4];
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk) {
      uint32_t qa[4], ga[4];
      ldmatrix_x4(qa, q_rows.at(warp * 16, kk * 16));
      ldmatrix_x4(ga, do_rows.at(warp * 16, kk * 16));
#pragma unroll
      for (int nn = 0; nn < kNTiles / 2; ++nn) {
        uint32_t kb[4], vb[4];
        ldmatrix_x4(kb, k_nk.at(nn * 16, kk * 16) + stage_bytes);
        ldmatrix_x4(vb, v_nk.at(nn * 16, kk * 16) + stage_bytes);
        mma_16816<T>(s[2 * nn], qa, kb[0], kb[1]);
        mma_16816<T>(s[2 * nn + 1], qa, kb[2], kb[3]);
        mma_16816<T>(dp[2 * nn], ga, vb[0], vb[1]);
        mma_16816<T>(dp[2 * nn + 1], ga, vb[2], vb[3]);
      }
    }

    const int n0 = j * kBlockN;
    const bool mask = n0 + kBlockN > p.kv_len || (IsCausal && n0 + kBlockN - 1 > m0 + p.causal_offset);
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = m0 + warp * 16 + g + (e >= 2 ? 8 : 0), col = n0 + nt * 8 + 2 * t + (e & 1);
        float pv = exp2_ftz(fmaf(s[nt][e], p.scale_log2, -lse2[e >> 1]));
        if (mask && (col >= p.kv_len || (IsCausal && col > row + p.causal_offset))) pv = 0.f;
        dp[nt][e] = pv * (dp[nt][e] - delta[e >> 1]);  // dS
      }
    }

    // dQ += dS K
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack_pair<T>(dp[2 * kk][0], dp[2 * kk][1]);
      a[1] = pack_pair<T>(dp[2 * kk][2], dp[2 * kk][3]);
      a[2] = pack_pair<T>(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
      a[3] = pack_pair<T>(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
#pragma unroll
      for (int dd = 0; dd < HeadDim / 16; ++dd) {
        uint32_t kb[4];
        ldmatrix_x4_trans(kb, k_kn.at(kk * 16, dd * 16) + stage_bytes);
        mma_16816<T>(dq[2 * dd], a, kb[0], kb[1]);
        mma_16816<T>(dq[2 * dd + 1], a, kb[2], kb[3]);
      }
    }
    __syncthreads();
  }

  // Epilogue: dQ scale, staged in the warp's own rows of the Q tile, 16-byte stores.
  cp_async_wait<0>();
  __syncthreads();
  uint32_t* sq32 = reinterpret_cast<uint32_t*>(sQ);
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int row = warp * 16 + g + hf * 8;
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt)
      sq32[Tr::QTile::offset(row, dt * 8 + 2 * t) / 2] =
          pack_pair<T>(dq[dt][2 * hf] * p.scale, dq[dt][2 * hf + 1] * p.scale);
  }
  __syncwarp();
  T* dqg = static_cast<T*>(p.dq) + b * p.dq_batch + h * p.dq_head;
  constexpr int kChunksPerRow = HeadDim / 8;
#pragma unroll
  for (int c = lane; c < 16 * kChunksPerRow; c += 32) {
    const int row = warp * 16 + c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    if (m0 + row < p.q_len)
      *reinterpret_cast<uint4*>(dqg + static_cast<int64_t>(m0 + row) * p.dq_row + col) =
          *reinterpret_cast<const uint4*>(sQ + Tr::QTile::offset(row, col));
  }
}

template <typename T, int HeadDim, bool IsCausal>
void launch_backward(const AttentionParams& p, bool deterministic, cudaStream_t stream) {
  using Tr = BackwardTraits<HeadDim>;
  using Dq = DqTraits<HeadDim>;
  const dim3 kv_grid(static_cast<unsigned>(p.batch * p.kv_heads),
                     static_cast<unsigned>((p.kv_len + Tr::kBlockN - 1) / Tr::kBlockN));
  const dim3 q_grid(static_cast<unsigned>(p.batch * p.heads),
                    static_cast<unsigned>((p.q_len + Dq::kBlockM - 1) / Dq::kBlockM));
  bool wgmma = false;
  if constexpr (HeadDim == 64 || HeadDim == 128) wgmma = hopper_wgmma_usable();
  if (wgmma) {
    launch_backward_dkdv_sm90<T, HeadDim, IsCausal>(p, !deterministic, stream);
  } else if (kv_grid.x > 0 && kv_grid.y > 0) {  // dk, dv (zeros when there are no queries)
    if (deterministic) {
      constexpr auto kernel = flash_backward_dkdv_kernel<T, HeadDim, IsCausal, false>;
      set_dynamic_smem<kernel>(Tr::kSmemBytes);
      kernel<<<kv_grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
    } else {
      constexpr auto kernel = flash_backward_dkdv_kernel<T, HeadDim, IsCausal, true>;
      set_dynamic_smem<kernel>(Tr::kSmemBytes);
      kernel<<<kv_grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
    }
    TESSERA_CUDA_LAUNCH_CHECK();
  }
  if (deterministic && q_grid.x > 0 && q_grid.y > 0) {
    constexpr auto kernel = flash_backward_dq_kernel<T, HeadDim, IsCausal>;
    set_dynamic_smem<kernel>(Dq::kSmemBytes);
    kernel<<<q_grid, Dq::kThreads, Dq::kSmemBytes, stream>>>(p);
    TESSERA_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace tessera::kernels::attention
