// Tensor metadata, views, dtype conversion and copies.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/ops/ops.h"

namespace tessera {
namespace {

TEST(TensorTest, FactoriesSetShapeStridesAndValues) {
  Tensor t = Tensor::full({2, 3}, 1.5);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.strides(), (Shape{3, 1}));
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_TRUE(t.device().is_cpu());
  for (double v : t.to_vector<double>()) EXPECT_EQ(v, 1.5);
  EXPECT_EQ(Tensor::arange(4).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(Tensor::scalar(3.0).dim(), 0);
  EXPECT_EQ(Tensor::scalar(3.0).item(), 3.0);
}

TEST(TensorTest, EveryDtypeRoundTripsThroughDouble) {
  const std::vector<double> values{-2.0, 0.0, 0.5, 3.0};
  for (DType d : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
    Tensor t = Tensor::from_vector(values, {4}, d);
    EXPECT_EQ(t.to_vector<double>(), values) << dtype_name(d);
  }
  for (DType d : {DType::i64, DType::i32}) {
    Tensor t = Tensor::from_vector(std::vector<double>{-2, 0, 1, 3}, {4}, d);
    EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{-2, 0, 1, 3})) << dtype_name(d);
  }
  Tensor u = Tensor::from_vector(std::vector<double>{0, 7, 255}, {3}, DType::u8);
  EXPECT_EQ(u.to_vector<int64_t>(), (std::vector<int64_t>{0, 7, 255}));
}

TEST(TensorTest, HalfPrecisionConversionRoundsToNearestEven) {
  // 1 + 2^-8 is halfway between two bf16 values (1 and 1 + 2^-7): rounds to the even one, 1.
  EXPECT_EQ(to_float(bf16_from_float(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(to_float(bf16_from_float(1.0f + 0x1p-8f + 0x1p-12f)), 1.0f + 0x1p-7f);
  EXPECT_EQ(to_float(f16_from_float(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(to_float(f16_from_float(70000.0f))));
  EXPECT_EQ(to_float(f16_from_float(0x1p-24f)), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(to_float(f16_from_float(0x1p-26f)), 0.0f);
  EXPECT_TRUE(std::isnan(to_float(bf16_from_float(NAN))));
}

TEST(TensorTest, ViewsShareStorage) {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tt = transpose(t, 0, 1);
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_EQ(tt.strides(), (Shape{1, 3}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.storage(), t.storage());
  EXPECT_EQ(tt.contiguous().to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor s = slice(t, 1, 1, 3);
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
  Tensor e = expand(slice(t, 0, 0, 1), {4, 3});
  EXPECT_EQ(e.strides()[0], 0);
  EXPECT_EQ(sum(e, {0}).to_vector<float>(), (std::vector<float>{0, 4, 8}));
  EXPECT_EQ(reshape(t, {3, -1}).shape(), (Shape{3, 2}));
  EXPECT_EQ(reshape(t, {3, -1}).storage(), t.storage());  // contiguous: a view
}

TEST(TensorTest, ReshapeOfNonContiguousCopies) {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = reshape(transpose(t, 0, 1), {6});
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(TensorTest, CopyIntoConvertsDtypeAndStrides) {
  Tensor src = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor dst = Tensor::zeros({2, 2}, DType::f64);
  copy_into(transpose(dst, 0, 1), src);
  EXPECT_EQ(dst.to_vector<double>(), (std::vector<double>{1, 3, 2, 4}));
}

TEST(TensorTest, ShapeErrorsNameTheOpAndBothShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 3});
  try {
    add(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("add"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 3]"), std::string::npos) << msg;
  }
  try {
    matmul(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("matmul"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 3]"), std::string::npos) << msg;
  }
  EXPECT_THROW(add(a, Tensor::zeros({2, 3}, DType::f64)), Error);
}

TEST(TensorTest, CudaDeviceWithoutGpuIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  try {
    Tensor::zeros({2}, DType::f32, Device::cuda(0));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Device::parse("gpu"), Error);
  EXPECT_EQ(Device::parse("cuda:3").index, 3);
}

TEST(TensorTest, MatmulMatchesHandComputedProduct) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 1, 1}, {3, 2});
  EXPECT_EQ(matmul(a, b).to_vector<float>(), (std::vector<float>{4, 5, 10, 11}));
  for (DType d : {DType::bf16, DType::f16, DType::f64})
    EXPECT_EQ(matmul(a.to(d), b.to(d)).to_vector<double>(), (std::vector<double>{4, 5, 10, 11})) << dtype_name(d);
}

}  // namespace
}  // namespace tessera
