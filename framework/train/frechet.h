// The Fréchet distance between two Gaussians fitted to feature sets: the "FID" of generated
// images when the features come from a classifier's penultimate layer.
//
// defines: tessera::train::FeatureStats, feature_stats, frechet_distance, symmetric_eigenvalues
//
//   d^2 = |mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))
//
// Tr (C1 C2)^(1/2) is computed as the sum of the square roots of the eigenvalues of the
// symmetric positive semi-definite matrix S C2 S with S = C1^(1/2) (same eigenvalues as C1 C2),
// every eigendecomposition by cyclic Jacobi rotations in float64 (features are at most a few
// hundred wide, so O(d^3) per sweep is cheap and needs no LAPACK). Covariances are unbiased
// (divided by n - 1), as in the reference FID implementations.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/tensor.h"

namespace tessera::train {

struct FeatureStats {
  int64_t count = 0;
  std::vector<double> mean;        // d
  std::vector<double> covariance;  // d x d, row-major
};

// features: [n, d], any float dtype and device; n >= 2.
FeatureStats feature_stats(const Tensor& features);

double frechet_distance(const FeatureStats& a, const FeatureStats& b);

// Eigenvalues (ascending) of a symmetric d x d matrix; `vectors`, when given, receives the
// eigenvectors as columns of a row-major d x d matrix.
std::vector<double> symmetric_eigenvalues(std::vector<double> matrix, int64_t d, std::vector<double>* vectors = nullptr);

}  // namespace tessera::train
