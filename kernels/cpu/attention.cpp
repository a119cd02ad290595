// CPU flash attention (kernels/attention.h): the same tiled algorithm as the CUDA kernels, in
// f32 (f64 for f64 inputs), and the reference they are tested against.
//
// Forward, for one tile of Br query rows, over key tiles of Bc keys:
//   s = q k^T * scale (masked entries -inf);  m_new = max(m, rowmax(s))
//   alpha = exp(m - m_new);  p = exp(s - m_new);  l = l * alpha + rowsum(p);  acc = acc * alpha + p v
// then out = acc / l and lse = m + log(l) (the only row statistic kept for the backward). A row
// that has seen no key keeps m = -inf; its exponentials are taken against 0 instead so nothing
// becomes NaN, and it ends with out = 0, lse = +inf.
//
// Backward: delta_i = sum_d dout_id * out_id; then, recomputing p = exp(s - lse) tile by tile,
//   dp = dout v^T,  ds = p * (dp - delta),  dv += p^T dout,  dq += ds k * scale,  dk += ds^T q * scale.
// dq is one pass over (batch, head, query tile) and dk/dv another over (batch, kv head, key
// tile) that also loops over the query heads sharing the kv head; each output is owned by one
// task and summed in a fixed order, so results do not depend on the thread count. Tasks are
// spread over OpenMP threads (dynamic schedule: causal tiles differ in cost).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/common.h"

namespace tessera::kernels {
namespace {

constexpr int64_t Br = kAttentionCpuTileRows;
constexpr int64_t Bc = kAttentionCpuTileCols;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Key tiles that query rows [r0, r0 + rows) need: causal stops after the last visible key.
int64_t key_tiles_for(const AttentionArgs& a, int64_t r0, int64_t rows) {
  const int64_t all = ceil_div(a.kv_len, Bc);
  if (!a.causal) return all;
  const int64_t last_key = r0 + rows - 1 + a.kv_len - a.q_len;
  return last_key < 0 ? 0 : std::min(all, last_key / Bc + 1);
}

// First query tile that sees any key at or after c0 (causal); may equal the tile count.
int64_t first_query_tile(const AttentionArgs& a, int64_t c0) {
  if (!a.causal) return 0;
  const int64_t first_query = c0 - (a.kv_len - a.q_len);
  return first_query <= 0 ? 0 : std::min(ceil_div(a.q_len, Br), first_query / Br);
}

bool visible(const AttentionArgs& a, int64_t i, int64_t j) { return !a.causal || j <= i + a.kv_len - a.q_len; }

// Work below which threads cost more than they save.
bool worth_threads(const AttentionArgs& a) {
  return static_cast<double>(a.batch) * a.heads * a.q_len * a.kv_len * a.head_dim > 1 << 18;
}

template <typename T, typename A>
void load_rows(const T* base, int64_t row_stride, int64_t r0, int64_t rows, int64_t d, A* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = base + (r0 + r) * row_stride;
    for (int64_t i = 0; i < d; ++i) dst[r * d + i] = cpu::load(src[i]);
  }
}

template <typename A>
A dot(const A* x, const A* y, int64_t n) {
  A s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

template <typename A>
void axpy(A alpha, const A* x, A* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <typename T>
void forward(const AttentionArgs& a) {
  using A = cpu::AccType<T>;
  const int64_t D = a.head_dim, group = a.heads / a.kv_heads, q_tiles = ceil_div(a.q_len, Br);
  const int64_t tasks = a.batch * a.heads * q_tiles;
  const A scale = static_cast<A>(a.scale);
  const A inf = std::numeric_limits<A>::infinity();
  const T* q = static_cast<const T*>(a.q);
  const T* k = static_cast<const T*>(a.k);
  const T* v = static_cast<const T*>(a.v);
  T* out = static_cast<T*>(a.out);
  A* lse = static_cast<A*>(a.lse);
#pragma omp parallel if (tasks > 1 && worth_threads(a))
  {
    std::vector<A> qt(Br * D), kt(Bc * D), vt(Bc * D), s(Bc), acc(Br * D), m(Br), l(Br);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t bh = task / q_tiles, b = bh / a.heads, h = bh % a.heads, hk = h / group;
      const int64_t r0 = (task % q_tiles) * Br, rows = std::min(Br, a.q_len - r0);
      const T* kb = k + b * a.k_strides.batch + hk * a.k_strides.head;
      const T* vb = v + b * a.v_strides.batch + hk * a.v_strides.head;
      load_rows(q + b * a.q_strides.batch + h * a.q_strides.head, a.q_strides.row, r0, rows, D, qt.data());
      std::fill(acc.begin(), acc.end(), A(0));
      std::fill(m.begin(), m.end(), -inf);
      std::fill(l.begin(), l.end(), A(0));
      const int64_t key_tiles = key_tiles_for(a, r0, rows);
      for (int64_t jt = 0; jt < key_tiles; ++jt) {
        const int64_t c0 = jt * Bc, cols = std::min(Bc, a.kv_len - c0);
        load_rows(kb, a.k_strides.row, c0, cols, D, kt.data());
        load_rows(vb, a.v_strides.row, c0, cols, D, vt.data());
        for (int64_t r = 0; r < rows; ++r) {
          A row_max = m[r];
          for (int64_t c = 0; c < cols; ++c) {
            s[c] = visible(a, r0 + r, c0 + c) ? dot(&qt[r * D], &kt[c * D], D) * scale : -inf;
            row_max = std::max(row_max, s[c]);
          }
          const A base = row_max == -inf ? A(0) : row_max;
          const A alpha = std::exp(m[r] - base);
          A* o = &acc[r * D];
          for (int64_t i = 0; i < D; ++i) o[i] *= alpha;
          A sum = 0;
          for (int64_t c = 0; c < cols; ++c) {
            const A p = std::exp(s[c] - base);
            sum += p;
            if (p != A(0)) axpy(p, &vt[c * D], o, D);
          }
          l[r] = l[r] * alpha + sum;
          m[r] = row_max;
        }
      }
      T* ob = out + b * a.out_strides.batch + h * a.out_strides.head;
      for (int64_t r = 0; r < rows; ++r) {
        const A inv = l[r] > A(0) ? A(1) / l[r] : A(0);
        for (int64_t i = 0; i < D; ++i) ob[(r0 + r) * a.out_strides.row + i] = cpu::store<T>(acc[r * D + i] * inv);
        lse[bh * a.q_len + r0 + r] = l[r] > A(0) ? m[r] + std::log(l[r]) : inf;
      }
    }
  }
}

template <typename T>
void backward(const AttentionArgs& a) {
  using A = cpu::AccType<T>;
  const int64_t D = a.head_dim, group = a.heads / a.kv_heads;
  const int64_t q_tiles = ceil_div(a.q_len, Br), k_tiles = ceil_div(a.kv_len, Bc);
  const A scale = static_cast<A>(a.scale);
  const T* q = static_cast<const T*>(a.q);
  const T* k = static_cast<const T*>(a.k);
  const T* v = static_cast<const T*>(a.v);
  const T* out = static_cast<const T*>(a.out);
  const T* dout = static_cast<const T*>(a.dout);
  const A* lse = static_cast<const A*>(a.lse);
  T* dq = static_cast<T*>(a.dq);
  T* dk = static_cast<T*>(a.dk);
  T* dv = static_cast<T*>(a.dv);
  const bool threads = worth_threads(a);

  // delta_i = sum_d dout_id * out_id, one per query row.
  std::vector<A> delta(static_cast<size_t>(a.batch * a.heads * a.q_len));
  const int64_t rows_total = static_cast<int64_t>(delta.size());
#pragma omp parallel for schedule(static) if (threads)
  for (int64_t row = 0; row < rows_total; ++row) {
    const int64_t i = row % a.q_len, h = (row / a.q_len) % a.heads, b = row / (a.q_len * a.heads);
    const T* o = out + b * a.out_strides.batch + h * a.out_strides.head + i * a.out_strides.row;
    const T* g = dout + b * a.dout_strides.batch + h * a.dout_strides.head + i * a.dout_strides.row;
    A sum = 0;
    for (int64_t d = 0; d < D; ++d) sum += cpu::load(o[d]) * cpu::load(g[d]);
    delta[row] = sum;
  }

  // dq: one task per (batch, head, query tile), key tiles in order.
  const int64_t dq_tasks = a.batch * a.heads * q_tiles;
#pragma omp parallel if (dq_tasks > 1 && threads)
  {
    std::vector<A> qt(Br * D), gt(Br * D), kt(Bc * D), vt(Bc * D), acc(Br * D);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < dq_tasks; ++task) {
      const int64_t bh = task / q_tiles, b = bh / a.heads, h = bh % a.heads, hk = h / group;
      const int64_t r0 = (task % q_tiles) * Br, rows = std::min(Br, a.q_len - r0);
      load_rows(q + b * a.q_strides.batch + h * a.q_strides.head, a.q_strides.row, r0, rows, D, qt.data());
      load_rows(dout + b * a.dout_strides.batch + h * a.dout_strides.head, a.dout_strides.row, r0, rows, D, gt.data());
      std::fill(acc.begin(), acc.end(), A(0));
      const T* kb = k + b * a.k_strides.batch + hk * a.k_strides.head;
      const T* vb = v + b * a.v_strides.batch + hk * a.v_strides.head;
      const int64_t key_tiles = key_tiles_for(a, r0, rows);
      for (int64_t jt = 0; jt < key_tiles; ++jt) {
        const int64_t c0 = jt * Bc, cols = std::min(Bc, a.kv_len - c0);
        load_rows(kb, a.k_strides.row, c0, cols, D, kt.data());
        load_rows(vb, a.v_strides.row, c0, cols, D, vt.data());
        for (int64_t r = 0; r < rows; ++r) {
          const A row_lse = lse[bh * a.q_len + r0 + r], row_delta = delta[bh * a.q_len + r0 + r];
          for (int64_t c = 0; c < cols; ++c) {
            if (!visible(a, r0 + r, c0 + c)) continue;
            const A p = std::exp(dot(&qt[r * D], &kt[c * D], D) * scale - row_lse);
            const A ds = p * (dot(&gt[r * D], &vt[c * D], D) - row_delta);
            axpy(ds, &kt[c * D], &acc[r * D], D);
          }
        }
      }
      T* dqb = dq + b * a.dq_strides.batch + h * a.dq_strides.head;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < D; ++i) dqb[(r0 + r) * a.dq_strides.row + i] = cpu::store<T>(acc[r * D + i] * scale);
    }
  }

  // dk, dv: one task per (batch, kv head, key tile); query heads of the group, then query
  // tiles, in order.
  const int64_t kv_tasks = a.batch * a.kv_heads * k_tiles;
#pragma omp parallel if (kv_tasks > 1 && threads)
  {
    std::vector<A> qt(Br * D), gt(Br * D), kt(Bc * D), vt(Bc * D), dk_acc(Bc * D), dv_acc(Bc * D);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < kv_tasks; ++task) {
      const int64_t bhk = task / k_tiles, b = bhk / a.kv_heads, hk = bhk % a.kv_heads;
      const int64_t c0 = (task % k_tiles) * Bc, cols = std::min(Bc, a.kv_len - c0);
      load_rows(k + b * a.k_strides.batch + hk * a.k_strides.head, a.k_strides.row, c0, cols, D, kt.data());
      load_rows(v + b * a.v_strides.batch + hk * a.v_strides.head, a.v_strides.row, c0, cols, D, vt.data());
      std::fill(dk_acc.begin(), dk_acc.end(), A(0));
      std::fill(dv_acc.begin(), dv_acc.end(), A(0));
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        const int64_t bh = b * a.heads + h;
        const T* qb = q + b * a.q_strides.batch + h * a.q_strides.head;
        const T* gb = dout + b * a.dout_strides.batch + h * a.dout_strides.head;
        for (int64_t it = first_query_tile(a, c0); it < q_tiles; ++it) {
          const int64_t r0 = it * Br, rows = std::min(Br, a.q_len - r0);
          load_rows(qb, a.q_strides.row, r0, rows, D, qt.data());
          load_rows(gb, a.dout_strides.row, r0, rows, D, gt.data());
          for (int64_t c = 0; c < cols; ++c) {
            for (int64_t r = 0; r < rows; ++r) {
              if (!visible(a, r0 + r, c0 + c)) continue;
              const A p = std::exp(dot(&qt[r * D], &kt[c * D], D) * scale - lse[bh * a.q_len + r0 + r]);
              const A ds = p * (dot(&gt[r * D], &vt[c * D], D) - delta[bh * a.q_len + r0 + r]);
              axpy(p, &gt[r * D], &dv_acc[c * D], D);
              axpy(ds, &qt[r * D], &dk_acc[c * D], D);
            }
          }
        }
      }
      T* dkb = dk + b * a.dk_strides.batch + hk * a.dk_strides.head;
      T* dvb = dv + b * a.dv_strides.batch + hk * a.dv_strides.head;
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t i = 0; i < D; ++i) {
          dkb[(c0 + c) * a.dk_strides.row + i] = cpu::store<T>(dk_acc[c * D + i] * scale);
          dvb[(c0 + c) * a.dv_strides.row + i] = cpu::store<T>(dv_acc[c * D + i]);
        }
    }
  }
}

}  // namespace

void attention_forward_cpu(const AttentionArgs& args) {
  float_dtype_switch(args.dtype, "scaled_dot_product_attention", [&](auto* tag) {
    forward<std::remove_pointer_t<decltype(tag)>>(args);
  });
}

void attention_backward_cpu(const AttentionArgs& args) {
  float_dtype_switch(args.dtype, "scaled_dot_product_attention backward", [&](auto* tag) {
    backward<std::remove_pointer_t<decltype(tag)>>(args);
  });
}

}  // namespace tessera::kernels
