// Forward values of the image ops against direct loops in double: conv2d, conv_transpose2d,
// avg_pool2d, upsample_nearest2d, batch_norm (with its running statistics) and group_norm.
// (Gradients are checked by the op test table's gradcheck entries, op_cases_conv.cpp.)
#include <gtest/gtest.h>

#include <cmath>

#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera {
namespace {

using testing::relative_error;

struct Conv {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};

// y[n, o, oh, ow] = b[o] + sum x[n, c, oh*s - p + i*d, ow*s - p + j*d] * w[o, c - group start, i, j]
Tensor direct_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv& p) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), KH = w.size(2), KW = w.size(3), Og = O / p.groups;
  const int64_t OH = (H + 2 * p.pad_h - p.dil_h * (KH - 1) - 1) / p.stride_h + 1;
  const int64_t OW = (W + 2 * p.pad_w - p.dil_w * (KW - 1) - 1) / p.stride_w + 1;
  std::vector<double> y(static_cast<size_t>(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double sum = b.defined() ? b.to_vector<double>()[o] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t h = oh * p.stride_h - p.pad_h + i * p.dil_h, ww = ow * p.stride_w - p.pad_w + j * p.dil_w;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                const int64_t ci = (o / Og) * Cg + c;
                sum += xv[((n * C + ci) * H + h) * W + ww] * wv[((o * Cg + c) * KH + i) * KW + j];
              }
          y[((n * O + o) * OH + oh) * OW + ow] = sum;
        }
  return Tensor::from_vector(y, {N, O, OH, OW}, DType::f64);
}

// Every input pixel scatters x * w through the kernel: y[n, o, ih*s - p + i*d, ...] += ...
Tensor direct_conv_transpose2d(const Tensor& x, const Tensor& w, const Conv& p, int64_t out_pad_h, int64_t out_pad_w) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Og = w.size(1), KH = w.size(2), KW = w.size(3), O = Og * p.groups, Cg = C / p.groups;
  const int64_t OH = (H - 1) * p.stride_h - 2 * p.pad_h + p.dil_h * (KH - 1) + out_pad_h + 1;
  const int64_t OW = (W - 1) * p.stride_w - 2 * p.pad_w + p.dil_w * (KW - 1) + out_pad_w + 1;
  std::vector<double> y(static_cast<size_t>(N * O * OH * OW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t oc = 0; oc < Og; ++oc)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t h = ih * p.stride_h - p.pad_h + i * p.dil_h, ww = iw * p.stride_w - p.pad_w + j * p.dil_w;
                if (h < 0 || h >= OH || ww < 0 || ww >= OW) continue;
                const int64_t o = (c / Cg) * Og + oc;
                y[((n * O + o) * OH + h) * OW + ww] +=
                    xv[((n * C + c) * H + ih) * W + iw] * wv[((c * Og + oc) * KH + i) * KW + j];
              }
  return Tensor::from_vector(y, {N, O, OH, OW}, DType::f64);
}

Tensor random(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return rand(shape, -1.0, 1.0, dtype, Device::cpu(), &gen);
}

TEST(Conv2dTest, MatchesDirectLoopsWithStridePaddingDilationAndGroups) {
  const Tensor x = random({2, 4, 7, 6}, 1), w = random({6, 2, 3, 2}, 2), b = random({6}, 3);
  const Conv p{.stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 2, .dil_h = 1, .dil_w = 2, .groups = 2};
  const Tensor y = conv2d(x, w, b, {.stride = Size2(2, 1), .padding = Size2(1, 2), .dilation = Size2(1, 2), .groups = 2});
  const Tensor ref = direct_conv2d(x, w, b, p);
  ASSERT_EQ(y.shape(), ref.shape());
  EXPECT_LE(relative_error(y, ref), 1e-13);
}

TEST(Conv2dTest, PointwiseKernelSkipsIm2colAndStillMatches) {
  const Tensor x = random({3, 5, 4, 3}, 4), w = random({2, 5, 1, 1}, 5);
  EXPECT_LE(relative_error(conv2d(x, w), direct_conv2d(x, w, Tensor(), {})), 1e-13);
}

TEST(Conv2dTest, Bf16AndF32AgreeWithDouble) {
  const Tensor x = random({2, 3, 8, 8}, 6), w = random({4, 3, 4, 4}, 7);
  const Tensor ref = direct_conv2d(x, w, Tensor(), {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1});
  for (DType dtype : {DType::f32, DType::bf16}) {
    const Tensor y = conv2d(x.to(dtype), w.to(dtype), Tensor(), {.stride = 2, .padding = 1});
    EXPECT_EQ(y.dtype(), dtype);
    EXPECT_LE(relative_error(y, ref), dtype == DType::f32 ? 1e-6 : 2e-2) << dtype_name(dtype);
  }
}

TEST(Conv2dTest, RejectsWeightWithWrongInputChannels) {
  const Tensor x = random({1, 3, 5, 5}, 8), w = random({4, 2, 3, 3}, 9);
  try {
    conv2d(x, w);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d: weight [4, 2, 3, 3] expects 2 input channels"), std::string::npos)
        << e.what();
  }
}

TEST(Conv2dTest, RejectsInputSmallerThanKernel) {
  EXPECT_THROW(conv2d(random({1, 1, 2, 2}, 1), random({1, 1, 3, 3}, 2)), Error);
}

TEST(ConvTranspose2dTest, MatchesScatterLoopsWithOutputPaddingAndGroups) {
  const Tensor x = random({2, 4, 3, 4}, 10), w = random({4, 3, 3, 2}, 11), b = random({6}, 12);
  const Conv p{.stride_h = 2, .stride_w = 3, .pad_h = 1, .pad_w = 0, .dil_h = 1, .dil_w = 2, .groups = 2};
  const Tensor y = conv_transpose2d(
      x, w, b, {.stride = Size2(2, 3), .padding = Size2(1, 0), .output_padding = Size2(1, 2), .dilation = Size2(1, 2), .groups = 2});
  const Tensor ref = add(direct_conv_transpose2d(x, w, p, 1, 2), reshape(b, {1, 6, 1, 1}));
  ASSERT_EQ(y.shape(), ref.shape());
  EXPECT_LE(relative_error(y, ref), 1e-13);
}

TEST(ConvTranspose2dTest, OneByOneLatentBecomesKernelSizedImage) {
  const Tensor x = random({5, 8, 1, 1}, 13), w = random({8, 3, 7, 7}, 14);
  const Tensor y = conv_transpose2d(x, w);
  ASSERT_EQ(y.shape(), (Shape{5, 3, 7, 7}));
  EXPECT_LE(relative_error(y, direct_conv_transpose2d(x, w, {}, 0, 0)), 1e-13);
}

TEST(ConvTranspose2dTest, DcganUpsamplingLayerDoublesTheSize) {
  const Tensor x = random({2, 4, 7, 7}, 15), w = random({4, 2, 4, 4}, 16);
  const Tensor y = conv_transpose2d(x, w, Tensor(), {.stride = 2, .padding = 1});
  ASSERT_EQ(y.shape(), (Shape{2, 2, 14, 14}));
  EXPECT_LE(relative_error(y, direct_conv_transpose2d(x, w, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, 0, 0)),
            1e-13);
}

TEST(ConvTranspose2dTest, RejectsOutputPaddingNotBelowStride) {
  EXPECT_THROW(conv_transpose2d(random({1, 2, 3, 3}, 1), random({2, 2, 3, 3}, 2), Tensor(), {.stride = 2, .output_padding = 2}),
               Error);
}

TEST(AvgPool2dTest, AveragesWindowsCountingPaddedZeros) {
  const Tensor x = random({2, 3, 5, 6}, 17);
  const Tensor y = avg_pool2d(x, 3, 2, 1);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 3, 3}));
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t oh = 0; oh < 3; ++oh)
      for (int64_t ow = 0; ow < 3; ++ow) {
        double sum = 0.0;
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 3; ++j) {
            const int64_t h = oh * 2 - 1 + i, w = ow * 2 - 1 + j;
            if (h >= 0 && h < 5 && w >= 0 && w < 6) sum += xv[(p * 5 + h) * 6 + w];
          }
        EXPECT_NEAR(yv[(p * 3 + oh) * 3 + ow], sum / 9.0, 1e-14);
      }
}

TEST(UpsampleNearest2dTest, RepeatsEachPixelInAScaleSizedBlock) {
  const Tensor x = random({1, 2, 2, 3}, 18);
  const Tensor y = upsample_nearest2d(x, 3);
  ASSERT_EQ(y.shape(), (Shape{1, 2, 6, 9}));
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t h = 0; h < 6; ++h)
      for (int64_t w = 0; w < 9; ++w) EXPECT_EQ(yv[(c * 6 + h) * 9 + w], xv[(c * 2 + h / 3) * 3 + w / 3]);
}

TEST(BatchNormTest, TrainingNormalisesPerChannelAndUpdatesRunningStatsLikeTorch) {
  const Tensor x = random({3, 2, 2, 2}, 19);
  const Tensor w = Tensor::from_vector(std::vector<double>{1.5, -0.5}, {2}, DType::f64);
  const Tensor b = Tensor::from_vector(std::vector<double>{0.25, 2.0}, {2}, DType::f64);
  const Tensor running_mean = Tensor::zeros({2}), running_var = Tensor::ones({2});
  const Tensor tracked = Tensor::zeros({}, DType::i64);
  const Tensor y = batch_norm(x, w, b, running_mean, running_var, true, 0.1, 1e-5, tracked);
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const auto rm = running_mean.to_vector<double>(), rv = running_var.to_vector<double>();
  for (int64_t c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t s = 0; s < 4; ++s) mean += xv[(n * 2 + c) * 4 + s] / 12.0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t s = 0; s < 4; ++s) var += std::pow(xv[(n * 2 + c) * 4 + s] - mean, 2) / 12.0;
    const double wc = c == 0 ? 1.5 : -0.5, bc = c == 0 ? 0.25 : 2.0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t s = 0; s < 4; ++s) {
        const int64_t i = (n * 2 + c) * 4 + s;
        EXPECT_NEAR(yv[i], (xv[i] - mean) / std::sqrt(var + 1e-5) * wc + bc, 1e-12);
      }
    EXPECT_NEAR(rm[c], 0.1 * mean, 1e-7);                       // f32 buffer
    EXPECT_NEAR(rv[c], 0.9 + 0.1 * var * 12.0 / 11.0, 1e-6);  // unbiased variance
  }
  EXPECT_EQ(tracked.to_vector<int64_t>()[0], 1);
}

TEST(BatchNormTest, EvaluationUsesRunningStatsAndChangesNothing) {
  const Tensor x = random({2, 3, 4}, 20, DType::f32);
  const Tensor running_mean = Tensor::from_vector(std::vector<float>{0.5f, -1.0f, 0.0f}, {3});
  const Tensor running_var = Tensor::from_vector(std::vector<float>{4.0f, 0.25f, 1.0f}, {3});
  const Tensor y = batch_norm(x, Tensor(), Tensor(), running_mean, running_var, false, 0.1, 0.0);
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const double mean[] = {0.5, -1.0, 0.0}, stdev[] = {2.0, 0.5, 1.0};
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t s = 0; s < 4; ++s) {
        const int64_t i = (n * 3 + c) * 4 + s;
        EXPECT_NEAR(yv[i], (xv[i] - mean[c]) / stdev[c], 1e-6);
      }
  EXPECT_EQ(running_mean.to_vector<float>(), (std::vector<float>{0.5f, -1.0f, 0.0f}));
  EXPECT_EQ(running_var.to_vector<float>(), (std::vector<float>{4.0f, 0.25f, 1.0f}));
}

TEST(BatchNormTest, Bf16InputKeepsF32RunningStatsAndF32Statistics) {
  const Tensor x = random({4, 2, 3, 3}, 21, DType::f32);
  const Tensor rm32 = Tensor::zeros({2}), rv32 = Tensor::ones({2}), rm16 = Tensor::zeros({2}), rv16 = Tensor::ones({2});
  const Tensor y32 = batch_norm(x, Tensor(), Tensor(), rm32, rv32, true);
  const Tensor y16 = batch_norm(x.to(DType::bf16), Tensor(), Tensor(), rm16, rv16, true);
  EXPECT_EQ(y16.dtype(), DType::bf16);
  EXPECT_LE(relative_error(y16, y32), 1e-2);
  EXPECT_LE(relative_error(rm16, rm32), 1e-2);
  EXPECT_LE(relative_error(rv16, rv32), 1e-2);
}

TEST(BatchNormTest, TrainingWithOneValuePerChannelIsAnError) {
  EXPECT_THROW(batch_norm(random({1, 3, 1, 1}, 1), Tensor(), Tensor(), Tensor(), Tensor(), true), Error);
}

TEST(GroupNormTest, NormalisesEachGroupOfChannelsThenAppliesPerChannelAffine) {
  const Tensor x = random({2, 4, 3}, 22);
  const Tensor w = random({4}, 23), b = random({4}, 24);
  const Tensor y = group_norm(x, 2, w, b, 1e-5);
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t g = 0; g < 2; ++g) {
      const int64_t begin = (n * 4 + g * 2) * 3;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < 6; ++i) mean += xv[begin + i] / 6.0;
      for (int64_t i = 0; i < 6; ++i) var += std::pow(xv[begin + i] - mean, 2) / 6.0;
      for (int64_t i = 0; i < 6; ++i) {
        const int64_t c = g * 2 + i / 3;
        EXPECT_NEAR(yv[begin + i], (xv[begin + i] - mean) / std::sqrt(var + 1e-5) * wv[c] + bv[c], 1e-12);
      }
    }
}

}  // namespace
}  // namespace tessera
