// IDX reader. With zlib (TESSERA_WITH_ZLIB), its gz* interface reads gzip and plain files
// alike; a build without zlib reads plain files itself and pipes gzip files through the
// `gzip -dc` program. The header is checked against the amount of data actually present
// before anything is interpreted.
#include "framework/data/idx.h"

#ifdef TESSERA_WITH_ZLIB
#include <zlib.h>
#else
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#endif

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "framework/core/error.h"

namespace tessera::data {
namespace {

#ifdef TESSERA_WITH_ZLIB
// The whole (decompressed) content of `path`.
std::vector<uint8_t> read_all(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  TESSERA_CHECK(file != nullptr, "cannot open IDX file ", path, ": ", std::strerror(errno));
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n > 0) {
      out.insert(out.end(), chunk.begin(), chunk.begin() + n);
      continue;
    }
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      detail::throw_error(detail::cat("IDX file ", path, " is truncated or corrupt: the gzip stream fails after ",
                                      out.size(), " bytes (zlib: ", message, ")"));
    }
    break;
  }
  gzclose(file);
  return out;
}
#else
// The output of `gzip -dc path`, read through a pipe (no shell, so any path is safe).
std::vector<uint8_t> gunzip(const std::string& path) {
  int fds[2];
  TESSERA_CHECK(::pipe(fds) == 0, "cannot decompress IDX file ", path, ": pipe: ", std::strerror(errno));
  const pid_t pid = ::fork();
  TESSERA_CHECK(pid >= 0, "cannot decompress IDX file ", path, ": fork: ", std::strerror(errno));
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execlp("gzip", "gzip", "-dc", "--", path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fds[0], chunk.data(), chunk.size());
    if (n > 0) out.insert(out.end(), chunk.begin(), chunk.begin() + n);
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  TESSERA_CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 127), "cannot decompress IDX file ", path,
                ": this build has no zlib and the `gzip` program was not found (install gzip, or rebuild with "
                "zlib1g-dev installed)");
  TESSERA_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "IDX file ", path,
                " is truncated or corrupt: `gzip -dc` fails after ", out.size(), " bytes");
  return out;
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TESSERA_CHECK(in.good(), "cannot open IDX file ", path, ": ", std::strerror(errno));
  std::vector<uint8_t> out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (out.size() >= 2 && out[0] == 0x1f && out[1] == 0x8b) return gunzip(path);
  return out;
}
#endif

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string out;
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? " x " : "") + std::to_string(dims[i]);
  return out;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::error_code ec;
  TESSERA_CHECK(std::filesystem::is_regular_file(path, ec), "IDX file ", path, " does not exist or is not a file");
  const std::vector<uint8_t> bytes = read_all(path);
  TESSERA_CHECK(bytes.size() >= 4, "IDX file ", path, " is truncated: expected a 4-byte magic number, found ",
                bytes.size(), " bytes");
  TESSERA_CHECK(bytes[0] == 0 && bytes[1] == 0 && bytes[3] >= 1 && bytes[3] <= 8, "IDX file ", path,
                " has a bad magic number (first bytes ", int{bytes[0]}, " ", int{bytes[1]}, " ", int{bytes[2]}, " ",
                int{bytes[3]}, "; expected 0 0 <type> <ndims> with 1..8 dims): not an IDX file");
  TESSERA_CHECK(bytes[2] == 0x08, "IDX file ", path, " has element type 0x", std::hex, int{bytes[2]},
                "; Tessera reads unsigned-byte (0x08) IDX files only");
  const size_t ndims = bytes[3];
  const size_t header = 4 + 4 * ndims;
  TESSERA_CHECK(bytes.size() >= header, "IDX file ", path, " is truncated: expected a ", header,
                "-byte header with ", ndims, " dimensions, found ", bytes.size(), " bytes");
  IdxArray array;
  uint64_t count = 1;
  for (size_t d = 0; d < ndims; ++d) {
    const uint32_t n = big_endian_u32(&bytes[4 + 4 * d]);
    array.dims.push_back(n);
    count *= n;
    TESSERA_CHECK(count < (uint64_t{1} << 40), "IDX file ", path, " declares an implausible size ",
                  dims_str(array.dims));
  }
  const uint64_t found = bytes.size() - header;
  TESSERA_CHECK(found >= count, "IDX file ", path, " is truncated: expected ", count, " bytes of data (",
                dims_str(array.dims), "), found ", found);
  TESSERA_CHECK(found == count, "IDX file ", path, " is corrupt: expected ", count, " bytes of data (",
                dims_str(array.dims), "), found ", found, " (", found - count, " trailing bytes)");
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

}  // namespace tessera::data
