// Safetensors reading and writing (safetensors.h).
#include "framework/train/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"

namespace tessera::train {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference reader's limit
constexpr const char* kSupported = "F64, F32, BF16, F16, I64, I32, U8";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  detail::throw_error("safetensors file '" + path + "': " + what);
}

bool parse_dtype_code(const std::string& code, DType& dtype) {
  static const std::pair<const char*, DType> codes[] = {{"F64", DType::f64}, {"F32", DType::f32},
                                                        {"BF16", DType::bf16}, {"F16", DType::f16},
                                                        {"I64", DType::i64}, {"I32", DType::i32},
                                                        {"U8", DType::u8}};
  for (const auto& [c, d] : codes)
    if (code == c) {
      dtype = d;
      return true;
    }
  return false;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct Header {
  std::vector<Entry> entries;  // sorted by begin
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;     // 8 + header length
};

Header read_header(const std::string& path, std::ifstream& in) {
  in.open(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8)
    fail(path, "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  if (header_len > file_size - 8)
    fail(path, "header length " + std::to_string(header_len) + " goes beyond the end of the file (" +
                   std::to_string(file_size) + " bytes)");
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " is above the 100 MiB limit");
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) fail(path, "cannot read the header");

  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!json.is_object()) fail(path, "header is not a JSON object");

  Header header;
  header.data_start = 8 + header_len;
  const uint64_t data_size = file_size - header.data_start;
  for (const auto& [name, value] : json.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(path, "__metadata__ value of \"" + k + "\" is not a string");
        header.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor \"" + name + "\": ";
    if (!value.is_object()) fail(path, where + "entry is not a JSON object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) fail(path, where + "missing or non-string \"dtype\"");
    if (!value.contains("shape") || !value["shape"].is_array()) fail(path, where + "missing or non-array \"shape\"");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      fail(path, where + "\"data_offsets\" must be an array of two integers");
    Entry e;
    e.name = name;
    const std::string code = value["dtype"].get<std::string>();
    if (!parse_dtype_code(code, e.dtype)) fail(path, where + "unknown dtype \"" + code + "\" (supported: " + kSupported + ")");
    uint64_t numel = 1;
    for (const auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) fail(path, where + "shape " + value["shape"].dump() + " has a non-integer or negative entry");
      const uint64_t size = d.get<uint64_t>();
      if (size != 0 && numel > (uint64_t{1} << 59) / size) fail(path, where + "shape " + value["shape"].dump() + " is too large");
      numel *= size;
      e.shape.push_back(static_cast<int64_t>(size));
    }
    for (const auto& o : value["data_offsets"])
      if (!o.is_number_unsigned()) fail(path, where + "data_offsets " + value["data_offsets"].dump() + " are not non-negative integers");
    e.begin = value["data_offsets"][0].get<uint64_t>();
    e.end = value["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      fail(path, where + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     "] are out of range (data section is " + std::to_string(data_size) + " bytes)");
    const uint64_t expected = numel * dtype_size(e.dtype);
    if (e.end - e.begin != expected)
      fail(path, where + std::to_string(e.end - e.begin) + " bytes, but shape " + shape_str(e.shape) + " of " + code +
                     " needs " + std::to_string(expected));
    header.entries.push_back(std::move(e));
  }
  std::sort(header.entries.begin(), header.entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : header.entries) {
    if (e.begin < covered)
      fail(path, "tensors \"" + previous->name + "\" and \"" + e.name + "\" overlap (bytes " + std::to_string(e.begin) +
                     " to " + std::to_string(covered) + ")");
    if (e.begin > covered)
      fail(path, "bytes " + std::to_string(covered) + " to " + std::to_string(e.begin) +
                     " of the data section belong to no tensor");
    covered = e.end;
    if (e.end > e.begin) previous = &e;
  }
  if (covered != data_size)
    fail(path, std::to_string(data_size - covered) + " trailing bytes after the last tensor (data section is " +
                   std::to_string(data_size) + " bytes, tensors cover " + std::to_string(covered) + ")");
  return header;
}

// Writes all of `bytes` or throws naming the file.
void write_all(int fd, const std::string& path, const void* bytes, size_t size) {
  const char* p = static_cast<const char*>(bytes);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(path, std::string("write failed: ") + std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

const char* safetensors_dtype_code(DType dtype) {
  switch (dtype) {
    case DType::f64: return "F64";
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::u8: return "U8";
  }
  TESSERA_ASSERT(false, "bad dtype");
}

void save_safetensors(const std::string& path, const nn::StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::map<std::string, Tensor> sorted;
  for (const auto& [name, t] : tensors) {
    TESSERA_CHECK(!name.empty() && name != "__metadata__", "save_safetensors '", path, "': invalid tensor name \"",
                  name, "\"");
    TESSERA_CHECK(t.defined(), "save_safetensors '", path, "': tensor \"", name, "\" is undefined");
    TESSERA_CHECK(sorted.emplace(name, t).second, "save_safetensors '", path, "': tensor name \"", name,
                  "\" appears twice");
  }
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    const uint64_t bytes = t.nbytes();
    header[name] = {{"dtype", safetensors_dtype_code(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TESSERA_CHECK(fd >= 0, "save_safetensors: cannot create '", tmp, "': ", std::strerror(errno));
  try {
    write_all(fd, tmp, &header_len, 8);
    write_all(fd, tmp, text.data(), text.size());
    for (const auto& [name, t] : sorted) {
      if (t.numel() == 0) continue;
      const Tensor host = t.device().is_cpu() && t.is_contiguous() ? t : t.to(Device::cpu());
      write_all(fd, tmp, host.data_ptr(), host.nbytes());
    }
    if (::fsync(fd) != 0) fail(tmp, std::string("fsync failed: ") + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    std::remove(tmp.c_str());
    fail(tmp, std::string("close failed: ") + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail(path, std::string("cannot rename '") + tmp + "' into place: " + std::strerror(err));
  }
}

nn::StateDict load_safetensors(const std::string& path, Device device) {
  std::ifstream in;
  const Header header = read_header(path, in);
  nn::StateDict out;
  for (const Entry& e : header.entries) {
    Tensor host = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) {
      in.seekg(static_cast<std::streamoff>(header.data_start + e.begin));
      in.read(static_cast<char*>(host.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
      if (!in) fail(path, "cannot read the data of tensor \"" + e.name + "\"");
    }
    out.emplace_back(e.name, device.is_cpu() ? host : host.to(device));
  }
  return out;
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  std::ifstream in;
  return read_header(path, in).metadata;
}

}  // namespace tessera::train
