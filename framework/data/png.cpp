// PNG encoder and image grids (png.h).
#include "framework/data/png.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#ifdef TESSERA_WITH_ZLIB
#include <zlib.h>
#endif

#include "framework/core/error.h"

namespace tessera::data {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

uint32_t crc32_of(const uint8_t* data, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = crc_table()[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32(out, crc32_of(out.data() + start, out.size() - start));
}

// A zlib stream of `raw`: compressed with zlib when we have it, else stored blocks.
std::vector<uint8_t> zlib_stream(const std::vector<uint8_t>& raw) {
#ifdef TESSERA_WITH_ZLIB
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> out(size);
  TESSERA_CHECK(compress2(out.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 6) == Z_OK,
                "png: zlib compression failed");
  out.resize(size);
  return out;
#else
  std::vector<uint8_t> out = {0x78, 0x01};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(raw.size() - pos, 65535);
    const bool last = pos + n == raw.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<uint8_t>(n & 0xff));
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(~n & 0xff));
    out.push_back(static_cast<uint8_t>((~n >> 8) & 0xff));
    out.insert(out.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos),
               raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (uint8_t byte : raw) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  put_u32(out, (b << 16) | a);
  return out;
#endif
}

}  // namespace

std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t height, int64_t width, int channels) {
  TESSERA_CHECK(channels == 1 || channels == 3, "png: channels must be 1 (gray) or 3 (RGB), got ", channels);
  TESSERA_CHECK(height > 0 && width > 0 && height < (1 << 24) && width < (1 << 24), "png: bad image size ", height,
                " x ", width);
  const size_t row = static_cast<size_t>(width) * channels;
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type None
    raw.insert(raw.end(), pixels + y * row, pixels + (y + 1) * row);
  }
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> header;
  put_u32(header, static_cast<uint32_t>(width));
  put_u32(header, static_cast<uint32_t>(height));
  header.insert(header.end(), {8, static_cast<uint8_t>(channels == 1 ? 0 : 2), 0, 0, 0});
  put_chunk(out, "IHDR", header);
  put_chunk(out, "IDAT", zlib_stream(raw));
  put_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::string& path, const uint8_t* pixels, int64_t height, int64_t width, int channels) {
  const std::vector<uint8_t> bytes = encode_png(pixels, height, width, channels);
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    TESSERA_CHECK(f.good(), "png: cannot write ", tmp);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    TESSERA_CHECK(f.good(), "png: write to ", tmp, " failed");
  }
  std::filesystem::rename(tmp, target);
}

ImageGrid make_image_grid(const Tensor& images, int64_t columns, int64_t padding, double low, double high) {
  TESSERA_CHECK(images.dim() == 4, "make_image_grid: expected images [N, C, H, W], got ", shape_str(images.shape()));
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  TESSERA_CHECK(c == 1 || c == 3, "make_image_grid: 1 or 3 channels, got ", c);
  TESSERA_CHECK(n > 0 && columns > 0 && padding >= 0 && high > low, "make_image_grid: bad arguments (", n,
                " images, ", columns, " columns, padding ", padding, ")");
  const std::vector<double> v = images.to(Device::cpu()).contiguous().to_vector<double>();
  const int64_t cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  ImageGrid grid;
  grid.channels = static_cast<int>(c);
  grid.height = rows * (h + padding) + padding;
  grid.width = cols * (w + padding) + padding;
  grid.pixels.assign(static_cast<size_t>(grid.height * grid.width * c), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y0 = padding + (i / cols) * (h + padding), x0 = padding + (i % cols) * (w + padding);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const double value = v[static_cast<size_t>(((i * c + ch) * h + y) * w + x)];
          const double scaled = std::isnan(value) ? 0.0 : (value - low) / (high - low) * 255.0;
          grid.pixels[static_cast<size_t>(((y0 + y) * grid.width + x0 + x) * c + ch)] =
              static_cast<uint8_t>(std::lround(std::clamp(scaled, 0.0, 255.0)));
        }
  }
  return grid;
}

}  // namespace tessera::data
