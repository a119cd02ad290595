// Packing tensors into flat buffers with dtype conversion and scaling (kernels/dist.h, CPU);
// tests/gpu/dist_cuda_test.cpp compares the CUDA kernels with these.
#include <gtest/gtest.h>

#include "framework/dist/flat.h"

namespace tessera::dist {
namespace {

TEST(FlatTest, PackConvertsScalesAndZerosMissingTensors) {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::f32);
  Tensor b = Tensor::from_vector(std::vector<double>{-4, 8}, {2}, DType::f32);
  Tensor flat = Tensor::full({8}, 99.0, DType::bf16);
  pack_segments(DType::f32, {{a.data_ptr(), 3, 0}, {nullptr, 2, 3}, {b.data_ptr(), 2, 5}}, flat, 0.5);
  EXPECT_EQ(flat.to_vector<double>(), (std::vector<double>{0.5, 1, 1.5, 0, 0, -2, 4, 99}));
}

TEST(FlatTest, UnpackConvertsScalesAndSkipsMissingTensors) {
  Tensor flat = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5}, {5}, DType::f16);
  Tensor a = Tensor::zeros({2}, DType::f32), b = Tensor::full({2}, 7.0, DType::f32);
  unpack_segments(flat, DType::f32, {{a.data_ptr(), 2, 1}, {nullptr, 2, 3}}, 0.25);
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{0.5, 0.75}));
  EXPECT_EQ(b.to_vector<double>(), (std::vector<double>{7, 7}));
}

TEST(FlatTest, ScaleOneIsAnExactCopyEvenForIntegers) {
  const int64_t big = (int64_t{1} << 53) + 1;  // not representable in float or double
  Tensor t = Tensor::from_vector(std::vector<int64_t>{big, -3}, {2});
  Tensor flat = Tensor::zeros({2}, DType::i64);
  pack_segments(DType::i64, {{t.data_ptr(), 2, 0}}, flat);
  EXPECT_EQ(flat.data<int64_t>()[0], big);
  Tensor back = Tensor::zeros({2}, DType::i64);
  unpack_segments(flat, DType::i64, {{back.data_ptr(), 2, 0}});
  EXPECT_EQ(back.data<int64_t>()[0], big);
  EXPECT_EQ(back.data<int64_t>()[1], -3);
}

TEST(FlatTest, Bf16RoundsOnceToNearestEven) {
  // 1 + 2^-8 lies halfway between two bf16 values: ties to even gives 1.
  Tensor t = Tensor::from_vector(std::vector<double>{1.0 + 1.0 / 256, 1.0 + 3.0 / 256}, {2}, DType::f32);
  Tensor flat = Tensor::zeros({2}, DType::bf16);
  pack_segments(DType::f32, {{t.data_ptr(), 2, 0}}, flat);
  EXPECT_EQ(flat.to_vector<double>(), (std::vector<double>{1.0, 1.0 + 4.0 / 256}));
}

}  // namespace
}  // namespace tessera::dist
