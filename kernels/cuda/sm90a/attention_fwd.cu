// Flash-attention forward on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a): the
// algorithm of attention_forward.cuh with the products on wgmma.mma_async and the key/value
// tiles loaded by TMA, head_dim 64 and 128.
// Built for sm_90a only (CMakeLists.txt); launch_forward (attention_forward.cuh) calls it on
// compute capability 9.0 unless TESSERA_ATTENTION_WGMMA=0.
//
// One block of two warpgroups owns kBlockM = 128 query rows of one (batch, head); warpgroup w
// owns rows [64w, 64w + 64). The block walks the key tiles of kBlockN = 128 keys its rows can
// see (causal: up to the diagonal), K and V double-buffered in shared memory, loaded by TMA.
// Per tile, per warpgroup:
//   S = Q K^T            (A = its Q rows, B = the K tile, both K-major from shared memory)
//   mask, online softmax (row max and sum over the 4 lanes of a row; O rescaled in registers)
//   O += P V             (P as the register A operand: the accumulator layout is the A layout;
//                         V as an MN-major B)
// pipelined one tile deep inside the warpgroup: S of tile j is issued before P V of tile j - 1,
// so that tile j's softmax overlaps that product (FlashAttention-3's intra-warpgroup overlap).
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
  // Q, K stage 0/1, V stage 0/1, four mbarriers (K and V per stage), plus slack to align the
  // start to 1024 bytes.
  static constexpr int kSmemBytes = QTile::kBytes + 4 * KTile::kBytes + 4 * 8 + 1024;
  static_assert(HeadDim == 64 || HeadDim == 128, "head_dim 64 or 128");
};

template <typename T, int HeadDim, bool IsCausal>
__global__ void __launch_bounds__(ForwardTraits<HeadDim>::kThreads, 1)
    flash_forward_wgmma_kernel(const AttentionParams p, const __grid_constant__ CUtensorMap k_map,
                               const __grid_constant__ CUtensorMap v_map) {
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
  const uint32_t k_bar = smem_u32(sV + 2 * KTile::kElements), v_bar = k_bar + 16;  // + 8 * stage

  const int bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads, hk = h / p.group;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kBlockM;
  const int tid = threadIdx.x, wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int row0 = wg * 64 + warp * 16 + g;  // this thread's rows in the block: row0, row0 + 8
  const T* qg = static_cast<const T*>(p.q) + b * p.q_batch + h * p.q_head;

  const int n_tiles = visible_key_tiles<kBlockM, kBlockN, IsCausal>(p, m0);
  // Key tile j lives in K stage j & 1 and V stage j & 1, loaded by TMA (one box per 64 columns)
  // issued by thread 0 and completed on that stage's mbarrier; K and V are loaded separately
  // because they are consumed an iteration apart (below). Use u of a stage's barrier waits for
  // parity u & 1, and tile j is use j / 2.
  auto load = [&](const CUtensorMap& map, T* stages, uint32_t bars, int j) {
    const uint32_t bar = bars + 8 * (j & 1);
    mbar_arrive_expect_tx(bar, KTile::kBytes);
#pragma unroll
    for (int c = 0; c < HeadDim / 64; ++c)
      tma_load_4d(smem_u32(stages + (j & 1) * KTile::kElements) + c * KTile::kBlockBytes, &map, c * 64, j * kBlockN,
                  hk, b, bar);
  };
  auto load_k = [&](int j) { load(k_map, sK, k_bar, j); };
  auto load_v = [&](int j) { load(v_map, sV, v_bar, j); };
  auto wait_k = [&](int j) { mbar_wait(k_bar + 8 * (j & 1), (j >> 1) & 1); };
  auto wait_v = [&](int j) { mbar_wait(v_bar + 8 * (j & 1), (j >> 1) & 1); };
  if (tid == 0) {
    for (int i = 0; i < 4; ++i) mbar_init(k_bar + 8 * i, 1);  // k_bar[0..1], v_bar[0..1]
    mbar_init_fence();
  }
  __syncthreads();
  load_wgtile_async<kBlockM, HeadDim, kThreads>(sQ, qg, p.q_row, m0, p.q_len, tid);
  cp_async_commit();
  if (tid == 0 && n_tiles > 0) load_k(0);

  const uint32_t q_addr = smem_u32(sQ) + wg * 64 * 128, k_addr = smem_u32(sK), v_addr = smem_u32(sV);

  float o[HeadDim / 2];
#pragma unroll
  for (int i = 0; i < HeadDim / 2; ++i) o[i] = 0.f;
  float row_m[2] = {-INFINITY, -INFINITY}, row_l[2] = {0.f, 0.f};
  float s[kBlockN / 2];
  uint32_t pa[kBlockN / 16][4];  // P of the previous tile as A operands (key slice kk = S tiles 2kk, 2kk + 1)

  // O += P V for tile j (P in pa), one commit group.
  auto issue_pv = [&](int j) {
    const uint32_t vs = v_addr + (j & 1) * KTile::kBytes;
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
      wgmma_rs<T, 1>(o, pa[kk], mnmajor_desc(vs + kk * 16 * 128, KTile::kBlockBytes), 1);
    wgmma_commit();
  };

  // Software pipeline inside each warpgroup: iteration j issues S_j = Q K_j^T and then
  // O += P_{j-1} V_{j-1}; the softmax of S_j runs while the tensor cores do P_{j-1} V_{j-1}, and O
  // is rescaled (by the new row max) only after that product has landed.
  // One iteration; First (j = 0) has no previous product to issue (a compile-time branch: a
  // run-time one around a wgmma makes ptxas copy its accumulators).
  auto tile = [&]<bool First>(int j) {
    // K_j and V_{j-1} have landed (and, first, Q, made visible to wgmma's async proxy); both
    // warpgroups are done with K_{j-1} and V_{j-2}, whose stages take K_{j+1} and V_j.
    wait_k(j);
    if constexpr (First) {
      cp_async_wait<0>();
      fence_proxy_async();
    } else {
      wait_v(j - 1);
    }
    __syncthreads();
    if (tid == 0) {
      if (j + 1 < n_tiles) load_k(j + 1);
      load_v(j);
    }

    const uint32_t ks = k_addr + (j & 1) * KTile::kBytes;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HeadDim / 16; ++kk) {
      const uint32_t off = (kk % 4) * 32;
      wgmma_ss<T, 0, 0>(s, kmajor_desc(q_addr + (kk / 4) * QTile::kBlockBytes + off),
                        kmajor_desc(ks + (kk / 4) * KTile::kBlockBytes + off), kk > 0);
    }
    wgmma_commit();
    if constexpr (First) {
      wgmma_wait<0>();
    } else {
      issue_pv(j - 1);
      wgmma_wait<1>();  // S_j done; P_{j-1} V_{j-1} may still run
    }
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

    // Online softmax of this tile; O's rescale waits for the product in flight.
    float alpha[2];
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float mx = row_m[hf];
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt) mx = fmaxf(mx, fmaxf(s[4 * nt + 2 * hf], s[4 * nt + 2 * hf + 1]));
      mx = row_max_quad(mx);
      // A row that has seen only masked keys keeps m = -inf: exponentiate against 0 instead.
      const float base = mx == -INFINITY ? 0.f : mx * p.scale_log2;
      alpha[hf] = exp2_ftz(row_m[hf] * p.scale_log2 - base);
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
      row_l[hf] = row_l[hf] * alpha[hf] + sum;
    }
    wgmma_wait<0>();
    fence_operands(o);
#pragma unroll
    for (int dt = 0; dt < kOTiles; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[4 * dt + e] *= alpha[e >> 1];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) pa[kk][r] = pack_pair<T>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
  };
  if (n_tiles > 0) tile.template operator()<true>(0);
  for (int j = 1; j < n_tiles; ++j) tile.template operator()<false>(j);
  if (n_tiles > 0) {  // the last tile's P V
    wait_v(n_tiles - 1);
    wgmma_fence();
    issue_pv(n_tiles - 1);
    wgmma_wait<0>();
    fence_operands(o);
  }

  // Epilogue: normalise, stage the rows in the Q tile, store 16 bytes a thread.
  cp_async_wait<0>();  // Q, when there was no key tile
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
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
  const CUtensorMap k_map = sm90::make_tile_map(p.k, kBf16, HeadDim, p.kv_len, p.kv_heads, p.batch, p.k_row, p.k_head,
                                                p.k_batch, Tr::kBlockN);
  const CUtensorMap v_map = sm90::make_tile_map(p.v, kBf16, HeadDim, p.kv_len, p.kv_heads, p.batch, p.v_row, p.v_head,
                                                p.v_batch, Tr::kBlockN);
  kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p, k_map, v_map);
  TESSERA_CUDA_LAUNCH_CHECK();
}

#define TESSERA_FORWARD_SM90(T, D)                                                          \
  template void launch_forward_sm90<T, D, false>(const AttentionParams&, cudaStream_t); \
  template void launch_forward_sm90<T, D, true>(const AttentionParams&, cudaStream_t);
TESSERA_FORWARD_SM90(__nv_bfloat16, 64)
TESSERA_FORWARD_SM90(__nv_bfloat16, 128)
TESSERA_FORWARD_SM90(__half, 64)
TESSERA_FORWARD_SM90(__half, 128)
#undef TESSERA_FORWARD_SM90

}  // namespace tessera::kernels::attention
