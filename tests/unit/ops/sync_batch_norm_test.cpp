// sync_batch_norm with replicas simulated in one process, against batch_norm: a replica sum
// that returns its argument is one replica (the op must then be batch_norm in training mode);
// one that doubles its argument is two replicas holding the same batch, which must give what
// batch_norm gives on the batch concatenated with itself. Real ranks: tests/mpi/
// sync_batch_norm_test.cpp; gradcheck: the op table (op_cases_conv.cpp).
#include <gtest/gtest.h>

#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera {
namespace {

using testing::relative_error;

Tensor draw(const Shape& shape, uint64_t seed, DType dtype, double mean = 0.0, double stdev = 1.0) {
  Generator gen(seed);
  Tensor t = randn(shape, mean, stdev, DType::f64, Device::cpu(), &gen).to(dtype);
  t.set_requires_grad(true);
  return t;
}

struct Outcome {
  Tensor y, dx, dweight, dbias, running_mean, running_var, tracked;
};

// Normalises x with fresh buffers (running_mean 0, running_var 1, f32), then backpropagates
// sum(y * upstream). `replica_sum` empty: batch_norm(training = true).
Outcome normalise(const Tensor& x_value, const Tensor& w_value, const Tensor& b_value, const Tensor& upstream,
                  const ReplicaSum& replica_sum) {
  const Tensor x = x_value.detach().clone_data(), w = w_value.detach().clone_data(), b = b_value.detach().clone_data();
  for (Tensor t : {x, w, b}) t.set_requires_grad(true);
  const int64_t channels = x.size(1);
  Outcome o{.running_mean = Tensor::zeros({channels}), .running_var = Tensor::ones({channels}),
            .tracked = Tensor::zeros({}, DType::i64)};
  o.y = replica_sum ? sync_batch_norm(x, w, b, o.running_mean, o.running_var, 0.1, 1e-5, o.tracked, replica_sum)
                    : batch_norm(x, w, b, o.running_mean, o.running_var, true, 0.1, 1e-5, o.tracked);
  sum(o.y * upstream).backward();
  o.dx = x.grad();
  o.dweight = w.grad();
  o.dbias = b.grad();
  return o;
}

TEST(SyncBatchNormTest, OneReplicaIsBatchNormInTrainingMode) {
  for (const DType dtype : {DType::f64, DType::f32}) {
    const double tolerance = dtype == DType::f64 ? 1e-12 : 2e-6;
    const Tensor x = draw({4, 3, 2, 3}, 1, dtype, 0.5, 2.0), w = draw({3}, 2, dtype, 1.0, 0.5), b = draw({3}, 3, dtype);
    const Tensor upstream = draw(x.shape(), 4, dtype).detach();
    int calls = 0;
    const Outcome mine = normalise(x, w, b, upstream, [&calls](const Tensor& t) {
      ++calls;
      return t;
    });
    const Outcome reference = normalise(x, w, b, upstream, ReplicaSum());
    EXPECT_EQ(calls, 1) << "one collective per call";
    EXPECT_EQ(mine.y.dtype(), dtype);
    EXPECT_LE(relative_error(mine.y, reference.y), tolerance);
    EXPECT_LE(relative_error(mine.dx, reference.dx), tolerance);
    EXPECT_LE(relative_error(mine.dweight, reference.dweight), tolerance);
    EXPECT_LE(relative_error(mine.dbias, reference.dbias), tolerance);
    EXPECT_LE(relative_error(mine.running_mean, reference.running_mean), 1e-6);
    EXPECT_LE(relative_error(mine.running_var, reference.running_var), 1e-6);
    EXPECT_EQ(mine.tracked.to_vector<int64_t>()[0], 1);
  }
}

TEST(SyncBatchNormTest, TwoReplicasWithOneBatchAreBatchNormOfTheBatchTwice) {
  const Tensor x = draw({3, 2, 4}, 5, DType::f64, -1.0, 3.0);
  const Tensor w = draw({2}, 6, DType::f64), b = draw({2}, 7, DType::f64);
  const Tensor upstream = draw(x.shape(), 8, DType::f64).detach();
  const Outcome mine = normalise(x, w, b, upstream, [](const Tensor& t) { return t * 2.0; });
  const Outcome both = normalise(cat({x, x}, 0), w, b, cat({upstream, upstream}, 0), ReplicaSum());
  EXPECT_LE(relative_error(mine.y, both.y.slice(0, 0, 3)), 1e-12);
  EXPECT_LE(relative_error(mine.dx, both.dx.slice(0, 0, 3)), 1e-12);
  // Each replica holds half of the parameter gradient.
  EXPECT_LE(relative_error(mine.dweight * 2.0, both.dweight), 1e-12);
  EXPECT_LE(relative_error(mine.dbias * 2.0, both.dbias), 1e-12);
  // The unbiased variance divides by the global count minus one (23), not the local (11).
  EXPECT_LE(relative_error(mine.running_mean, both.running_mean), 1e-6);
  EXPECT_LE(relative_error(mine.running_var, both.running_var), 1e-6);
}

TEST(SyncBatchNormTest, AReplicaSumThatChangesTheShapeOrNoneIsAnError) {
  const Tensor x = draw({4, 3}, 9, DType::f32);
  EXPECT_THROW(sync_batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, Tensor(),
                               [](const Tensor& t) { return t.slice(0, 0, 2); }),
               Error);
  EXPECT_THROW(sync_batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, Tensor(), ReplicaSum()), Error);
}

}  // namespace
}  // namespace tessera
