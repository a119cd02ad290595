// IDX files (the MNIST / Fashion-MNIST container): read one into memory, checked.
//
// defines: tessera::data::IdxArray, read_idx
//
// An IDX file is a 4-byte magic (0, 0, element type, number of dimensions), the dimensions as
// big-endian u32, then the elements in row-major order. Tessera reads element type 0x08
// (unsigned byte), which is what image and label files use. Files may be gzip-compressed
// (detected from the content, not the name) or plain; gzip goes through zlib, or through the
// `gzip` program in builds without zlib. Anything wrong with a file — missing,
// bad magic, an unsupported type, a truncated header or data, a corrupt gzip stream, trailing
// bytes — is a tessera::Error that names the file and says what was expected and found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::data {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // product(dims) bytes, row-major
};

IdxArray read_idx(const std::string& path);

}  // namespace tessera::data
