// IDX reader: plain and gzip files, and an error naming the file for every kind of damage.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "framework/core/error.h"
#include "framework/data/idx.h"

namespace tessera::data {
namespace {

namespace fs = std::filesystem;

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tessera_idx_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> out{0, 0, 0x08, static_cast<uint8_t>(dims.size())};
    for (uint32_t d : dims)
      for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<uint8_t>(d >> shift));
    out.insert(out.end(), data.begin(), data.end());
    return out;
  }
  std::string write_plain(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string write_gzip(const std::string& name, const std::vector<uint8_t>& bytes) {
    // The gzip program, not zlib: the reader must handle files from the usual tool, and builds
    // without zlib run this test too.
    const std::string plain = write_plain(name + ".plain", bytes);
    const std::string path = (dir_ / name).string();
    const std::string command = "gzip -n -c '" + plain + "' > '" + path + "'";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return path;
  }
  static std::string error_of(const std::string& path) {
    try {
      read_idx(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

std::vector<uint8_t> ramp(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7);
  return v;
}

TEST_F(IdxTest, ReadsPlainFile) {
  const auto data = ramp(2 * 3 * 4);
  IdxArray a = read_idx(write_plain("a.idx", idx_bytes({2, 3, 4}, data)));
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxTest, ReadsGzipFileWhateverItsName) {
  const auto data = ramp(5000);
  IdxArray a = read_idx(write_gzip("labels.idx", idx_bytes({5000}, data)));
  EXPECT_EQ(a.dims, (std::vector<int64_t>{5000}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxTest, TruncatedDataNamesFileAndByteCounts) {
  auto bytes = idx_bytes({10, 28, 28}, ramp(10 * 28 * 28));
  bytes.resize(bytes.size() - 100);
  const std::string path = write_plain("short.idx", bytes);
  EXPECT_EQ(error_of(path), "IDX file " + path + " is truncated: expected 7840 bytes of data (10 x 28 x 28), found 7740");
}

TEST_F(IdxTest, TruncatedGzipStreamNamesFile) {
  const std::string full = write_gzip("full.gz", idx_bytes({4000}, ramp(4000)));
  std::ifstream in(full, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(bytes.size() / 2);
  const std::string path = write_plain("cut.gz", std::vector<uint8_t>(bytes.begin(), bytes.end()));
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(IdxTest, BadMagicIsAnError) {
  const std::string path = write_plain("bad.idx", {'P', 'K', 3, 4, 0, 0, 0, 0});
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path + " has a bad magic number"), std::string::npos) << msg;
}

TEST_F(IdxTest, UnsupportedElementTypeIsAnError) {
  const std::string path = write_plain("int.idx", {0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 5});
  EXPECT_NE(error_of(path).find("element type 0xc"), std::string::npos) << error_of(path);
}

TEST_F(IdxTest, TruncatedHeaderIsAnError) {
  const std::string path = write_plain("hdr.idx", {0, 0, 8, 3, 0, 0, 0, 2});
  EXPECT_NE(error_of(path).find("expected a 16-byte header with 3 dimensions, found 8 bytes"), std::string::npos)
      << error_of(path);
  EXPECT_NE(error_of(write_plain("tiny.idx", {0, 0})).find("expected a 4-byte magic number"), std::string::npos);
}

TEST_F(IdxTest, TrailingBytesAreAnError) {
  auto bytes = idx_bytes({3}, {1, 2, 3});
  bytes.push_back(9);
  EXPECT_NE(error_of(write_plain("long.idx", bytes)).find("1 trailing bytes"), std::string::npos);
}

TEST_F(IdxTest, MissingFileNamesPath) {
  const std::string path = (dir_ / "nope.idx").string();
  EXPECT_NE(error_of(path).find(path + " does not exist"), std::string::npos);
}

}  // namespace
}  // namespace tessera::data
