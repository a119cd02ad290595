// Safetensors: round trips of every dtype, the on-disk layout, atomic replacement, and one
// test per kind of corruption (each error must name the file).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "framework/ops/ops.h"
#include "framework/train/safetensors.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera_safetensors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a file from a header string and a data section.
  std::string raw(const std::string& name, const std::string& header, const std::string& data) {
    const std::string path = file(name);
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << data;
    return path;
  }
  // Expects loading `path` to fail with a message naming the file and containing `what`.
  void expect_error(const std::string& path, const std::string& what) {
    try {
      load_safetensors(path);
      ADD_FAILURE() << "expected an error containing: " << what;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripsEveryDtypeAndMetadata) {
  Generator gen(9);
  nn::StateDict state;
  for (DType d : {DType::f64, DType::f32, DType::bf16, DType::f16})
    state.emplace_back(std::string("float.") + dtype_name(d), randn({3, 5}, 0, 1, d, Device::cpu(), &gen));
  state.emplace_back("int.i64", Tensor::from_vector(std::vector<int64_t>{-(int64_t{1} << 60), 0, 7}, {3}));
  state.emplace_back("int.i32", Tensor::from_vector(std::vector<double>{-2147483648.0, 5, 2147483647.0}, {3}, DType::i32));
  state.emplace_back("int.u8", Tensor::from_vector(std::vector<double>{0, 128, 255, 1}, {2, 2}, DType::u8));
  state.emplace_back("scalar", Tensor::full({}, 3.5, DType::f32));
  state.emplace_back("empty", Tensor::zeros({0, 4}, DType::f32));
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "120"}};
  const std::string path = file("all.safetensors");
  save_safetensors(path, state, meta);
  const nn::StateDict loaded = load_safetensors(path);
  ASSERT_EQ(loaded.size(), state.size());
  for (const auto& [name, t] : state) {
    auto it = std::find_if(loaded.begin(), loaded.end(), [&](const auto& e) { return e.first == name; });
    ASSERT_NE(it, loaded.end()) << name;
    EXPECT_EQ(it->second.dtype(), t.dtype()) << name;
    EXPECT_EQ(it->second.shape(), t.shape()) << name;
    ASSERT_EQ(it->second.nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(it->second.data_ptr(), t.data_ptr(), t.nbytes()), 0) << name;  // bit exact
  }
  EXPECT_EQ(load_safetensors_metadata(path), meta);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(SafetensorsTest, LayoutFollowsTheSpecification) {
  const std::string path = file("layout.safetensors");
  save_safetensors(path, {{"b", Tensor::ones({2}, DType::f64)}, {"a", Tensor::full({3}, 2.0, DType::bf16)}},
                   {{"k", "v"}});
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ((8 + n) % 8, 0u);  // data 8-byte aligned
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  const auto json = nlohmann::json::parse(header);
  EXPECT_EQ(json["a"]["dtype"], "BF16");
  EXPECT_EQ(json["a"]["shape"], nlohmann::json::array({3}));
  EXPECT_EQ(json["a"]["data_offsets"], nlohmann::json::array({0, 6}));  // name order
  EXPECT_EQ(json["b"]["data_offsets"], nlohmann::json::array({6, 22}));
  EXPECT_EQ(json["__metadata__"]["k"], "v");
  EXPECT_EQ(fs::file_size(path), 8 + n + 22);
}

TEST_F(SafetensorsTest, ReadsAHandWrittenFile) {
  // The example of the format description: a 2x2 F32 tensor and a U8 vector.
  std::string data(16, '\0');
  const float values[4] = {1.0f, -2.0f, 0.5f, 8.0f};
  std::memcpy(data.data(), values, 16);
  data += std::string("\x01\x02\x03", 3);
  const std::string path =
      raw("hand.safetensors",
          R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"u":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}   )",
          data);
  const nn::StateDict s = load_safetensors(path);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].first, "w");
  EXPECT_EQ(s[0].second.to_vector<float>(), (std::vector<float>{1.0f, -2.0f, 0.5f, 8.0f}));
  EXPECT_EQ(s[1].second.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(SafetensorsTest, NonContiguousTensorIsSavedInLogicalOrder) {
  const Tensor base = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  const std::string path = file("t.safetensors");
  save_safetensors(path, {{"t", base.transpose(0, 1)}});
  EXPECT_EQ(load_safetensors(path)[0].second.to_vector<double>(), (std::vector<double>{1, 4, 2, 5, 3, 6}));
}

TEST_F(SafetensorsTest, SaveReplacesAtomicallyAndFailureKeepsTheOldFile) {
  const std::string path = file("ckpt.safetensors");
  save_safetensors(path, {{"x", Tensor::ones({2})}});
  save_safetensors(path, {{"x", Tensor::full({2}, 3.0)}});
  EXPECT_EQ(load_safetensors(path)[0].second.to_vector<float>(), (std::vector<float>{3, 3}));
  // A failing save (duplicate names) leaves the previous file untouched.
  EXPECT_THROW(save_safetensors(path, {{"x", Tensor::ones({1})}, {"x", Tensor::ones({1})}}), Error);
  EXPECT_EQ(load_safetensors(path)[0].second.to_vector<float>(), (std::vector<float>{3, 3}));
  try {
    save_safetensors(file("missing_dir/x.safetensors"), {{"x", Tensor::ones({1})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing_dir/x.safetensors.tmp"), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsTest, MissingFileNamesFile) { expect_error(file("nope.safetensors"), "cannot open"); }

TEST_F(SafetensorsTest, TruncatedFileNamesFile) {
  const std::string path = file("short.safetensors");
  std::ofstream(path, std::ios::binary) << "abc";
  expect_error(path, "shorter than the 8-byte header length");
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFileNamesFile) {
  const std::string path = file("long.safetensors");
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  expect_error(path, "header length 1000 goes beyond the end of the file");
}

TEST_F(SafetensorsTest, HeaderNotJsonNamesFile) {
  expect_error(raw("bad.safetensors", "{\"a\": [", ""), "header is not valid JSON");
  expect_error(raw("array.safetensors", "[1, 2]", ""), "header is not a JSON object");
}

TEST_F(SafetensorsTest, UnknownDtypeNamesFile) {
  expect_error(raw("dtype.safetensors", R"({"x":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "a"),
               "unknown dtype \"BOOL\"");
}

TEST_F(SafetensorsTest, MalformedEntryNamesFile) {
  expect_error(raw("noshape.safetensors", R"({"x":{"dtype":"U8","data_offsets":[0,1]}})", "a"), "\"shape\"");
  expect_error(raw("negshape.safetensors", R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "a"),
               "negative");
  expect_error(raw("huge.safetensors",
                   R"({"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""),
               "is too large");
  expect_error(raw("meta.safetensors", R"({"__metadata__":{"a":1}})", ""), "__metadata__");
}

TEST_F(SafetensorsTest, OffsetsOutOfRangeNamesFile) {
  expect_error(raw("range.safetensors", R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "ab"),
               "out of range");
  expect_error(raw("reversed.safetensors", R"({"x":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}})", "ab"),
               "out of range");
}

TEST_F(SafetensorsTest, SizeNotMatchingShapeNamesFile) {
  expect_error(raw("size.safetensors", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
               "shape [2] of F32 needs 8");
}

TEST_F(SafetensorsTest, OverlappingTensorsNameFile) {
  expect_error(raw("overlap.safetensors",
                   R"({"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"y":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                   "abcd"),
               "overlap");
}

TEST_F(SafetensorsTest, GapAndTrailingBytesAreRejected) {
  expect_error(raw("gap.safetensors",
                   R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"y":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})",
                   "abc"),
               "belong to no tensor");
  expect_error(raw("trailing.safetensors", R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "abc"),
               "2 trailing bytes");
}

}  // namespace
}  // namespace tessera::train
