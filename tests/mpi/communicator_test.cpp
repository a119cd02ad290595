// Collectives on host (MPI) or device (NCCL, TESSERA_TEST_DEVICE=cuda) tensors, with inputs
// whose results are exactly predictable (nccl-tests' trick): rank r contributes (r+1)*(i+1), so
// sums are (i+1) * N(N+1)/2 in every dtype as long as they stay small integers.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "framework/dist/process_group.h"
#include "framework/ops/ops.h"
#include "tests/mpi/test_models.h"

namespace tessera::mpitest {
namespace {

using dist::ReduceOp;

dist::Communicator& comm() { return dist::ProcessGroup::get().communicator(test_device()); }

Tensor rank_values(int64_t n, DType dtype, int rank) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>((rank + 1) * (i + 1));
  return Tensor::from_vector(v, {n}, dtype, test_device());
}

TEST(CommunicatorTest, AllReduceSumIsExactInEveryDtype) {
  auto& c = comm();
  const int n_ranks = c.world_size();
  for (DType dtype : {DType::f64, DType::f32, DType::bf16, DType::f16, DType::i64, DType::i32}) {
    Tensor t = rank_values(20, dtype, c.rank());
    c.all_reduce(t, ReduceOp::sum, false, "exact sum").wait();
    const auto got = t.to_vector<double>();
    for (int64_t i = 0; i < 20; ++i)
      ASSERT_EQ(got[static_cast<size_t>(i)], static_cast<double>((i + 1) * n_ranks * (n_ranks + 1) / 2))
          << dtype_name(dtype) << " element " << i;
  }
}

TEST(CommunicatorTest, AllReduceMaxAndAverage) {
  auto& c = comm();
  const int n_ranks = c.world_size();
  Tensor m = rank_values(5, DType::f32, c.rank());
  c.all_reduce(m, ReduceOp::max, false, "max").wait();
  EXPECT_EQ(m.to_vector<double>(), rank_values(5, DType::f32, n_ranks - 1).to_vector<double>());

  Tensor a = rank_values(5, DType::f32, c.rank());
  c.all_reduce(a, ReduceOp::sum, true, "average").wait();
  const auto got = a.to_vector<double>();
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_DOUBLE_EQ(got[static_cast<size_t>(i)], (i + 1) * (n_ranks + 1) / 2.0);
}

TEST(CommunicatorTest, BroadcastDeliversTheRootsTensorFromEveryRoot) {
  auto& c = comm();
  for (int root = 0; root < c.world_size(); ++root) {
    Tensor t = rank_values(7, DType::f32, c.rank());
    c.broadcast(t, root, "broadcast").wait();
    EXPECT_EQ(t.to_vector<double>(), rank_values(7, DType::f32, root).to_vector<double>()) << "root " << root;
  }
}

TEST(CommunicatorTest, AllGatherPlacesEachRankAtItsOffset) {
  auto& c = comm();
  const int n = c.world_size();
  Tensor in = rank_values(3, DType::f32, c.rank());
  Tensor out = Tensor::zeros({3 * n}, DType::f32, test_device());
  c.all_gather(out, in, "gather").wait();
  // In place: the input is this rank's block of the output.
  Tensor out2 = Tensor::zeros({3 * n}, DType::f32, test_device());
  copy_into(out2.slice(0, 3 * c.rank(), 3 * c.rank() + 3), in);
  c.all_gather(out2, out2.slice(0, 3 * c.rank(), 3 * c.rank() + 3), "gather in place").wait();
  for (Tensor* t : {&out, &out2}) {
    const auto got = t->to_vector<double>();
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < 3; ++i) EXPECT_EQ(got[static_cast<size_t>(3 * r + i)], (r + 1) * (i + 1));
  }
}

TEST(CommunicatorTest, ReduceScatterGivesEachRankItsBlockOfTheSum) {
  auto& c = comm();
  const int n = c.world_size();
  Tensor in = rank_values(4 * n, DType::f32, c.rank());
  Tensor out = Tensor::zeros({4}, DType::f32, test_device());
  c.reduce_scatter(out, in, ReduceOp::sum, false, "scatter").wait();
  const auto got = out.to_vector<double>();
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(got[static_cast<size_t>(i)], (4 * c.rank() + i + 1) * n * (n + 1) / 2.0);
}

TEST(CommunicatorTest, BytesAreCountedPerDtypeAndObserved) {
  auto& c = comm();
  // Earlier tests leave collectives nobody waited on; they must not complete inside the window.
  ASSERT_TRUE(dist::ProcessGroup::get().wait_idle(60.0));
  const int64_t bf16_before = c.stats().bytes(dist::CollectiveKind::all_reduce, DType::bf16);
  const int64_t done_before = c.stats().completed(dist::CollectiveKind::all_reduce);
  int observed = 0;
  c.stats().set_observer([&](const dist::CollectiveRecord& r) {
    if (r.name == "counted") ++observed;
  });
  Tensor t = Tensor::ones({10}, DType::bf16, test_device());
  c.all_reduce(t, ReduceOp::sum, false, "counted").synchronize();
  c.stats().set_observer({});
  EXPECT_EQ(c.stats().bytes(dist::CollectiveKind::all_reduce, DType::bf16) - bf16_before, 20);
  EXPECT_EQ(c.stats().completed(dist::CollectiveKind::all_reduce) - done_before, 1);
  EXPECT_EQ(observed, 1);
}

TEST(CommunicatorTest, SequenceNumbersAgreeAcrossRanks) {
  auto& c = comm();
  dist::Work w = c.barrier("sequence check");
  w.wait();
  Tensor seq = Tensor::full({1}, static_cast<double>(w.sequence()), DType::i64);
  Tensor lo = seq.clone_data(), hi = seq.clone_data();
  lo.data<int64_t>()[0] = -lo.data<int64_t>()[0];
  auto& host = dist::ProcessGroup::get().host_communicator();
  host.all_reduce(lo, ReduceOp::max, false, "seq min").wait();
  host.all_reduce(hi, ReduceOp::max, false, "seq max").wait();
  EXPECT_EQ(-lo.data<int64_t>()[0], hi.data<int64_t>()[0]);
}

TEST(CommunicatorTest, WaitForGivesUpBeforeALateRankArrives) {
  auto& c = comm();
  if (c.world_size() == 1) GTEST_SKIP() << "needs two ranks";
  Tensor t = Tensor::ones({4}, DType::f32, test_device());
  if (c.rank() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(400));
  dist::Work w = c.all_reduce(t, ReduceOp::sum, false, "late");
  if (c.rank() == 0) {
    EXPECT_FALSE(w.wait_for(0.05)) << "finished before the late ranks entered";
  }
  EXPECT_TRUE(w.wait_for(30.0));
  EXPECT_EQ(t.to_vector<double>()[0], c.world_size());
}

TEST(CommunicatorTest, BroadcastParametersCopiesTheRootsModule) {
  auto& c = comm();
  auto mine = make_mlp(3, 5, 2, 100 + static_cast<uint64_t>(c.rank()));
  auto roots = make_mlp(3, 5, 2, 100);
  mine->to(test_device());
  roots->to(test_device());
  dist::broadcast_parameters(*mine, c, 0);
  EXPECT_EQ(flat_parameters(*mine), flat_parameters(*roots));
}

TEST(CommunicatorTest, ArgumentErrorsNameTheProblem) {
  auto& c = comm();
  Tensor strided = Tensor::zeros({4, 4}, DType::f32, test_device()).transpose(0, 1);
  EXPECT_THROW(c.all_reduce(strided), Error);
  Tensor ints = Tensor::zeros({4}, DType::i32, test_device());
  EXPECT_THROW(c.all_reduce(ints, ReduceOp::sum, true), Error);
  Tensor out = Tensor::zeros({3}, DType::f32, test_device());
  EXPECT_THROW(c.all_gather(out, Tensor::zeros({2}, DType::f32, test_device())), Error);
}

}  // namespace
}  // namespace tessera::mpitest
