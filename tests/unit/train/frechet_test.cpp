// Fréchet distance: closed forms for diagonal covariances, invariance under a common rotation,
// zero for identical sets, and the eigen solver against known spectra.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "framework/ops/ops.h"
#include "framework/train/frechet.h"

namespace tessera::train {
namespace {

FeatureStats diagonal(const std::vector<double>& mean, const std::vector<double>& variances) {
  FeatureStats s;
  s.count = 100;
  s.mean = mean;
  const auto d = static_cast<int64_t>(mean.size());
  s.covariance.assign(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) s.covariance[i * d + i] = variances[i];
  return s;
}

// Q^T C Q and Q^T mu for a random orthogonal Q (Gram-Schmidt of a random matrix).
FeatureStats rotated(const FeatureStats& s, const std::vector<double>& q, int64_t d) {
  FeatureStats r = s;
  for (int64_t i = 0; i < d; ++i) {
    r.mean[i] = 0;
    for (int64_t k = 0; k < d; ++k) r.mean[i] += q[k * d + i] * s.mean[k];
  }
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) {
      double v = 0;
      for (int64_t k = 0; k < d; ++k)
        for (int64_t l = 0; l < d; ++l) v += q[k * d + i] * s.covariance[k * d + l] * q[l * d + j];
      r.covariance[i * d + j] = v;
    }
  return r;
}

std::vector<double> random_orthogonal(int64_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> q(static_cast<size_t>(d * d));
  for (double& x : q) x = normal(rng);
  for (int64_t c = 0; c < d; ++c) {  // columns orthonormalised in order
    for (int64_t p = 0; p < c; ++p) {
      double dot = 0;
      for (int64_t k = 0; k < d; ++k) dot += q[k * d + c] * q[k * d + p];
      for (int64_t k = 0; k < d; ++k) q[k * d + c] -= dot * q[k * d + p];
    }
    double norm = 0;
    for (int64_t k = 0; k < d; ++k) norm += q[k * d + c] * q[k * d + c];
    for (int64_t k = 0; k < d; ++k) q[k * d + c] /= std::sqrt(norm);
  }
  return q;
}

TEST(FrechetTest, DiagonalCovariancesGiveTheClosedForm) {
  const FeatureStats a = diagonal({0, 1, 2}, {1, 4, 9}), b = diagonal({1, 1, 0}, {4, 1, 0.25});
  // |mu diff|^2 = 1 + 0 + 4; sum (sqrt(a) - sqrt(b))^2 = 1 + 1 + 6.25.
  EXPECT_NEAR(frechet_distance(a, b), 5.0 + 8.25, 1e-9);
}

TEST(FrechetTest, IsInvariantUnderACommonRotation) {
  const int64_t d = 6;
  const FeatureStats a = diagonal({0, 1, 2, 3, 4, 5}, {1, 2, 3, 4, 5, 6});
  const FeatureStats b = diagonal({1, 0, 2, 1, 0, 5}, {3, 1, 0.5, 2, 8, 0.1});
  const auto q = random_orthogonal(d, 7);
  const double plain = frechet_distance(a, b);
  const double turned = frechet_distance(rotated(a, q, d), rotated(b, q, d));
  EXPECT_NEAR(turned, plain, 1e-8 * plain);
  // Full (non-diagonal) covariances on both sides, and a different rotation of both.
  const auto q2 = random_orthogonal(d, 8);
  const FeatureStats ra = rotated(a, q, d), rb = rotated(b, q2, d);
  EXPECT_NEAR(frechet_distance(rotated(ra, q2, d), rotated(rb, q2, d)), frechet_distance(ra, rb),
              1e-8 * frechet_distance(ra, rb));
}

TEST(FrechetTest, FeatureStatsOfIdenticalSetsAreAtDistanceZero) {
  std::vector<double> values;
  std::mt19937 rng(3);
  std::normal_distribution<double> normal;
  for (int i = 0; i < 500 * 4; ++i) values.push_back(normal(rng));
  const Tensor x = Tensor::from_vector(values, {500, 4}, DType::f64);
  const FeatureStats s = feature_stats(x);
  EXPECT_NEAR(frechet_distance(s, s), 0.0, 1e-9);
  EXPECT_NEAR(s.covariance[0], 1.0, 0.15);  // roughly the unit covariance it was drawn from
  EXPECT_GT(frechet_distance(s, feature_stats(x * 2.0)), 1.0);
}

TEST(FrechetTest, EigenvaluesOfAKnownSpectrum) {
  const int64_t d = 5;
  const auto q = random_orthogonal(d, 11);
  const std::vector<double> want = {-2, 0, 0.5, 3, 10};
  std::vector<double> m(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j)
      for (int64_t k = 0; k < d; ++k) m[i * d + j] += q[i * d + k] * want[k] * q[j * d + k];
  std::vector<double> vectors;
  const auto got = symmetric_eigenvalues(m, d, &vectors);
  for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(got[i], want[i], 1e-10);
  // M v = lambda v for every returned column.
  for (int64_t c = 0; c < d; ++c)
    for (int64_t i = 0; i < d; ++i) {
      double mv = 0;
      for (int64_t k = 0; k < d; ++k) mv += m[i * d + k] * vectors[k * d + c];
      EXPECT_NEAR(mv, got[c] * vectors[i * d + c], 1e-9);
    }
}

TEST(FrechetTest, MismatchedWidthsAreAnError) {
  EXPECT_THROW(frechet_distance(diagonal({0, 1}, {1, 1}), diagonal({0}, {1})), Error);
  EXPECT_THROW(feature_stats(Tensor::zeros({1, 3}, DType::f32)), Error);
}

}  // namespace
}  // namespace tessera::train
