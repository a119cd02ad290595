// Fashion-MNIST loader against the Debian package's files, and its errors for missing or
// damaged files. Tests that need the real data skip when the package is not installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>

#include "framework/core/error.h"
#include "framework/data/fashion_mnist.h"

namespace tessera::data {
namespace {

namespace fs = std::filesystem;

bool have_dataset() {
  return fs::exists(fs::path(FashionMnist::kDefaultDir) / "t10k-images-idx3-ubyte.gz");
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(FashionMnistTest, TestSplitShapesRangesAndKnownLabels) {
  if (!have_dataset()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  FashionMnist test(FashionMnist::kDefaultDir, Split::test);
  ASSERT_EQ(test.size(), 10000);
  // The first test images are an ankle boot, a pullover and a trouser.
  EXPECT_EQ(test.label(0), 9);
  EXPECT_EQ(test.label(1), 2);
  EXPECT_EQ(test.label(2), 1);
  auto [images, labels] = test.batch({0, 1, 2, 9999});
  EXPECT_EQ(images.shape(), (Shape{4, 1, 28, 28}));
  EXPECT_EQ(images.dtype(), DType::f32);
  EXPECT_EQ(labels.dtype(), DType::i64);
  EXPECT_EQ(labels.to_vector<int64_t>()[2], 1);
  const auto pixels = images.to_vector<float>();
  const auto [lo, hi] = std::minmax_element(pixels.begin(), pixels.end());
  EXPECT_EQ(*lo, 0.0f);
  EXPECT_EQ(*hi, 1.0f);
}

TEST(FashionMnistTest, SignedPixelRange) {
  if (!have_dataset()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  FashionMnist a(FashionMnist::kDefaultDir, Split::test, PixelRange::zero_one);
  FashionMnist b(FashionMnist::kDefaultDir, Split::test, PixelRange::minus_one_one);
  const auto x = a.range(0, 2).first.to_vector<float>();
  const auto y = b.range(0, 2).first.to_vector<float>();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(y[i], 2.0f * x[i] - 1.0f, 1e-6f);
  const auto [lo, hi] = std::minmax_element(y.begin(), y.end());
  EXPECT_EQ(*lo, -1.0f);
  EXPECT_EQ(*hi, 1.0f);
}

TEST(FashionMnistTest, TrainSplitHasSixtyThousandExamples) {
  if (!have_dataset()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  FashionMnist train(FashionMnist::kDefaultDir, Split::train);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(train.label(0), 9);
}

TEST(FashionMnistTest, MissingDirectoryNamesPathAndPackage) {
  const std::string msg = error_of([] { FashionMnist("/nonexistent/fmnist", Split::train); });
  EXPECT_NE(msg.find("/nonexistent/fmnist/train-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
}

TEST(FashionMnistTest, TruncatedCopyNamesTheFile) {
  if (!have_dataset()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const fs::path dir = fs::temp_directory_path() / ("tessera_fmnist_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path src = fs::path(FashionMnist::kDefaultDir);
  fs::copy_file(src / "t10k-labels-idx1-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
  {
    std::ifstream in(src / "t10k-images-idx3-ubyte.gz", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes.resize(bytes.size() / 3);
    std::ofstream(dir / "t10k-images-idx3-ubyte.gz", std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const std::string msg = error_of([&] { FashionMnist(dir.string(), Split::test); });
  fs::remove_all(dir);
  EXPECT_NE(msg.find((dir / "t10k-images-idx3-ubyte.gz").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(FashionMnistTest, PixelRangeParsing) {
  EXPECT_EQ(parse_pixel_range("0,1"), PixelRange::zero_one);
  EXPECT_EQ(parse_pixel_range("[-1, 1]"), PixelRange::minus_one_one);
  EXPECT_THROW(parse_pixel_range("0,255"), Error);
}

}  // namespace
}  // namespace tessera::data
