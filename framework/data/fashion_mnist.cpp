// Fashion-MNIST loader: finds the split's two IDX files, checks they agree, converts batches.
#include "framework/data/fashion_mnist.h"

#include <filesystem>

#include "framework/core/error.h"
#include "framework/data/idx.h"

namespace tessera::data {
namespace {

// `dir/name.gz`, else `dir/name`; a missing file names the path and the package to install.
std::string find_file(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path gz = fs::path(dir) / (name + ".gz");
  const fs::path plain = fs::path(dir) / name;
  std::error_code ec;
  if (fs::exists(gz, ec)) return gz.string();
  if (fs::exists(plain, ec)) return plain.string();
  detail::throw_error(detail::cat("Fashion-MNIST file not found: ", gz.string(),
                                  " (install the Debian package dataset-fashion-mnist: "
                                  "`sudo apt-get install dataset-fashion-mnist`, or point config key data.dir at a "
                                  "directory holding ", name, ".gz)"));
}

}  // namespace

PixelRange parse_pixel_range(const std::string& text) {
  std::string t;
  for (char c : text)
    if (c != ' ' && c != '[' && c != ']') t += c;
  if (t == "0,1" || t == "0..1") return PixelRange::zero_one;
  if (t == "-1,1" || t == "-1..1") return PixelRange::minus_one_one;
  detail::throw_error(detail::cat("bad pixel range \"", text, "\": expected \"0,1\" or \"-1,1\""));
}

FashionMnist::FashionMnist(const std::string& dir, Split split, PixelRange range) : split_(split), range_(range) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  TESSERA_CHECK(images.dims.size() == 3 && images.dims[1] == kHeight && images.dims[2] == kWidth, "IDX file ",
                images_path, " should hold N x 28 x 28 images, but its dimensions are ", images.dims.size(),
                "-d");
  TESSERA_CHECK(labels.dims.size() == 1, "IDX file ", labels_path, " should hold a 1-d array of labels, but it is ",
                labels.dims.size(), "-d");
  TESSERA_CHECK(images.dims[0] == labels.dims[0], "Fashion-MNIST files disagree: ", images_path, " holds ",
                images.dims[0], " images but ", labels_path, " holds ", labels.dims[0], " labels");
  for (size_t i = 0; i < labels.data.size(); ++i)
    TESSERA_CHECK(labels.data[i] < kClasses, "IDX file ", labels_path, " is corrupt: label ", int{labels.data[i]},
                  " at index ", i, " is not a class in 0..9");
  pixels_ = std::move(images.data);
  labels_ = std::move(labels.data);
}

std::pair<Tensor, Tensor> FashionMnist::batch(const std::vector<int64_t>& indices) const {
  const int64_t b = static_cast<int64_t>(indices.size());
  constexpr int64_t pixels_per_image = kHeight * kWidth;
  Tensor images = Tensor::empty({b, 1, kHeight, kWidth}, DType::f32);
  Tensor labels = Tensor::empty({b}, DType::i64);
  float* out = images.data<float>();
  int64_t* out_labels = labels.data<int64_t>();
  // The same two f32 operations on every machine, so batches are bitwise reproducible.
  const bool signed_range = range_ == PixelRange::minus_one_one;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t index = indices[static_cast<size_t>(i)];
    TESSERA_CHECK(index >= 0 && index < size(), "FashionMnist::batch: index ", index, " is outside the split of ",
                  size(), " examples");
    const uint8_t* src = &pixels_[static_cast<size_t>(index * pixels_per_image)];
    float* dst = out + i * pixels_per_image;
    for (int64_t p = 0; p < pixels_per_image; ++p)
      dst[p] = signed_range ? static_cast<float>(src[p]) / 127.5f - 1.0f : static_cast<float>(src[p]) / 255.0f;
    out_labels[i] = labels_[static_cast<size_t>(index)];
  }
  return {images, labels};
}

std::pair<Tensor, Tensor> FashionMnist::range(int64_t start, int64_t end) const {
  TESSERA_CHECK(start >= 0 && start <= end && end <= size(), "FashionMnist::range: [", start, ", ", end,
                ") is outside the split of ", size(), " examples");
  std::vector<int64_t> indices;
  for (int64_t i = start; i < end; ++i) indices.push_back(i);
  return batch(indices);
}

const char* FashionMnist::class_name(int64_t label) {
  static const char* const names[kClasses] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  TESSERA_CHECK(label >= 0 && label < kClasses, "Fashion-MNIST label ", label, " is not a class in 0..9");
  return names[label];
}

}  // namespace tessera::data
