// PNG output for sample grids: an encoder for 8-bit grayscale and RGB images, and the grid
// layout that tiles a batch of generated images into one picture.
//
// defines: tessera::data::encode_png, write_png, ImageGrid, make_image_grid
//
// The encoder writes the chunks IHDR, IDAT, IEND with filter type 0 on every row. With zlib
// (TESSERA_WITH_ZLIB) IDAT is deflate-compressed; without it, it holds "stored" (uncompressed)
// deflate blocks, which every PNG reader accepts. CRC-32 and Adler-32 are computed here.
// write_png writes to a temporary name and renames it into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace tessera::data {

// pixels: height rows of width * channels bytes (channels 1 = gray, 3 = RGB).
std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t height, int64_t width, int channels);
void write_png(const std::string& path, const uint8_t* pixels, int64_t height, int64_t width, int channels);

struct ImageGrid {
  std::vector<uint8_t> pixels;  // height x width x channels
  int64_t height = 0, width = 0;
  int channels = 0;
};

// Tiles images [N, C, H, W] (C = 1 or 3, any float dtype, any device) into `columns` columns
// with `padding` pixels of black between and around them; values are mapped linearly from
// [low, high] to [0, 255] and clamped.
ImageGrid make_image_grid(const Tensor& images, int64_t columns, int64_t padding = 2, double low = -1.0,
                          double high = 1.0);

}  // namespace tessera::data
