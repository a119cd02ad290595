// Fashion-MNIST: 28x28 grey-scale clothing images in 10 classes (60,000 train, 10,000 test).
//
// defines: tessera::data::FashionMnist, Split, PixelRange, parse_pixel_range
//
// The data comes from the Debian package `dataset-fashion-mnist`, which installs the four IDX
// files `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` in /usr/share/datasets/fashion-mnist
// (a directory holding the same names without `.gz` works too). The dataset keeps the u8
// pixels in host memory (47 MB for the train split) and converts only the rows a batch asks
// for: images come out as f32 [B, 1, 28, 28] (NCHW; with one channel the same bytes as NHWC)
// scaled to [0, 1] or [-1, 1], labels as i64 [B]. Missing files name the path and the package;
// mismatched or corrupt files name the file (see idx.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"

namespace tessera::data {

enum class Split { train, test };
enum class PixelRange { zero_one, minus_one_one };

// "0,1" / "[0,1]" / "0..1" -> zero_one, "-1,1" / "[-1,1]" / "-1..1" -> minus_one_one.
PixelRange parse_pixel_range(const std::string& text);

class FashionMnist {
 public:
  static constexpr const char* kDefaultDir = "/usr/share/datasets/fashion-mnist";
  static constexpr int64_t kClasses = 10;
  static constexpr int64_t kHeight = 28;
  static constexpr int64_t kWidth = 28;

  FashionMnist(const std::string& dir, Split split, PixelRange range = PixelRange::zero_one);

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  Split split() const { return split_; }
  // Images f32 [B, 1, 28, 28] and labels i64 [B] on the host, in the order of `indices`.
  std::pair<Tensor, Tensor> batch(const std::vector<int64_t>& indices) const;
  // Examples start .. end-1 (a contiguous batch, for evaluation).
  std::pair<Tensor, Tensor> range(int64_t start, int64_t end) const;
  uint8_t label(int64_t index) const { return labels_[static_cast<size_t>(index)]; }
  static const char* class_name(int64_t label);  // "T-shirt/top", "Trouser", ...

 private:
  Split split_;
  PixelRange range_;
  std::vector<uint8_t> pixels_;  // [N, 28, 28]
  std::vector<uint8_t> labels_;  // [N]
};

}  // namespace tessera::data
