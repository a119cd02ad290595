// Flash-attention forward on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a): the
// algorithm of attention_forward.cuh with the products on wgmma.mma_async. Instantiated for
// head_dim 128; 64 compiles too but measured slower than the mma.sync kernel (the products are
// half as long while the softmax per tile is the same, and nothing here overlaps the two).
// Built for sm_90a only (CMakeLists.txt); launch_forward (attention_forward.cuh) calls it on
// compute capability 9.0 unless TESSERA_ATTENTION_WGMMA=0.
//
// One block of two warpgroups owns kBlockM = 128 query rows of one (batch, head); warpgroup w
// owns rows [64w, 64w + 64). The block walks the key tiles of kBlockN = 128 keys its rows can
// see (causal: up to the diagonal), K and V double-buffered in shared memory with cp.async.
// Per tile, per warpgroup:
//   S = Q K^T            (A = its Q rows, B = the K tile, both K-major from shared memory)
//   mask, online softmax (row max and sum over the 4 lanes of a row; O rescaled in registers)
//   O += P V             (P as the register A operand: the accumulator layout is the A layout;
//                         V as an MN-major B)
// At the end O / l is staged in the Q tile and stored 16 bytes a thread; lse = m scale + ln l
// is written for the backward. Blocks are launched heaviest first (last query tiles first).
#include <cuda_runtime.h>

#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/attention_wgmma.cuh"

namespace tessera::kernels::attention {
namespace sm90 {

template <int HeadDim>
struct ForwardTraits {
  static constexpr int kThreads = 256;  // two warpgroups
  static constexpr int kBlockM = 128;   // queries per block, 64 per warpgroup
  static constexpr int kBlockN = 128;   // keys per tile
  using QTile = WgTile<kBlockM, HeadDim>;
  using KTile = WgTile<kBlockN, HeadDim>;
  // Q, K stage 0/1, V stage 0/1, plus slack to align the start to 1024 bytes.
  static constexpr int kSmemBytes = QTile::kBytes + 4 * KTile::kBytes + 1024;
  static_assert(HeadDim == 64 || HeadDim == 128, "head_dim 64 or 128");
};

template <typename T, int HeadDim, bool IsCausal>
__global__ void __launch_bounds__(ForwardTraits<HeadDim>::kThreads, 1) flash_forward_wgmma_kernel(const AttentionParams p) {
  using Tr = ForwardTraits<HeadDim>;
  using QTile = typename Tr::QTile;
  using KTile = typename Tr::KTile;
  constexpr int kBlockM = Tr::kBlockM, kBlockN = Tr::kBlockN, kThreads = Tr::kThreads;
  constexpr int kSTiles = kBlockN / 8, kOTiles = HeadDim / 8;  // n8 column tiles of S and O
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024u - (smem_u32(smem_raw) & 1023u)) & 1023u);
  T* sQ = reinterpret_cast<T*>(smem);
  T* sK = sQ + QTile::kElements;
  T* sV = sK + 2 * KTile::kElements;

  const int bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads, hk = h / p.group;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kBlockM;
  const int tid = threadIdx.x, wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int row0 = wg * 64 + warp * 16 + g;  // this thread's rows in the block: row0, row0 + 8
  const T* qg = static_cast<const T*>(p.q) + b * p.q_batch + h * p.q_head;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_batch + hk * p.k_head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_batch + hk * p.v_head;

  const int n_tiles = visible_key_tiles<kBlockM, kBlockN, IsCausal>(p, m0);
  load_wgtile_async<kBlockM, HeadDim, kThreads>(sQ, qg, p.q_row, m0, p.q_len, tid);
  if (n_tiles > 0) {
    load_wgtile_async<kBlockN, HeadDim, kThreads>(sK, kg, p.k_row, 0, p.kv_len, tid);
    load_wgtile_async<kBlockN, HeadDim, kThreads>(sV, vg, p.v_row, 0, p.kv_len, tid);
  }
  cp_async_commit();

  const uint32_t q_addr = smem_u32(sQ) + wg * 64 * 128, k_addr = smem_u32(sK), v_addr = smem_u32(sV);
  constexpr uint32_t kSbo = 1024;  // 8 rows of 128 bytes

  float o[HeadDim / 2];
#pragma unroll
  for (int i = 0; i < HeadDim / 2; ++i) o[i] = 0.f;
  float row_m[2] = {-INFINITY, -INFINITY}, row_l[2] = {0.f, 0.f};

  for (int j = 0; j < n_tiles; ++j) {
    const int stage = j & 1;
    // Tile j has landed (visible to wgmma's async proxy) and both warpgroups are done with tile
    // j - 1, whose stage now takes tile j + 1.
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();
    if (j + 1 < n_tiles) {
      load_wgtile_async<kBlockN, HeadDim, kThreads>(sK + (stage ^ 1) * KTile::kElements, kg, p.k_row,
                                                    (j + 1) * kBlockN, p.kv_len, tid);
      load_wgtile_async<kBlockN, HeadDim, kThreads>(sV + (stage ^ 1) * KTile::kElements, vg, p.v_row,
                                                    (j + 1) * kBlockN, p.kv_len, tid);
      cp_async_commit();
    }
    const uint32_t ks = k_addr + stage * KTile::kBytes, vs = v_addr + stage * KTile::kBytes;

    // S = Q K^T
    float s[kBlockN / 2];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk) {
      const uint32_t off = (kk % 4) * 32;
      wgmma_ss<T, 0, 0>(s, smem_desc(q_addr + (kk / 4) * QTile::kBlockBytes + off, 16, kSbo),
                        smem_desc(ks + (kk / 4) * KTile::kBlockBytes + off, 16, kSbo), kk > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(s);

    // Mask keys past the end and, causal, keys right of the diagonal.
    const int n0 = j * kBlockN;
    if (n0 + kBlockN > p.kv_len || (IsCausal && n0 + kBlockN - 1 > m0 + p.causal_offset)) {
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = m0 + row0 + (e >= 2 ? 8 : 0), col = n0 + nt * 8 + 2 * t + (e & 1);
          if (col >= p.kv_len || (IsCausal && col > row + p.causal_offset)) s[4 * nt + e] = -INFINITY;
        }
    }

    // Online softmax: rescale what was accumulated, exponentiate this tile.
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float mx = row_m[hf];
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt) mx = fmaxf(mx, fmaxf(s[4 * nt + 2 * hf], s[4 * nt + 2 * hf + 1]));
      mx = row_max_quad(mx);
      // A row that has seen only masked keys keeps m = -inf: exponentiate against 0 instead.
      const float base = mx == -INFINITY ? 0.f : mx * p.scale_log2;
      const float alpha = exp2_ftz(row_m[hf] * p.scale_log2 - base);
      row_m[hf] = mx;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt) {
#pragma unroll
        for (int e = 2 * hf; e < 2 * hf + 2; ++e) {
          s[4 * nt + e] = exp2_ftz(fmaf(s[4 * nt + e], p.scale_log2, -base));
          sum += s[4 * nt + e];
        }
      }
      row_l[hf] = row_l[hf] * alpha + sum;
#pragma unroll
      for (int dt = 0; dt < kOTiles; ++dt) {
        o[4 * dt + 2 * hf] *= alpha;
        o[4 * dt + 2 * hf + 1] *= alpha;
      }
    }

    // O += P V: key slice kk (keys 16kk..) is column tiles 2kk, 2kk + 1 of S.
    uint32_t pa[kBlockN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) pa[kk][r] = pack_pair<T>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
      wgmma_rs<T, 1>(o, pa[kk], smem_desc(vs + kk * 16 * 128, KTile::kBlockBytes, kSbo), 1);
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(o);
  }

  // Epilogue: normalise, stage the rows in the Q tile, store 16 bytes a thread.
  cp_async_wait<0>();
  __syncthreads();
  uint32_t* sO = reinterpret_cast<uint32_t*>(sQ);
  float* lse = p.lse + static_cast<int64_t>(bh) * p.q_len;
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const float l = row_sum_quad(row_l[hf]);
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int row = row0 + hf * 8;
#pragma unroll
    for (int dt = 0; dt < kOTiles; ++dt)
      sO[QTile::offset(row, dt * 8 + 2 * t) / 2] = pack_pair<T>(o[4 * dt + 2 * hf] * inv, o[4 * dt + 2 * hf + 1] * inv);
    if (t == 0 && m0 + row < p.q_len) lse[m0 + row] = l > 0.f ? row_m[hf] * p.scale + logf(l) : INFINITY;
  }
  __syncthreads();
  store_staged_rows<QTile, kBlockM, HeadDim, kThreads>(static_cast<T*>(p.out) + b * p.o_batch + h * p.o_head,
                                                       p.o_row, m0, p.q_len, sQ, tid);
}

}  // namespace sm90

template <typename T, int HeadDim, bool IsCausal>
void launch_forward_sm90(const AttentionParams& p, cudaStream_t stream) {
  using Tr = sm90::ForwardTraits<HeadDim>;
  constexpr auto kernel = sm90::flash_forward_wgmma_kernel<T, HeadDim, IsCausal>;
  set_dynamic_smem<kernel>(Tr::kSmemBytes);
  const dim3 grid(static_cast<unsigned>(p.batch * p.heads), static_cast<unsigned>((p.q_len + Tr::kBlockM - 1) / Tr::kBlockM));
  kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
  TESSERA_CUDA_LAUNCH_CHECK();
}

#define TESSERA_FORWARD_SM90(T, D)                                                          \
  template void launch_forward_sm90<T, D, false>(const AttentionParams&, cudaStream_t); \
  template void launch_forward_sm90<T, D, true>(const AttentionParams&, cudaStream_t);
TESSERA_FORWARD_SM90(__nv_bfloat16, 128)
TESSERA_FORWARD_SM90(__half, 128)
#undef TESSERA_FORWARD_SM90

}  // namespace tessera::kernels::attention
