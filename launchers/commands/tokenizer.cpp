// `tessera tokenizer`: train a byte-level BPE tokenizer and encode/decode with it.
//
//   tessera tokenizer train --input data/brown/brown.txt --vocab 8192 --out tok.json
//   tessera tokenizer encode --tokenizer tok.json --text "Hello world"       (ids on stdout)
//   tessera tokenizer encode --tokenizer tok.json --input FILE --stats       (counts, round-trip check)
//   tessera tokenizer decode --tokenizer tok.json --ids "15496 995"          (bytes on stdout)
//
// The tokenizer itself is framework/data/tokenizer.h.
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "framework/core/error.h"
#include "framework/data/tokenizer.h"
#include "launchers/command.h"

namespace {

using namespace tessera;

std::string read_file(const std::string& path, const char* flag) {
  std::ifstream file(path, std::ios::binary);
  TESSERA_CHECK(file.good(), flag, ": cannot read '", path, "'");
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

struct TrainOptions {
  std::string input;
  std::string out;
  int64_t vocab = 8192;
  int64_t min_pair_count = 2;
  std::vector<std::string> special{std::string(data::kEndOfText)};
};

void run_train(const TrainOptions& o) {
  const std::string text = read_file(o.input, "--input");
  data::TokenizerTrainOptions options;
  options.vocab_size = o.vocab;
  options.special_tokens = o.special;
  options.min_pair_count = o.min_pair_count;
  const auto start = std::chrono::steady_clock::now();
  const data::Tokenizer tokenizer = data::Tokenizer::train(text, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  tokenizer.save(o.out);
  std::cout << "learned " << tokenizer.num_merges() << " merges (vocab " << tokenizer.vocab_size() << " = 256 bytes + "
            << tokenizer.num_merges() << " merges + " << tokenizer.special_tokens().size() << " special) from "
            << text.size() << " bytes in " << seconds << " s; wrote " << o.out << std::endl;
  if (tokenizer.vocab_size() < o.vocab) {
    std::cout << "note: stopped early: no pair occurs " << o.min_pair_count << " or more times" << std::endl;
  }
}

struct EncodeOptions {
  std::string tokenizer;
  std::string input;
  std::string text;
  bool stats = false;
};

void run_encode(const EncodeOptions& o) {
  TESSERA_CHECK(o.input.empty() != o.text.empty(), "tokenizer encode: give exactly one of --input and --text");
  const data::Tokenizer tokenizer = data::Tokenizer::load(o.tokenizer);
  const std::string text = o.input.empty() ? o.text : read_file(o.input, "--input");
  const auto start = std::chrono::steady_clock::now();
  const std::vector<uint32_t> ids = tokenizer.encode(text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (o.stats) {
    const bool exact = tokenizer.decode(ids) == text;
    std::cout << text.size() << " bytes -> " << ids.size() << " tokens ("
              << (ids.empty() ? 0.0 : static_cast<double>(text.size()) / ids.size()) << " bytes/token) in " << seconds
              << " s; round trip " << (exact ? "exact" : "MISMATCH") << std::endl;
    TESSERA_CHECK(exact, "tokenizer encode: decode(encode(text)) differs from the text");
    return;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << std::endl;
}

struct DecodeOptions {
  std::string tokenizer;
  std::string ids;
  std::string input;
};

void run_decode(const DecodeOptions& o) {
  TESSERA_CHECK(o.input.empty() != o.ids.empty(), "tokenizer decode: give exactly one of --input and --ids");
  const data::Tokenizer tokenizer = data::Tokenizer::load(o.tokenizer);
  std::istringstream in(o.input.empty() ? o.ids : read_file(o.input, "--input"));
  std::vector<uint32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    unsigned long long id = 0;
    try {
      id = std::stoull(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TESSERA_CHECK(used == word.size() && id <= UINT32_MAX, "tokenizer decode: '", word, "' is not a token id");
    ids.push_back(static_cast<uint32_t>(id));
  }
  const std::string bytes = tokenizer.decode(ids);
  std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::cout.flush();
}

}  // namespace

TESSERA_COMMAND(tokenizer, "Train a byte-level BPE tokenizer; encode and decode text with it", [](CLI::App& app) {
  app.require_subcommand(1);

  auto train = std::make_shared<TrainOptions>();
  auto* train_cmd = app.add_subcommand(
      "train",
      "Learn byte-level BPE merges from a text file and write tok.json. The vocabulary is the 256 bytes,\n"
      "the merges and the special tokens (--vocab counts all of them). Merges stay inside chunks: letter\n"
      "runs, digit runs and other-symbol runs (each with an optional leading space) and whitespace runs.");
  train_cmd->add_option("--input", train->input, "Training text file")->required()->check(CLI::ExistingFile);
  train_cmd->add_option("--vocab", train->vocab, "Vocabulary size: 256 bytes + merges + special tokens")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{257}, int64_t{1} << 24));
  train_cmd->add_option("--out", train->out, "Output tokenizer file (tok.json)")->required();
  train_cmd->add_option("--special", train->special, "Special tokens, in id order")->capture_default_str();
  train_cmd->add_option("--min-pair-count", train->min_pair_count,
                        "Stop early when the most frequent pair occurs fewer times than this")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->callback([train] { run_train(*train); });

  auto encode = std::make_shared<EncodeOptions>();
  auto* encode_cmd = app.add_subcommand("encode", "Print the token ids of a text (or, with --stats, only counts)");
  encode_cmd->add_option("--tokenizer", encode->tokenizer, "tok.json")->required()->check(CLI::ExistingFile);
  encode_cmd->add_option("--input", encode->input, "Text file to encode")->check(CLI::ExistingFile);
  encode_cmd->add_option("--text", encode->text, "Text to encode");
  encode_cmd->add_flag("--stats", encode->stats, "Print byte and token counts and check the round trip");
  encode_cmd->callback([encode] { run_encode(*encode); });

  auto decode = std::make_shared<DecodeOptions>();
  auto* decode_cmd = app.add_subcommand("decode", "Write the bytes of whitespace-separated token ids to stdout");
  decode_cmd->add_option("--tokenizer", decode->tokenizer, "tok.json")->required()->check(CLI::ExistingFile);
  decode_cmd->add_option("--ids", decode->ids, "Token ids, e.g. \"464 3290\"");
  decode_cmd->add_option("--input", decode->input, "File of token ids")->check(CLI::ExistingFile);
  decode_cmd->callback([decode] { run_decode(*decode); });
});
