// Fréchet distance of feature statistics (frechet.h).
#include "framework/train/frechet.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/core/error.h"

namespace tessera::train {

FeatureStats feature_stats(const Tensor& features) {
  TESSERA_CHECK(features.dim() == 2, "feature_stats: expected features [n, d], got ", shape_str(features.shape()));
  const int64_t n = features.size(0), d = features.size(1);
  TESSERA_CHECK(n >= 2 && d >= 1, "feature_stats: need at least 2 feature vectors, got ", n);
  const std::vector<double> x = features.to(Device::cpu()).contiguous().to_vector<double>();
  FeatureStats s;
  s.count = n;
  s.mean.assign(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) s.mean[j] += x[i * d + j];
  for (double& m : s.mean) m /= static_cast<double>(n);
  s.covariance.assign(static_cast<size_t>(d * d), 0.0);
  std::vector<double> centred(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) centred[j] = x[i * d + j] - s.mean[j];
    for (int64_t j = 0; j < d; ++j) {
      const double cj = centred[j];
      double* row = &s.covariance[j * d];
      for (int64_t k = j; k < d; ++k) row[k] += cj * centred[k];
    }
  }
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = j; k < d; ++k) {
      const double v = s.covariance[j * d + k] / static_cast<double>(n - 1);
      s.covariance[j * d + k] = v;
      s.covariance[k * d + j] = v;
    }
  return s;
}

std::vector<double> symmetric_eigenvalues(std::vector<double> a, int64_t d, std::vector<double>* vectors) {
  TESSERA_CHECK(static_cast<int64_t>(a.size()) == d * d, "symmetric_eigenvalues: matrix is not ", d, " x ", d);
  std::vector<double> v(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) v[i * d + i] = 1.0;
  const auto off_norm = [&] {
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = i + 1; j < d; ++j) s += a[i * d + j] * a[i * d + j];
    return s;
  };
  double total = 0.0;
  for (double x : a) total += x * x;
  for (int sweep = 0; sweep < 100 && off_norm() > 1e-30 * std::max(total, 1e-300); ++sweep) {
    for (int64_t p = 0; p < d; ++p)
      for (int64_t q = p + 1; q < d; ++q) {
        const double apq = a[p * d + q];
        if (std::fabs(apq) < 1e-300) continue;
        // Rotation that zeroes a[p][q] (Golub & Van Loan, symmetric Schur decomposition).
        const double tau = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::fabs(tau) + std::sqrt(1.0 + tau * tau));
        const double c = 1.0 / std::sqrt(1.0 + t * t), s = t * c;
        for (int64_t k = 0; k < d; ++k) {  // A <- A J (columns p, q)
          const double akp = a[k * d + p], akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < d; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[p * d + k], aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < d; ++k) {  // V <- V J
          const double vkp = v[k * d + p], vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int64_t> order(static_cast<size_t>(d));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i * d + i] < a[j * d + j]; });
  std::vector<double> values(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) values[i] = a[order[i] * d + order[i]];
  if (vectors) {
    vectors->assign(static_cast<size_t>(d * d), 0.0);
    for (int64_t k = 0; k < d; ++k)
      for (int64_t i = 0; i < d; ++i) (*vectors)[k * d + i] = v[k * d + order[i]];
  }
  return values;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  const auto d = static_cast<int64_t>(a.mean.size());
  TESSERA_CHECK(d > 0 && static_cast<int64_t>(b.mean.size()) == d, "frechet_distance: feature widths differ (", d,
                " vs ", b.mean.size(), ")");
  double mean_term = 0.0, trace = 0.0;
  for (int64_t i = 0; i < d; ++i) {
    mean_term += (a.mean[i] - b.mean[i]) * (a.mean[i] - b.mean[i]);
    trace += a.covariance[i * d + i] + b.covariance[i * d + i];
  }
  // S = C1^(1/2) = V diag(sqrt(max(l, 0))) V^T.
  std::vector<double> v;
  const std::vector<double> l = symmetric_eigenvalues(a.covariance, d, &v);
  std::vector<double> s(static_cast<size_t>(d * d), 0.0);
  for (int64_t k = 0; k < d; ++k) {
    const double root = std::sqrt(std::max(l[k], 0.0));
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) s[i * d + j] += v[i * d + k] * root * v[j * d + k];
  }
  // M = S C2 S, symmetrised against rounding.
  std::vector<double> t(static_cast<size_t>(d * d), 0.0), m(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t k = 0; k < d; ++k)
      for (int64_t j = 0; j < d; ++j) t[i * d + j] += s[i * d + k] * b.covariance[k * d + j];
  for (int64_t i = 0; i < d; ++i)
    for (int64_t k = 0; k < d; ++k)
      for (int64_t j = 0; j < d; ++j) m[i * d + j] += t[i * d + k] * s[k * d + j];
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i + 1; j < d; ++j) m[i * d + j] = m[j * d + i] = 0.5 * (m[i * d + j] + m[j * d + i]);
  double root_trace = 0.0;
  for (double e : symmetric_eigenvalues(std::move(m), d)) root_trace += std::sqrt(std::max(e, 0.0));
  return std::max(0.0, mean_term + trace - 2.0 * root_trace);
}

}  // namespace tessera::train
