// Naive attention references (tests/common/attention_reference.h): one implementation,
// instantiated in float64 without rounding and in f32 with rounding to bf16/f16.
#include "tests/common/attention_reference.h"

#include <cmath>
#include <limits>

#include "framework/core/half.h"

namespace tessera::testing {
namespace {

template <typename A, typename Round>
AttentionResult naive(const AttentionProblem& p, Round rnd) {
  const int64_t B = p.batch, H = p.heads, Hkv = p.kv_heads, Sq = p.q_len, Sk = p.kv_len, D = p.head_dim;
  const int64_t group = H / Hkv, offset = Sk - Sq;
  const bool backward = !p.dout.empty();
  const A scale = static_cast<A>(p.scale), inf = std::numeric_limits<A>::infinity();
  auto rounded = [&](const std::vector<double>& x) {
    std::vector<A> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = rnd(static_cast<A>(x[i]));
    return out;
  };
  const std::vector<A> q = rounded(p.q), k = rounded(p.k), v = rounded(p.v), dout = rounded(p.dout);
  auto dot = [D](const A* x, const A* y) {
    A s = 0;
    for (int64_t d = 0; d < D; ++d) s += x[d] * y[d];
    return s;
  };

  AttentionResult r;
  r.out.assign(static_cast<size_t>(B * H * Sq * D), 0.0);
  r.lse.assign(static_cast<size_t>(B * H * Sq), 0.0);
  if (backward) {
    r.dq.assign(r.out.size(), 0.0);
    r.dk.assign(static_cast<size_t>(B * Hkv * Sk * D), 0.0);
    r.dv.assign(r.dk.size(), 0.0);
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bk = 0; bk < B * Hkv; ++bk) {
    const A* kb = &k[bk * Sk * D];
    const A* vb = &v[bk * Sk * D];
    std::vector<A> prob(static_cast<size_t>(Sq * Sk)), dk_acc(static_cast<size_t>(Sk * D), 0),
        dv_acc(static_cast<size_t>(Sk * D), 0), acc(static_cast<size_t>(D)), ds(static_cast<size_t>(Sk));
    for (int64_t h = (bk % Hkv) * group; h < (bk % Hkv + 1) * group; ++h) {
      const int64_t bh = (bk / Hkv) * H + h;
      const A* qb = &q[bh * Sq * D];
      for (int64_t i = 0; i < Sq; ++i) {
        A* pr = &prob[i * Sk];
        A m = -inf;
        for (int64_t j = 0; j < Sk; ++j) {
          const bool visible = !p.causal || j <= i + offset;
          pr[j] = visible ? rnd(dot(&qb[i * D], &kb[j * D]) * scale) : -inf;
          m = std::max(m, pr[j]);
        }
        if (m == -inf) {  // sees no key
          for (int64_t j = 0; j < Sk; ++j) pr[j] = 0;
          r.lse[bh * Sq + i] = std::numeric_limits<double>::infinity();
          continue;
        }
        A sum = 0;
        for (int64_t j = 0; j < Sk; ++j) {
          pr[j] = std::exp(pr[j] - m);
          sum += pr[j];
        }
        for (int64_t j = 0; j < Sk; ++j) pr[j] = rnd(pr[j] / sum);
        r.lse[bh * Sq + i] = static_cast<double>(m) + std::log(static_cast<double>(sum));
        std::fill(acc.begin(), acc.end(), A(0));
        for (int64_t j = 0; j < Sk; ++j)
          for (int64_t d = 0; d < D; ++d) acc[d] += pr[j] * vb[j * D + d];
        for (int64_t d = 0; d < D; ++d) r.out[(bh * Sq + i) * D + d] = rnd(acc[d]);
      }
      if (!backward) continue;
      const A* gb = &dout[bh * Sq * D];
      for (int64_t i = 0; i < Sq; ++i) {
        const A* pr = &prob[i * Sk];
        A delta = 0;
        for (int64_t j = 0; j < Sk; ++j) {
          ds[j] = pr[j] == A(0) ? A(0) : rnd(dot(&gb[i * D], &vb[j * D]));  // dp
          delta += pr[j] * ds[j];
        }
        for (int64_t j = 0; j < Sk; ++j) ds[j] = rnd(pr[j] * (ds[j] - delta));
        std::fill(acc.begin(), acc.end(), A(0));
        for (int64_t j = 0; j < Sk; ++j) {
          for (int64_t d = 0; d < D; ++d) {
            acc[d] += ds[j] * kb[j * D + d];
            dk_acc[j * D + d] += ds[j] * qb[i * D + d];
            dv_acc[j * D + d] += pr[j] * gb[i * D + d];
          }
        }
        for (int64_t d = 0; d < D; ++d) r.dq[(bh * Sq + i) * D + d] = rnd(acc[d] * scale);
      }
    }
    if (backward)
      for (int64_t x = 0; x < Sk * D; ++x) {
        r.dk[bk * Sk * D + x] = rnd(dk_acc[x] * scale);
        r.dv[bk * Sk * D + x] = rnd(dv_acc[x]);
      }
  }
  return r;
}

}  // namespace

double round_to(double x, DType dtype) {
  switch (dtype) {
    case DType::bf16: return to_float(bf16_from_float(static_cast<float>(x)));
    case DType::f16: return to_float(f16_from_float(static_cast<float>(x)));
    case DType::f32: return static_cast<float>(x);
    default: return x;
  }
}

AttentionResult attention_reference(const AttentionProblem& p) {
  return naive<double>(p, [](double x) { return x; });
}

AttentionResult attention_reference_lowp(const AttentionProblem& p, DType dtype) {
  return naive<float>(p, [dtype](float x) { return static_cast<float>(round_to(x, dtype)); });
}

}  // namespace tessera::testing
