// Behaviour of the index, shape and selection ops (framework/ops/index.h), max/argmax and
// dropout, with exact expected values (small integers, so every sum is exact in float).
// Gradients against finite differences live in the op table (tests/common/op_cases_index.cpp).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

// philox.h first: its unqualified log/sqrt must not see tessera::log/sqrt from the ops.
#include "kernels/philox.h"
#include "framework/ops/ops.h"

namespace tessera {
namespace {

using Values = std::vector<double>;

Tensor tensor(const Values& values, const Shape& shape, DType dtype = DType::f32) {
  return Tensor::from_vector(values, shape, dtype);
}

Tensor indices(const std::vector<int64_t>& values, const Shape& shape) { return Tensor::from_vector(values, shape); }

Values values(const Tensor& t) { return t.to_vector<double>(); }

// The message of the tessera::Error thrown by fn ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---- cat, stack, split ----

TEST(CatTest, JoinsRowsAlongDimOne) {
  const Tensor out = cat({tensor({1, 2}, {1, 2}), tensor({3}, {1, 1})}, 1);
  EXPECT_EQ(out.shape(), (Shape{1, 3}));
  EXPECT_EQ(values(out), (Values{1, 2, 3}));
}

TEST(CatTest, MiddleDimOfThreeTensorsIncludingANonContiguousOne) {
  const Tensor a = tensor({1, 2, 3, 4}, {2, 1, 2});
  const Tensor b = transpose(tensor({5, 6, 7, 8}, {2, 1, 2}), 0, 2);  // [2, 1, 2], strided
  const Tensor out = cat({a, b, a}, 1);
  EXPECT_EQ(out.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(values(out), (Values{1, 2, 5, 7, 1, 2, 3, 4, 6, 8, 3, 4}));
}

TEST(CatTest, IntegerTensorsAndNegativeDim) {
  const Tensor out = cat({indices({1, 2}, {2, 1}), indices({3, 4}, {2, 1})}, -1);
  EXPECT_EQ(out.dtype(), DType::i64);
  EXPECT_EQ(out.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2, 4}));
}

TEST(CatTest, GradientIsTheMatchingSliceOfTheOutputGradient) {
  Tensor a = tensor({1, 2}, {1, 2}).set_requires_grad(true);
  Tensor b = tensor({3}, {1, 1}).set_requires_grad(true);
  sum(mul(cat({a, b}, 1), tensor({10, 20, 30}, {1, 3}))).backward();
  EXPECT_EQ(values(a.grad()), (Values{10, 20}));
  EXPECT_EQ(values(b.grad()), (Values{30}));
}

TEST(CatTest, MismatchedShapesNameBothShapes) {
  const std::string message = error_of([] { cat({Tensor::zeros({2, 3}), Tensor::zeros({3, 3})}, 1); });
  EXPECT_NE(message.find("cat: tensor 1 has shape [3, 3] but tensor 0 has shape [2, 3]"), std::string::npos)
      << message;
}

TEST(StackTest, NewDimensionAtFrontOrBack) {
  const Tensor a = tensor({1, 2}, {2}), b = tensor({3, 4}, {2});
  EXPECT_EQ(stack({a, b}, 0).shape(), (Shape{2, 2}));
  EXPECT_EQ(values(stack({a, b}, 0)), (Values{1, 2, 3, 4}));
  EXPECT_EQ(values(stack({a, b}, -1)), (Values{1, 3, 2, 4}));
}

TEST(SplitTest, ChunksOfAFixedSizeWithASmallerLastPieceAreViews) {
  const Tensor x = tensor({0, 1, 2, 3, 4, 5, 6}, {7});
  const auto pieces = split(x, 3, 0);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(values(pieces[0]), (Values{0, 1, 2}));
  EXPECT_EQ(values(pieces[1]), (Values{3, 4, 5}));
  EXPECT_EQ(values(pieces[2]), (Values{6}));
  EXPECT_EQ(pieces[1].storage(), x.storage());
}

TEST(SplitTest, GivenSizesAlongAnInnerDim) {
  const Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  const auto pieces = split(x, std::vector<int64_t>{1, 2}, 1);
  EXPECT_EQ(pieces[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(values(pieces[0]), (Values{1, 4}));
  EXPECT_EQ(values(pieces[1]), (Values{2, 3, 5, 6}));
  EXPECT_NE(error_of([&] { split(x, std::vector<int64_t>{1, 1}, 1); }).find("sizes add up to 2"), std::string::npos);
}

TEST(SplitTest, UnusedPiecesGetZeroGradient) {
  Tensor x = tensor({1, 2, 3, 4}, {4}).set_requires_grad(true);
  const auto pieces = split(x, 2, 0);
  sum(mul(pieces[1], pieces[1])).backward();
  EXPECT_EQ(values(x.grad()), (Values{0, 0, 6, 8}));
}

// ---- index_select, index_add ----

TEST(IndexSelectTest, PicksRowsAndColumnsWithI64AndI32Indices) {
  const Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  EXPECT_EQ(values(index_select(x, 0, indices({2, 0}, {2}))), (Values{7, 8, 9, 1, 2, 3}));
  const Tensor cols = Tensor::from_vector(Values{1, 1}, {2}, DType::i32);
  EXPECT_EQ(values(index_select(x, 1, cols)), (Values{2, 2, 5, 5, 8, 8}));
}

TEST(IndexSelectTest, BackwardAddsRepeatedIndices) {
  Tensor x = tensor({1, 2, 3, 4, 5, 6}, {3, 2}).set_requires_grad(true);
  sum(index_select(x, 0, indices({0, 2, 0}, {3}))).backward();
  EXPECT_EQ(values(x.grad()), (Values{2, 2, 0, 0, 1, 1}));
}

TEST(IndexSelectTest, OutOfRangeIndexNamesOpIndexAndPosition) {
  const Tensor x = Tensor::zeros({3, 2});
  const std::string message = error_of([&] { index_select(x, 0, indices({1, 3}, {2})); });
  EXPECT_NE(message.find("index_select: index 3 at position [1]"), std::string::npos) << message;
  EXPECT_NE(message.find("dimension 0 of size 3"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { index_select(x, 1, indices({-1}, {1})); }).find("index -1"), std::string::npos);
}

TEST(IndexAddTest, AddsSourceRowsIntoACopyOfBase) {
  const Tensor base = Tensor::ones({3, 2});
  const Tensor source = tensor({1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor out = index_add(base, 0, indices({0, 2, 0}, {3}), source);
  EXPECT_EQ(values(out), (Values{7, 9, 1, 1, 4, 5}));
  EXPECT_EQ(values(base), (Values{1, 1, 1, 1, 1, 1}));  // out of place
}

TEST(IndexAddTest, GradientIsIdentityForBaseAndIndexSelectForSource) {
  Tensor base = Tensor::zeros({3, 2}).set_requires_grad(true);
  Tensor source = Tensor::zeros({2, 2}).set_requires_grad(true);
  const Tensor g = tensor({1, 2, 3, 4, 5, 6}, {3, 2});
  sum(mul(index_add(base, 0, indices({2, 1}, {2}), source), g)).backward();
  EXPECT_EQ(values(base.grad()), (Values{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(values(source.grad()), (Values{5, 6, 3, 4}));
}

TEST(IndexAddTest, ResultDoesNotDependOnThreadCount) {
  const int64_t rows = 50000, n = 200000;
  Generator gen(7);
  const Tensor index = randint({n}, 0, rows, DType::i64, Device::cpu(), &gen);
  const Tensor source = randn({n, 1}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor base = Tensor::zeros({rows, 1});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = index_add(base, 0, index, source).to_vector<float>();
  omp_set_num_threads(4);
  const auto four = index_add(base, 0, index, source).to_vector<float>();
  omp_set_num_threads(threads);
  EXPECT_EQ(one, four);
}

// ---- gather, scatter_add ----

TEST(GatherTest, TorchDocumentationExample) {
  const Tensor t = tensor({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(values(gather(t, 1, indices({0, 0, 1, 0}, {2, 2}))), (Values{1, 1, 4, 3}));
}

TEST(GatherTest, IndexSmallerThanInputAlongOtherDims) {
  const Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor out = gather(x, 0, indices({1, 0}, {1, 2}));
  EXPECT_EQ(out.shape(), (Shape{1, 2}));
  EXPECT_EQ(values(out), (Values{4, 2}));
}

TEST(GatherTest, BackwardScatterAddsIntoZeros) {
  Tensor x = tensor({1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  sum(gather(x, 1, indices({0, 0, 1, 0}, {2, 2}))).backward();
  EXPECT_EQ(values(x.grad()), (Values{2, 0, 1, 1}));
}

TEST(GatherTest, OutOfRangeIndexNamesOpAndCoordinates) {
  const std::string message =
      error_of([] { gather(Tensor::zeros({2, 2}), 1, indices({0, 0, 2, 0}, {2, 2})); });
  EXPECT_NE(message.find("gather: index 2 at position [1, 0]"), std::string::npos) << message;
}

TEST(ScatterAddTest, TorchDocumentationExample) {
  const Tensor out = scatter_add(Tensor::zeros({3, 5}), 0, indices({0, 1, 2, 0, 0}, {1, 5}), Tensor::ones({1, 5}));
  EXPECT_EQ(values(out), (Values{1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0}));
}

TEST(ScatterAddTest, RepeatedDestinationsSumIntoBase) {
  const Tensor base = tensor({10, 20}, {2});
  const Tensor out = scatter_add(base, 0, indices({1, 1, 0, 1}, {4}), tensor({1, 2, 3, 4}, {4}));
  EXPECT_EQ(values(out), (Values{13, 27}));
}

// ---- embedding ----

TEST(EmbeddingTest, LooksUpRowsForAnyIndexShape) {
  const Tensor weight = tensor({0, 1, 10, 11, 20, 21}, {3, 2});
  const Tensor out = embedding(weight, indices({2, 0, 1, 2}, {2, 2}));
  EXPECT_EQ(out.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(values(out), (Values{20, 21, 0, 1, 10, 11, 20, 21}));
}

TEST(EmbeddingTest, BackwardAccumulatesRepeatedIndices) {
  Tensor weight = Tensor::zeros({4, 2}).set_requires_grad(true);
  const Tensor g = tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  sum(mul(embedding(weight, indices({1, 3, 1, 1}, {2, 2})), g)).backward();
  // row 1 gets positions 0, 2, 3; row 3 gets position 1; rows 0 and 2 get nothing.
  EXPECT_EQ(values(weight.grad()), (Values{0, 0, 1 + 5 + 7, 2 + 6 + 8, 0, 0, 3, 4}));
}

TEST(EmbeddingTest, I32IndicesGiveTheSameRows) {
  const Tensor weight = tensor({0, 1, 10, 11, 20, 21}, {3, 2});
  const Tensor idx = Tensor::from_vector(Values{1, 2}, {2}, DType::i32);
  EXPECT_EQ(values(embedding(weight, idx)), (Values{10, 11, 20, 21}));
}

TEST(EmbeddingTest, OutOfRangeIndexIsAClearError) {
  const Tensor weight = Tensor::zeros({10, 4});
  const std::string message = error_of([&] { embedding(weight, indices({1, 2, 3, 17}, {2, 2})); });
  EXPECT_NE(message.find("embedding: index 17 at position [1, 1]"), std::string::npos) << message;
  EXPECT_NE(message.find("10 rows"), std::string::npos) << message;
}

// ---- eq, where ----

TEST(IndexEqTest, BroadcastsIntegersAndReturnsFloatZeroOne) {
  const Tensor out = eq(indices({1, 2, 3, 1, 2, 3}, {2, 3}), indices({1, 0, 3}, {3}));
  EXPECT_EQ(out.dtype(), DType::f32);
  EXPECT_EQ(values(out), (Values{1, 0, 1, 1, 0, 1}));
}

TEST(IndexEqTest, MixedDtypesCompareValuesAndNanIsNeverEqual) {
  EXPECT_EQ(values(eq(tensor({1, 2.5, NAN}, {3}), indices({1, 2, 0}, {3}))), (Values{1, 0, 0}));
  EXPECT_EQ(values(eq(tensor({NAN}, {1}), tensor({NAN}, {1}))), (Values{0}));
}

TEST(WhereTest, PicksFirstValueWhereConditionIsNonZero) {
  const Tensor condition = tensor({1, 0, -2, 0}, {2, 2});
  const Tensor out = where(condition, tensor({1, 2, 3, 4}, {2, 2}), tensor({-1}, {1}));
  EXPECT_EQ(values(out), (Values{1, -1, 3, -1}));
}

TEST(WhereTest, GradientFollowsTheChosenValue) {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  Tensor b = tensor({5, 6}, {2}).set_requires_grad(true);
  sum(where(indices({1, 0, 0, 0}, {2, 2}), a, b)).backward();
  EXPECT_EQ(values(a.grad()), (Values{1, 0, 0, 0}));
  EXPECT_EQ(values(b.grad()), (Values{1, 2}));  // broadcast over two rows
}

// ---- max, argmax ----

TEST(MaxTest, ValuesAlongDimAndGradientToFirstMaximum) {
  Tensor x = tensor({1, 3, 3, 2, 2, 0}, {2, 3}).set_requires_grad(true);
  const Tensor m = max(x, 1);
  EXPECT_EQ(m.shape(), (Shape{2}));
  EXPECT_EQ(values(m), (Values{3, 2}));
  sum(mul(m, tensor({10, 20}, {2}))).backward();
  EXPECT_EQ(values(x.grad()), (Values{0, 10, 0, 20, 0, 0}));
  EXPECT_EQ(max(x, 0, true).shape(), (Shape{1, 3}));
}

TEST(MaxTest, OverAllOfALargeTensorWithTiesPicksTheFirst) {
  const int64_t n = 3 * 4096 + 100;  // chunks and a tail
  Values v(n, 0.0);
  v[5000] = 7.0;
  v[9000] = 7.0;
  v[n - 1] = 7.0;
  Tensor x = tensor(v, {n}).set_requires_grad(true);
  const Tensor m = max(x);
  EXPECT_EQ(m.shape(), Shape{});
  EXPECT_EQ(m.item(), 7.0);
  m.backward();
  const Values g = values(x.grad());
  EXPECT_EQ(g[5000], 1.0);
  EXPECT_EQ(std::count(g.begin(), g.end(), 1.0), 1);
}

TEST(MaxTest, MaximumInTheTailIsFound) {
  Values v(4096 * 2 + 3, -1.0);
  v[4096 * 2 + 1] = 2.0;
  EXPECT_EQ(max(tensor(v, {static_cast<int64_t>(v.size())})).item(), 2.0);
}

TEST(ArgmaxTest, FirstMaximalPositionAsI64) {
  const Tensor x = tensor({1, 3, 3, 2, 2, 0}, {2, 3});
  const Tensor a = argmax(x, 1);
  EXPECT_EQ(a.dtype(), DType::i64);
  EXPECT_EQ(a.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(argmax(x, 0, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(argmax(x, 0, true).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));
}

// ---- dropout ----

TEST(DropoutTest, KeepsAboutOneMinusPAndScalesKeptValues) {
  const int64_t n = 100000;
  const double p = 0.3;
  Generator gen(42);
  const Tensor x = rand({n}, 1.0, 2.0, DType::f32, Device::cpu(), &gen);
  const Tensor y = dropout(x, p, /*training=*/true, &gen);
  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (yv[i] == 0.0f) continue;
    ++kept;
    ASSERT_EQ(yv[i], xv[i] * scale) << "element " << i;
  }
  // Binomial(n, 0.7): standard deviation sqrt(n p (1-p)) ~ 145; allow 5 of them.
  EXPECT_NEAR(static_cast<double>(kept), n * (1 - p), 5 * std::sqrt(n * p * (1 - p)));
}

TEST(DropoutTest, IdentityInEvalModeAndForZeroProbability) {
  const Tensor x = tensor({1, 2, 3}, {3});
  EXPECT_TRUE(dropout(x, 0.5, /*training=*/false).same(x));
  EXPECT_TRUE(dropout(x, 0.0, /*training=*/true).same(x));
}

TEST(DropoutTest, SameGeneratorStateGivesTheSameMask) {
  const Tensor x = Tensor::ones({1000});
  Generator a(9), b(9);
  const auto first = dropout(x, 0.5, true, &a).to_vector<float>();
  EXPECT_EQ(first, dropout(x, 0.5, true, &b).to_vector<float>());
  EXPECT_EQ(a.offset(), 250u);  // take(1000): 1000 / 4 Philox blocks
  EXPECT_NE(first, dropout(x, 0.5, true, &a).to_vector<float>());  // the next draw differs
}

TEST(DropoutTest, MaskMatchesPhiloxUniformsBelowOneMinusP) {
  const Tensor x = Tensor::ones({64});
  Generator gen(5);
  gen.set_state(5, 17);
  const auto y = dropout(x, 0.25, true, &gen).to_vector<float>();
  for (int64_t i = 0; i < 64; ++i)
    EXPECT_EQ(y[i] != 0.0f, kernels::random_uniform_at(5, 17, i) < 0.75f) << "element " << i;
}

TEST(DropoutTest, GradientUsesTheForwardMask) {
  Tensor x = Tensor::ones({200}).set_requires_grad(true);
  Generator gen(3);
  const Tensor y = dropout(x, 0.4, true, &gen);
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), y.to_vector<float>());  // x = 1: grad = mask * scale = y
}

TEST(DropoutTest, ProbabilityOutsideRangeIsAnError) {
  EXPECT_NE(error_of([] { dropout(Tensor::ones({2}), 1.0, true); }).find("dropout: probability p = 1"),
            std::string::npos);
  EXPECT_NE(error_of([] { dropout(Tensor::ones({2}), -0.1, false); }).find("[0, 1)"), std::string::npos);
}

}  // namespace
}  // namespace tessera
