// Tensor-core flash-attention forward (mma.sync m16n8k16, bf16/f16 in, f32 accumulation).
//
// defines: ForwardTraits, flash_forward_kernel, launch_forward (template; instantiated in
//          attention_fwd_d64.cu and attention_fwd_d128.cu)
//
// One block of 4 warps owns kBlockM = 128 query rows of one (batch, head); each warp owns 32
// rows (two m16 slices, so every K/V fragment read from shared memory feeds two mma). The
// block walks the key tiles of kBlockN keys that its rows can see (causal: up to the diagonal),
// K and V double-buffered in shared memory with cp.async: tile j+1 is in flight while tile j
// is multiplied. Per tile, in registers:
//   S = Q K^T                               (Q from shared memory, K by ldmatrix)
//   mask (only tiles that cross the diagonal or the end of the keys)
//   m_new = max(m, rowmax S);  alpha = 2^((m - m_new) c);  P = 2^(S c - m_new c)   (c = scale*log2 e)
//   l = l alpha + rowsum P;  O = O alpha + P V   (P repacked as bf16/f16 A fragments, V by ldmatrix.trans)
// Row max and sum are kept per thread and combined over the 4 lanes of a row with shuffles.
// At the end O / l goes through shared memory (the Q tile, no longer needed) to 16-byte
// coalesced stores, and lse = m scale + ln l is written for the backward. Blocks are launched
// heaviest first (last query tiles first) so causal work balances across the GPU.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_launch.cuh"

namespace tessera::kernels::attention {

template <int HeadDim>
struct ForwardTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMTiles = 2;  // m16 slices per warp
  static constexpr int kBlockM = kWarps * 16 * kMTiles;
  static constexpr int kBlockN = HeadDim <= 64 ? 64 : 32;  // the most that fits 255 registers unspilled
  using QTile = SmemTile<kBlockM, HeadDim>;
  using KTile = SmemTile<kBlockN, HeadDim>;
  // Q, then K stage 0/1, then V stage 0/1.
  static constexpr int kSmemBytes = QTile::kBytes + 4 * KTile::kBytes;
};

template <typename T, int HeadDim, bool IsCausal>
__global__ void __launch_bounds__(ForwardTraits<HeadDim>::kThreads)
    flash_forward_kernel(const AttentionParams p) {
  using Tr = ForwardTraits<HeadDim>;
  constexpr int kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN, kMTiles = Tr::kMTiles, kThreads = Tr::kThreads;
  constexpr int kDTiles = HeadDim / 8;  // n8 tiles of the output
  constexpr int kNTiles = kBlockN / 8;  // n8 tiles of the scores
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);
  T* sK = sQ + Tr::QTile::kElements;
  T* sV = sK + 2 * Tr::KTile::kElements;

  const int bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads, hk = h / p.group;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kBlockM;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int warp_row0 = warp * 16 * kMTiles;
  const T* qg = static_cast<const T*>(p.q) + b * p.q_batch + h * p.q_head;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_batch + hk * p.k_head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_batch + hk * p.v_head;

  int n_tiles = (p.kv_len + kBlockN - 1) / kBlockN;
  if (IsCausal) {
    const int last_key = m0 + kBlockM - 1 + p.causal_offset;
    n_tiles = last_key < 0 ? 0 : min(n_tiles, last_key / kBlockN + 1);
  }

  load_tile_async<kBlockM, HeadDim, kThreads>(sQ, qg, p.q_row, m0, p.q_len);
  if (n_tiles > 0) {
    load_tile_async<kBlockN, HeadDim, kThreads>(sK, kg, p.k_row, 0, p.kv_len);
    load_tile_async<kBlockN, HeadDim, kThreads>(sV, vg, p.v_row, 0, p.kv_len);
  }
  cp_async_commit();

  const FragmentAddress<HeadDim, LanePattern::RowsFromBit3> q_frag(sQ, lane), v_frag(sV, lane);
  const FragmentAddress<HeadDim, LanePattern::RowsFromBit4> k_frag(sK, lane);

  float o[kMTiles][kDTiles][4];
  float row_m[kMTiles][2], row_l[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      row_m[mt][hf] = -INFINITY;
      row_l[mt][hf] = 0.f;
    }
  }

  for (int j = 0; j < n_tiles; ++j) {
    const int stage = j & 1;
    // Tile j has landed and every warp is done with tile j - 1, whose stage now takes tile
    // j + 1 (one barrier per tile; the load overlaps this tile's products).
    cp_async_wait<0>();
    __syncthreads();
    if (j + 1 < n_tiles) {
      load_tile_async<kBlockN, HeadDim, kThreads>(sK + (stage ^ 1) * Tr::KTile::kElements, kg, p.k_row,
                                                  (j + 1) * kBlockN, p.kv_len);
      load_tile_async<kBlockN, HeadDim, kThreads>(sV + (stage ^ 1) * Tr::KTile::kElements, vg, p.v_row,
                                                  (j + 1) * kBlockN, p.kv_len);
      cp_async_commit();
    }
    const uint32_t stage_bytes = stage * Tr::KTile::kBytes;

    // S = Q K^T
    float s[kMTiles][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk) {
      uint32_t qa[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
        ldmatrix_x4(qa[mt], q_frag.at(warp_row0 + mt * 16, kk * 16));
#pragma unroll
      for (int nn = 0; nn < kNTiles / 2; ++nn) {
        uint32_t kb[4];
        ldmatrix_x4(kb, k_frag.at(nn * 16, kk * 16) + stage_bytes);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<T>(s[mt][2 * nn], qa[mt], kb[0], kb[1]);
          mma_16816<T>(s[mt][2 * nn + 1], qa[mt], kb[2], kb[3]);
        }
      }
    }

    // Mask keys past the end and, causal, keys right of the diagonal.
    const int n0 = j * kBlockN;
    const bool tail = n0 + kBlockN > p.kv_len;
    const bool diagonal = IsCausal && n0 + kBlockN - 1 > m0 + p.causal_offset;
    if (tail || diagonal) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = m0 + warp_row0 + mt * 16 + g + (e >= 2 ? 8 : 0);
            const int col = n0 + nt * 8 + 2 * t + (e & 1);
            if (col >= p.kv_len || (IsCausal && col > row + p.causal_offset)) s[mt][nt][e] = -INFINITY;
          }
    }

    // Online softmax: rescale what was accumulated, exponentiate this tile.
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        float mx = row_m[mt][hf];
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hf], s[mt][nt][2 * hf + 1]));
        mx = row_max_quad(mx);
        // A row that has seen only masked keys keeps m = -inf: exponentiate against 0 instead.
        const float base = mx == -INFINITY ? 0.f : mx * p.scale_log2;
        const float alpha = exp2_ftz(row_m[mt][hf] * p.scale_log2 - base);
        row_m[mt][hf] = mx;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
          for (int e = 2 * hf; e < 2 * hf + 2; ++e) {
            s[mt][nt][e] = exp2_ftz(fmaf(s[mt][nt][e], p.scale_log2, -base));
            sum += s[mt][nt][e];
          }
        }
        row_l[mt][hf] = row_l[mt][hf] * alpha + sum;
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          o[mt][dt][2 * hf] *= alpha;
          o[mt][dt][2 * hf + 1] *= alpha;
        }
      }
    }

    // O += P V
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t pa[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        pa[mt][0] = pack_pair<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack_pair<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack_pair<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack_pair<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dd = 0; dd < HeadDim / 16; ++dd) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, v_frag.at(kk * 16, dd * 16) + stage_bytes);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<T>(o[mt][2 * dd], pa[mt], vb[0], vb[1]);
          mma_16816<T>(o[mt][2 * dd + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
  }

  // Epilogue: normalise, stage the warp's rows in its part of the Q tile, store 16 bytes a lane.
  cp_async_wait<0>();
  __syncthreads();
  uint32_t* sO = reinterpret_cast<uint32_t*>(sQ);
  float* lse = p.lse + static_cast<int64_t>(bh) * p.q_len;
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const float l = row_sum_quad(row_l[mt][hf]);
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const int row = warp_row0 + mt * 16 + g + hf * 8;
#pragma unroll
      for (int dt = 0; dt < kDTiles; ++dt)
        sO[Tr::QTile::offset(row, dt * 8 + 2 * t) / 2] =
            pack_pair<T>(o[mt][dt][2 * hf] * inv, o[mt][dt][2 * hf + 1] * inv);
      if (t == 0 && m0 + row < p.q_len) lse[m0 + row] = l > 0.f ? row_m[mt][hf] * p.scale + logf(l) : INFINITY;
    }
  }
  __syncwarp();
  T* og = static_cast<T*>(p.out) + b * p.o_batch + h * p.o_head;
  constexpr int kChunksPerRow = HeadDim / 8;
#pragma unroll
  for (int c = lane; c < 16 * kMTiles * kChunksPerRow; c += 32) {
    const int row = warp_row0 + c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    if (m0 + row < p.q_len)
      *reinterpret_cast<uint4*>(og + static_cast<int64_t>(m0 + row) * p.o_row + col) =
          *reinterpret_cast<const uint4*>(sQ + Tr::QTile::offset(row, col));
  }
}

template <typename T, int HeadDim, bool IsCausal>
void launch_forward(const AttentionParams& p, cudaStream_t stream) {
  if constexpr (HeadDim == 64 || HeadDim == 128) {
    if (hopper_wgmma_usable()) {
      launch_forward_sm90<T, HeadDim, IsCausal>(p, stream);
      return;
    }
  }
  using Tr = ForwardTraits<HeadDim>;
  constexpr auto kernel = flash_forward_kernel<T, HeadDim, IsCausal>;
  set_dynamic_smem<kernel>(Tr::kSmemBytes);
  const dim3 grid(static_cast<unsigned>(p.batch * p.heads), static_cast<unsigned>((p.q_len + Tr::kBlockM - 1) / Tr::kBlockM));
  kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
  TESSERA_CUDA_LAUNCH_CHECK();
}

}  // namespace tessera::kernels::attention
