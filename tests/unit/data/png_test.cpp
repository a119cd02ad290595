// PNG encoder: the file parses chunk by chunk with valid CRCs, the header states the size and
// colour type, and the image data inflates (zlib) back to the filtered rows. Grids place and
// scale images as documented.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#ifdef TESSERA_WITH_ZLIB
#include <zlib.h>
#endif

#include "framework/data/png.h"

namespace tessera::data {
namespace {

uint32_t read_u32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }

uint32_t reference_crc(const uint8_t* data, size_t n) {  // bitwise CRC-32, independent of the table
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

struct Parsed {
  uint32_t width = 0, height = 0;
  uint8_t bit_depth = 0, colour_type = 0;
  std::vector<uint8_t> idat;
  std::vector<std::string> chunks;
};

Parsed parse(const std::vector<uint8_t>& png) {
  Parsed p;
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  EXPECT_EQ(std::memcmp(png.data(), signature, 8), 0);
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const uint32_t len = read_u32(&png[pos]);
    const std::string type(reinterpret_cast<const char*>(&png[pos + 4]), 4);
    EXPECT_EQ(read_u32(&png[pos + 8 + len]), reference_crc(&png[pos + 4], len + 4)) << type;
    if (type == "IHDR") {
      p.width = read_u32(&png[pos + 8]);
      p.height = read_u32(&png[pos + 12]);
      p.bit_depth = png[pos + 16];
      p.colour_type = png[pos + 17];
    }
    if (type == "IDAT") p.idat.insert(p.idat.end(), &png[pos + 8], &png[pos + 8 + len]);
    p.chunks.push_back(type);
    pos += 12 + len;
  }
  EXPECT_EQ(pos, png.size());
  return p;
}

TEST(PngTest, RgbImageHasValidChunksAndInflatesToItsRows) {
  const int64_t h = 5, w = 7;
  std::vector<uint8_t> pixels(h * w * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37 % 251);
  const Parsed p = parse(encode_png(pixels.data(), h, w, 3));
  EXPECT_EQ(p.chunks, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(p.width, 7u);
  EXPECT_EQ(p.height, 5u);
  EXPECT_EQ(p.bit_depth, 8);
  EXPECT_EQ(p.colour_type, 2);
#ifdef TESSERA_WITH_ZLIB
  std::vector<uint8_t> raw(h * (w * 3 + 1));
  uLongf size = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &size, p.idat.data(), p.idat.size()), Z_OK);
  ASSERT_EQ(size, raw.size());
  for (int64_t y = 0; y < h; ++y) {
    EXPECT_EQ(raw[y * (w * 3 + 1)], 0) << "filter type of row " << y;
    EXPECT_EQ(std::memcmp(&raw[y * (w * 3 + 1) + 1], &pixels[y * w * 3], w * 3), 0) << "row " << y;
  }
#endif
}

TEST(PngTest, BadArgumentsAreErrors) {
  const uint8_t pixel = 0;
  EXPECT_THROW(encode_png(&pixel, 1, 1, 2), Error);
  EXPECT_THROW(encode_png(&pixel, 0, 1, 1), Error);
}

TEST(PngTest, GridPlacesAndScalesImages) {
  // Three 1-channel 2x2 images in 2 columns with padding 1: a 2-row grid of 7 x 7 pixels.
  const Tensor images = Tensor::from_vector(std::vector<double>{-1, -1, -1, -1, 1, 1, 1, 1, 0, 0, 0, 0}, {3, 1, 2, 2},
                                            DType::f32);
  const ImageGrid g = make_image_grid(images, 2, 1);
  EXPECT_EQ(g.height, 7);
  EXPECT_EQ(g.width, 7);
  EXPECT_EQ(g.channels, 1);
  EXPECT_EQ(g.pixels[0], 0);             // padding
  EXPECT_EQ(g.pixels[1 * 7 + 1], 0);     // image 0: -1 -> 0
  EXPECT_EQ(g.pixels[1 * 7 + 4], 255);   // image 1: 1 -> 255
  EXPECT_EQ(g.pixels[4 * 7 + 1], 128);   // image 2: 0 -> 127.5 rounded
  EXPECT_EQ(g.pixels[4 * 7 + 4], 0);     // the empty fourth slot
  const std::string path = (std::filesystem::temp_directory_path() / "tessera_png_test/grid.png").string();
  write_png(path, g.pixels.data(), g.height, g.width, g.channels);
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(parse(bytes).width, 7u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

}  // namespace
}  // namespace tessera::data
