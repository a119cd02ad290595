// The operator test table: one entry per differentiable op, shared by the CPU gradcheck tests
// (tests/unit/ops/gradcheck_test.cpp) and the CPU-vs-CUDA tests (tests/gpu/ops_cuda_test.cpp).
//
// defines: OpTestCase, op_test_table, TESSERA_OP_TEST, gradcheck, gradgradcheck, random_input
//
// To add an operator, add one entry in an op_cases_*.cpp file:
//
//   TESSERA_OP_TEST(tanh) {
//     .inputs = [](const InputMaker& in) { return std::vector<Tensor>{in.uniform({3, 4})}; },
//     .forward = [](const std::vector<Tensor>& x) { return tanh(x[0]); },
//     .second_order = true,
//   };
//
// `inputs` draws fresh inputs in the dtype and on the device the test asks for (indices stay
// integer); the same seed gives the same values on CPU and CUDA. Floating inputs take part in
// the gradient checks; integer inputs do not.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "framework/core/rng.h"
#include "framework/core/tensor.h"

namespace tessera::testing {

struct InputMaker {
  DType dtype;
  Device device;
  Generator* gen;
  Tensor uniform(const Shape& shape, double low = -1.0, double high = 1.0) const;
  Tensor normal(const Shape& shape, double std = 1.0) const;
  Tensor positive(const Shape& shape) const { return uniform(shape, 0.5, 2.0); }
  Tensor indices(const Shape& shape, int64_t high) const;  // i64 in [0, high)
};

struct OpTestCase {
  std::string name;
  std::function<std::vector<Tensor>(const InputMaker&)> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> forward;
  bool second_order = false;  // also run gradgradcheck (ops that WGAN-GP differentiates twice)
  bool gradcheck = true;      // false for ops without a gradient (comparisons, argmax)
  double bf16_tolerance = 2e-2;  // CPU-vs-CUDA relative tolerance in bf16
};

std::vector<OpTestCase>& op_test_table();

struct OpTestName {
  const char* name;
};
struct OpTestRegistrar {};
// Registers the case under the name (used by TESSERA_OP_TEST).
OpTestRegistrar operator+(OpTestName name, OpTestCase c);

// Checks autograd against float64 central differences of sum(f(x) * v) for random v.
// Returns an empty string on success, otherwise a description of the worst mismatch.
std::string gradcheck(const OpTestCase& c, uint64_t seed);
// Same for the gradient of sum(grad(f) * w): checks second derivatives (create_graph).
std::string gradgradcheck(const OpTestCase& c, uint64_t seed);
// The first derivatives computed with create_graph (the differentiable backward path that
// gradgradcheck differentiates) equal those computed without it (the fused path): otherwise a
// wrong composite formula could pass gradgradcheck, which differentiates it on both sides.
std::string create_graph_matches_plain_backward(const OpTestCase& c, uint64_t seed);

// max |a - b| / (max |b| + tiny) over all elements.
double relative_error(const Tensor& a, const Tensor& b);

}  // namespace tessera::testing

#define TESSERA_OP_TEST_CAT2(a, b) a##b
#define TESSERA_OP_TEST_CAT(a, b) TESSERA_OP_TEST_CAT2(a, b)
#define TESSERA_OP_TEST(name)                                                                   \
  [[maybe_unused]] static ::tessera::testing::OpTestRegistrar TESSERA_OP_TEST_CAT(op_test_, __LINE__) = \
      ::tessera::testing::OpTestName{#name} + ::tessera::testing::OpTestCase
