// Byte-level BPE tokenizer: training, encoding, decoding and its tok.json file.
//
// defines: tessera::data::Tokenizer, TokenizerTrainOptions, pretokenize, kEndOfText,
//          kTokenizerFormat, kTokenizerVersion, kPretokenizerName
//
// Ids 0..255 are the 256 byte values, so any byte string (invalid UTF-8 and NUL included)
// encodes and decodes back exactly. Merge i joins two earlier tokens into token 256 + i; merges
// are learned by counting adjacent pairs over "chunks" of the training text and repeatedly
// merging the most frequent pair (ties: the smaller (left id, right id)), with incremental
// pair-count updates so each merge touches only the chunks that contain the pair. Special
// tokens (<|endoftext|>) take the ids after the merges; ordinary text never encodes to them.
//
// Chunks (pretokenize): merges never cross a chunk boundary. A chunk is a run of letters, a
// run of digits or a run of other non-space bytes, each with an optional single leading ' ',
// or a run of whitespace (a whitespace run that precedes a non-space byte leaves its last ' '
// to that byte's chunk). Letters are A-Z, a-z and every byte >= 0x80 (so UTF-8 words stay
// whole); whitespace is ' ', \t, \n, \v, \f, \r. This is GPT-2's rule without its contraction
// cases and Unicode classes.
//
// vocab_size counts every id: 256 bytes + merges + special tokens (--vocab 8192 with one special
// token learns 7935 merges). The file format is documented in framework/data/README.md.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tessera::data {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";
inline constexpr std::string_view kTokenizerFormat = "tessera-bpe";
inline constexpr int kTokenizerVersion = 1;
inline constexpr std::string_view kPretokenizerName = "tessera-chunks-v1";

// The chunks of `text` in order; their concatenation is `text`.
std::vector<std::string_view> pretokenize(std::string_view text);

struct TokenizerTrainOptions {
  int64_t vocab_size = 8192;  // total ids: 256 bytes + merges + special tokens
  std::vector<std::string> special_tokens{std::string(kEndOfText)};
  // Stop early (smaller vocabulary) when the most frequent pair occurs fewer times than this.
  int64_t min_pair_count = 2;
};

class Tokenizer {
 public:
  using Merge = std::pair<uint32_t, uint32_t>;

  // Validates that merge i only uses ids < 256 + i and that special tokens are distinct and
  // non-empty.
  Tokenizer(std::vector<Merge> merges, std::vector<std::string> special_tokens);

  static Tokenizer train(std::string_view text, const TokenizerTrainOptions& options = {});
  // Errors name the file and what is wrong with it (not JSON, wrong format or version,
  // vocab_size that does not match the merges and special tokens, a merge of unknown ids, ...).
  static Tokenizer load(const std::string& path);
  // Writes to a temporary name and renames it into place.
  void save(const std::string& path) const;

  int64_t vocab_size() const { return static_cast<int64_t>(token_bytes_.size()); }
  int64_t num_merges() const { return static_cast<int64_t>(merges_.size()); }
  const std::vector<Merge>& merges() const { return merges_; }
  const std::vector<std::string>& special_tokens() const { return special_tokens_; }
  // The id of a special token, e.g. special_id(kEndOfText); an error if there is none.
  uint32_t special_id(std::string_view text) const;
  bool is_special(uint32_t id) const { return id >= 256 + merges_.size() && id < token_bytes_.size(); }
  // The bytes a token stands for (a special token: its text).
  const std::string& token_bytes(uint32_t id) const;

  // Byte string -> ids. Text that looks like a special token is encoded as ordinary bytes.
  std::vector<uint32_t> encode(std::string_view bytes) const;
  void encode_append(std::string_view bytes, std::vector<uint32_t>& out) const;
  // Ids -> byte string; an id >= vocab_size() is an error.
  std::string decode(std::span<const uint32_t> ids) const;

 private:
  void encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const;
  int64_t merge_rank(uint32_t left, uint32_t right) const;  // -1 if the pair is not a merge

  std::vector<Merge> merges_;
  std::vector<std::string> special_tokens_;
  std::vector<std::string> token_bytes_;
  std::unordered_map<uint64_t, uint32_t> rank_of_pair_;
};

}  // namespace tessera::data
