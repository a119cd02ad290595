// Tensor-core flash-attention backward (mma.sync m16n8k16, bf16/f16 in, f32 accumulation).
//
// defines: BackwardTraits, flash_backward_dkdv_kernel, DqTraits, flash_backward_dq_kernel,
//          launch_backward (template; instantiated in attention_bwd_d64.cu / _d128.cu)
//
// Both kernels recompute the probabilities from the forward's lse, P = 2^(S c - lse log2 e),
// and use delta = rowsum(dout * out) (computed beforehand, attention.cu):
//   dP = dout V^T,  dS = P (dP - delta),  dV = P^T dout,  dK = dS^T Q scale,  dQ = dS K scale.
//
// flash_backward_dkdv_kernel: one block of 4 warps owns kBlockN = 64 keys of one (batch, kv
// head) and each warp 16 of them, so dK and dV accumulate in registers over every query tile
// of every query head sharing the kv head (in order: deterministic). It computes the
// transposed products S^T = K Q^T and dP^T = V dout^T, whose C fragments are already the A
// fragments of dV += P^T dout and dK += dS^T Q. Q, dout and the row statistics of the next
// query tile are prefetched with cp.async (double buffer). With AccumulateDq, dS^T also goes to
// shared memory (bf16/f16) and the block adds its share dS K to an f32 dq accumulator with
// atomics (fast, but the summation order varies between runs).
//
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
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockN = kWarps * 16;  // keys per block, 16 per warp
  static constexpr int kBlockM = HeadDim <= 64 ? 64 : 32;  // queries per step (d=128: fits 255 registers)
  using KTile = SmemTile<kBlockN, HeadDim>;
  using QTile = SmemTile<kBlockM, HeadDim>;
  using DsTile = SmemTile<kBlockN, 64>;  // dS^T; the swizzle wants rows of at least 64 columns
  // K, V, Q stage 0/1, dout stage 0/1, dS^T, then lse and delta for two stages.
  static constexpr int kSmemBytes = 2 * KTile::kBytes + 4 * QTile::kBytes + DsTile::kBytes + 4 * kBlockM * 4;
  // dQ = dS K split over the warps: kQSlices slices of 16 queries times kDSplits column ranges.
  static constexpr int kQSlices = kBlockM / 16;
  static constexpr int kDSplits = kWarps / kQSlices;
  static constexpr int kDWidth = HeadDim / kDSplits;
  static_assert(kWarps % kQSlices == 0 && kDWidth % 16 == 0, "bad dq split");
  static_assert(2 * kBlockM <= kThreads, "row statistics are loaded one thread per value");
};

template <typename T, int HeadDim, bool IsCausal, bool AccumulateDq>
__global__ void __launch_bounds__(BackwardTraits<HeadDim>::kThreads)
    flash_backward_dkdv_kernel(const AttentionParams p) {
  using Tr = BackwardTraits<HeadDim>;
  constexpr int kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN, kThreads = Tr::kThreads;
  constexpr int kDTiles = HeadDim / 8, kQTiles = kBlockM / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  T* sK = reinterpret_cast<T*>(smem);
  T* sV = sK + Tr::KTile::kElements;
  T* sQ = sV + Tr::KTile::kElements;
  T* sdO = sQ + 2 * Tr::QTile::kElements;
  T* sdS = sdO + 2 * Tr::QTile::kElements;
  float* sLse = reinterpret_cast<float*>(sdS + Tr::DsTile::kElements);
  float* sDelta = sLse + 2 * kBlockM;

  const int b = blockIdx.x / p.kv_heads, hk = blockIdx.x % p.kv_heads;
  const int n0 = blockIdx.y * kBlockN;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_batch + hk * p.k_head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_batch + hk * p.v_head;

  // Query tiles that can see these keys: causal skips those entirely above the diagonal.
  const int q_tiles = (p.q_len + kBlockM - 1) / kBlockM;
  int first = 0;
  if (IsCausal) {
    const int first_query = n0 - p.causal_offset;
    first = first_query <= 0 ? 0 : min(q_tiles, first_query / kBlockM);
  }
  const int per_head = q_tiles - first, steps = p.group * per_head;

  auto issue = [&](int step, int stage) {
    const int h = hk * p.group + step / per_head, q0 = (first + step % per_head) * kBlockM;
    load_tile_async<kBlockM, HeadDim, kThreads>(
        sQ + stage * Tr::QTile::kElements, static_cast<const T*>(p.q) + b * p.q_batch + h * p.q_head, p.q_row, q0,
        p.q_len);
    load_tile_async<kBlockM, HeadDim, kThreads>(
        sdO + stage * Tr::QTile::kElements, static_cast<const T*>(p.dout) + b * p.do_batch + h * p.do_head,
        p.do_row, q0, p.q_len);
    const int64_t rows = static_cast<int64_t>(b * p.heads + h) * p.q_len;
    const int r = tid % kBlockM;
    const bool valid = q0 + r < p.q_len;
    if (tid < kBlockM) {
      cp_async_4(smem_u32(sLse + stage * kBlockM + r), valid ? p.lse + rows + q0 + r : p.lse, valid);
    } else if (tid < 2 * kBlockM) {
      cp_async_4(smem_u32(sDelta + stage * kBlockM + r), valid ? p.delta + rows + q0 + r : p.delta, valid);
    }
  };

  load_tile_async<kBlockN, HeadDim, kThreads>(sK, kg, p.k_row, n0, p.kv_len);
  load_tile_async<kBlockN, HeadDim, kThreads>(sV, vg, p.v_row, n0, p.kv_len);
  if (steps > 0) issue(0, 0);
  cp_async_commit();

  const FragmentAddress<HeadDim, LanePattern::RowsFromBit3> k_rows(sK, lane), v_rows(sV, lane);
  const FragmentAddress<HeadDim, LanePattern::RowsFromBit4> q_nk(sQ, lane), do_nk(sdO, lane);
  const FragmentAddress<HeadDim, LanePattern::RowsFromBit3> q_kn(sQ, lane), do_kn(sdO, lane);
  const FragmentAddress<64, LanePattern::RowsFromBit4> ds_km(sdS, lane);

  float dk[kDTiles][4], dv[kDTiles][4];
#pragma unroll
  for (int dt = 0; dt < kDTiles; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[dt][e] = dv[dt][e] = 0.f;

  for (int step = 0; step < steps; ++step) {
    const int stage = step & 1;
    if (step + 1 < steps) {
      issue(step + 1, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int h = hk * p.group + step / per_head, q0 = (first + step % per_head) * kBlockM;
    const uint32_t stage_bytes = stage * Tr::QTile::kBytes;

    // S^T = K Q^T and dP^T = V dout^T for this warp's 16 keys.
    float st[kQTiles][4], dpt[kQTiles][4];
#pragma unroll
    for (int nt = 0; nt < kQTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[nt][e] = dpt[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk) {
      uint32_t ka[4], va[4];
      ldmatrix_x4(ka, k_rows.at(warp * 16, kk * 16));
      ldmatrix_x4(va, v_rows.at(warp * 16, kk * 16));
#pragma unroll
      for (int nn = 0; nn < kBlockM / 16; ++nn) {
        uint32_t qb[4], gb[4];
        ldmatrix_x4(qb, q_nk.at(nn * 16, kk * 16) + stage_bytes);
        ldmatrix_x4(gb, do_nk.at(nn * 16, kk * 16) + stage_bytes);
        mma_16816<T>(st[2 * nn], ka, qb[0], qb[1]);
        mma_16816<T>(st[2 * nn + 1], ka, qb[2], qb[3]);
        mma_16816<T>(dpt[2 * nn], va, gb[0], gb[1]);
        mma_16816<T>(dpt[2 * nn + 1], va, gb[2], gb[3]);
      }
    }

    // P^T = 2^(S^T c - lse log2 e) (masked: 0), dS^T = P^T (dP^T - delta). Query rows past the
    // end were loaded as zeros (Q, dout, lse, delta), which makes their dS and dV terms zero.
    const float* lse_s = sLse + stage * kBlockM;
    const float* delta_s = sDelta + stage * kBlockM;
    const bool mask = n0 + kBlockN > p.kv_len || (IsCausal && n0 + kBlockN - 1 > q0 + p.causal_offset);
#pragma unroll
    for (int nt = 0; nt < kQTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = n0 + warp * 16 + g + (e >= 2 ? 8 : 0), ql = nt * 8 + 2 * t + (e & 1);
        float pv = exp2f(fmaf(st[nt][e], p.scale_log2, -lse_s[ql] * kLog2e));
        if (mask && (key >= p.kv_len || (IsCausal && key > q0 + ql + p.causal_offset))) pv = 0.f;
        st[nt][e] = pv;
        dpt[nt][e] = pv * (dpt[nt][e] - delta_s[ql]);
      }
    }

    // dV += P^T dout and dK += dS^T Q (the 1/sqrt(d) scale is applied at the end).
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      uint32_t pa[4], dsa[4];
      pa[0] = pack_pair<T>(st[2 * kk][0], st[2 * kk][1]);
      pa[1] = pack_pair<T>(st[2 * kk][2], st[2 * kk][3]);
      pa[2] = pack_pair<T>(st[2 * kk + 1][0], st[2 * kk + 1][1]);
      pa[3] = pack_pair<T>(st[2 * kk + 1][2], st[2 * kk + 1][3]);
      dsa[0] = pack_pair<T>(dpt[2 * kk][0], dpt[2 * kk][1]);
      dsa[1] = pack_pair<T>(dpt[2 * kk][2], dpt[2 * kk][3]);
      dsa[2] = pack_pair<T>(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]);
      dsa[3] = pack_pair<T>(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3]);
      if constexpr (AccumulateDq) {
        uint32_t* sds = reinterpret_cast<uint32_t*>(sdS);
        const int row = warp * 16 + g;
        sds[Tr::DsTile::offset(row, kk * 16 + 2 * t) / 2] = dsa[0];
        sds[Tr::DsTile::offset(row + 8, kk * 16 + 2 * t) / 2] = dsa[1];
        sds[Tr::DsTile::offset(row, kk * 16 + 8 + 2 * t) / 2] = dsa[2];
        sds[Tr::DsTile::offset(row + 8, kk * 16 + 8 + 2 * t) / 2] = dsa[3];
      }
#pragma unroll
      for (int dd = 0; dd < HeadDim / 16; ++dd) {
        uint32_t gb[4], qb[4];
        ldmatrix_x4_trans(gb, do_kn.at(kk * 16, dd * 16) + stage_bytes);
        ldmatrix_x4_trans(qb, q_kn.at(kk * 16, dd * 16) + stage_bytes);
        mma_16816<T>(dv[2 * dd], pa, gb[0], gb[1]);
        mma_16816<T>(dv[2 * dd + 1], pa, gb[2], gb[3]);
        mma_16816<T>(dk[2 * dd], dsa, qb[0], qb[1]);
        mma_16816<T>(dk[2 * dd + 1], dsa, qb[2], qb[3]);
      }
    }

    if constexpr (AccumulateDq) {
      // dQ[queries of slice qs, columns of part dp] += dS K, added to the f32 accumulator.
      __syncthreads();
      // Column chunks of 32 keep the accumulator small next to dK and dV.
      constexpr int kDWidth = Tr::kDWidth, kChunk = 16;
      const int qs = warp % Tr::kQSlices, dp = warp / Tr::kQSlices;
      float* accum = p.dq_accum + static_cast<int64_t>(b * p.heads + h) * p.q_len * HeadDim + dp * kDWidth + 2 * t;
#pragma unroll
      for (int c0 = 0; c0 < kDWidth; c0 += kChunk) {
        float dqa[kChunk / 8][4];
#pragma unroll
        for (int dt = 0; dt < kChunk / 8; ++dt)
#pragma unroll
          for (int e = 0; e < 4; ++e) dqa[dt][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < kBlockN / 16; ++kk) {
          uint32_t a[4];
          ldmatrix_x4_trans(a, ds_km.at(kk * 16, qs * 16));
#pragma unroll
          for (int dd = 0; dd < kChunk / 16; ++dd) {
            uint32_t kb[4];
            ldmatrix_x4_trans(kb, k_rows.at(kk * 16, dp * kDWidth + c0 + dd * 16));
            mma_16816<T>(dqa[2 * dd], a, kb[0], kb[1]);
            mma_16816<T>(dqa[2 * dd + 1], a, kb[2], kb[3]);
          }
        }
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int row = q0 + qs * 16 + g + hf * 8;
          if (row < p.q_len) {
#pragma unroll
            for (int dt = 0; dt < kChunk / 8; ++dt)
              atomicAdd(reinterpret_cast<float2*>(accum + static_cast<int64_t>(row) * HeadDim + c0 + dt * 8),
                        make_float2(dqa[dt][2 * hf], dqa[dt][2 * hf + 1]));
          }
        }
      }
    }
    __syncthreads();  // the next step refills this stage (and dS^T)
  }

  // Epilogue: stage each warp's 16 rows of dK (scaled) and dV in its rows of sK / sV, then
  // store 16 bytes a lane.
  cp_async_wait<0>();
  __syncthreads();
  uint32_t* sk32 = reinterpret_cast<uint32_t*>(sK);
  uint32_t* sv32 = reinterpret_cast<uint32_t*>(sV);
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int row = warp * 16 + g + hf * 8;
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt) {
      const int off = Tr::KTile::offset(row, dt * 8 + 2 * t) / 2;
      sk32[off] = pack_pair<T>(dk[dt][2 * hf] * p.scale, dk[dt][2 * hf + 1] * p.scale);
      sv32[off] = pack_pair<T>(dv[dt][2 * hf], dv[dt][2 * hf + 1]);
    }
  }
  __syncwarp();
  T* dkg = static_cast<T*>(p.dk) + b * p.dk_batch + hk * p.dk_head;
  T* dvg = static_cast<T*>(p.dv) + b * p.dv_batch + hk * p.dv_head;
  constexpr int kChunksPerRow = HeadDim / 8;
#pragma unroll
  for (int c = lane; c < 16 * kChunksPerRow; c += 32) {
    const int row = warp * 16 + c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    if (n0 + row < p.kv_len) {
      const int off = Tr::KTile::offset(row, col);
      *reinterpret_cast<uint4*>(dkg + static_cast<int64_t>(n0 + row) * p.dk_row + col) =
          *reinterpret_cast<const uint4*>(sK + off);
      *reinterpret_cast<uint4*>(dvg + static_cast<int64_t>(n0 + row) * p.dv_row + col) =
          *reinterpret_cast<const uint4*>(sV + off);
    }
  }
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

  int n_tiles = (p.kv_len + kBlockN - 1) / kBlockN;
  if (IsCausal) {
    const int last_key = m0 + kBlockM - 1 + p.causal_offset;
    n_tiles = last_key < 0 ? 0 : min(n_tiles, last_key / kBlockN + 1);
  }
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
        float pv = exp2f(fmaf(s[nt][e], p.scale_log2, -lse2[e >> 1]));
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
  if (kv_grid.x > 0 && kv_grid.y > 0) {  // dk, dv (zeros when there are no queries)
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
