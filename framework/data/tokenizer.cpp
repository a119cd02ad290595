// Byte-level BPE: chunking, encoding with a merge heap, training with incremental pair counts,
// and the tok.json reader/writer. See tokenizer.h for the rules.
#include "framework/data/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <queue>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"

namespace tessera::data {

namespace {

enum class ByteClass : uint8_t { letter, digit, space, other };

ByteClass byte_class(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return ByteClass::letter;
  if (c >= '0' && c <= '9') return ByteClass::digit;
  if (c == ' ' || (c >= '\t' && c <= '\r')) return ByteClass::space;
  return ByteClass::other;
}

uint64_t pair_key(uint32_t left, uint32_t right) { return (static_cast<uint64_t>(left) << 32) | right; }

}  // namespace

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> chunks;
  const size_t n = text.size();
  auto cls = [&](size_t i) { return byte_class(static_cast<unsigned char>(text[i])); };
  size_t i = 0;
  while (i < n) {
    const size_t start = i;
    if (text[i] == ' ' && i + 1 < n && cls(i + 1) != ByteClass::space) {
      ++i;  // the optional leading space of the run that follows
    } else if (cls(i) == ByteClass::space) {
      size_t end = i;
      while (end < n && cls(end) == ByteClass::space) ++end;
      // Leave a final ' ' to the word after the run.
      if (end < n && text[end - 1] == ' ' && end - 1 > i) --end;
      chunks.push_back(text.substr(start, end - start));
      i = end;
      continue;
    }
    const ByteClass run = cls(i);
    while (i < n && cls(i) == run) ++i;
    chunks.push_back(text.substr(start, i - start));
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary and encoding

Tokenizer::Tokenizer(std::vector<Merge> merges, std::vector<std::string> special_tokens)
    : merges_(std::move(merges)), special_tokens_(std::move(special_tokens)) {
  token_bytes_.reserve(256 + merges_.size() + special_tokens_.size());
  for (int b = 0; b < 256; ++b) token_bytes_.emplace_back(1, static_cast<char>(b));
  rank_of_pair_.reserve(merges_.size());
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto [left, right] = merges_[i];
    const uint64_t limit = 256 + i;
    TESSERA_CHECK(left < limit && right < limit, "tokenizer: merge ", i, " = [", left, ", ", right,
                  "] uses an id that is not defined before it (ids must be < ", limit, ")");
    const bool inserted = rank_of_pair_.emplace(pair_key(left, right), static_cast<uint32_t>(i)).second;
    TESSERA_CHECK(inserted, "tokenizer: merge ", i, " = [", left, ", ", right, "] repeats an earlier merge");
    token_bytes_.push_back(token_bytes_[left] + token_bytes_[right]);
  }
  std::unordered_set<std::string> seen;
  for (const std::string& special : special_tokens_) {
    TESSERA_CHECK(!special.empty(), "tokenizer: a special token is the empty string");
    TESSERA_CHECK(seen.insert(special).second, "tokenizer: special token ", special, " is listed twice");
    token_bytes_.push_back(special);
  }
}

uint32_t Tokenizer::special_id(std::string_view text) const {
  for (size_t i = 0; i < special_tokens_.size(); ++i) {
    if (special_tokens_[i] == text) return static_cast<uint32_t>(256 + merges_.size() + i);
  }
  TESSERA_CHECK(false, "tokenizer: no special token ", text, " (it has ", special_tokens_.size(), " special tokens)");
  return 0;
}

const std::string& Tokenizer::token_bytes(uint32_t id) const {
  TESSERA_CHECK(id < token_bytes_.size(), "tokenizer: token id ", id, " is >= vocab size ", token_bytes_.size());
  return token_bytes_[id];
}

int64_t Tokenizer::merge_rank(uint32_t left, uint32_t right) const {
  const auto it = rank_of_pair_.find(pair_key(left, right));
  return it == rank_of_pair_.end() ? int64_t{-1} : static_cast<int64_t>(it->second);
}

// Repeatedly merges the lowest-rank adjacent pair, leftmost first. Symbols form a linked list;
// a min-heap holds (rank, position) candidates and stale ones are skipped when popped. A merge
// creates token 256 + rank, and merges using it have a higher rank, so every candidate of one
// rank is handled before any of the next: the same result as GPT-2's merge loop, in O(n log n).
void Tokenizer::encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const {
  const int64_t n = static_cast<int64_t>(chunk.size());
  if (n <= 1 || merges_.empty()) {
    for (char c : chunk) out.push_back(static_cast<unsigned char>(c));
    return;
  }
  constexpr uint32_t kDead = UINT32_MAX;
  std::vector<uint32_t> symbol(n);
  std::vector<int64_t> next(n);
  std::vector<int64_t> prev(n);
  for (int64_t i = 0; i < n; ++i) {
    symbol[i] = static_cast<unsigned char>(chunk[i]);
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  using Candidate = std::pair<int64_t, int64_t>;  // (rank, position of the left symbol)
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  for (int64_t i = 0; i + 1 < n; ++i) {
    const int64_t rank = merge_rank(symbol[i], symbol[i + 1]);
    if (rank >= 0) heap.emplace(rank, i);
  }
  while (!heap.empty()) {
    const auto [rank, pos] = heap.top();
    heap.pop();
    if (symbol[pos] == kDead || next[pos] >= n) continue;
    const int64_t right = next[pos];
    if (merge_rank(symbol[pos], symbol[right]) != rank) continue;  // stale candidate
    symbol[pos] = static_cast<uint32_t>(256 + rank);
    symbol[right] = kDead;
    next[pos] = next[right];
    if (next[pos] < n) prev[next[pos]] = pos;
    if (prev[pos] >= 0) {
      const int64_t r = merge_rank(symbol[prev[pos]], symbol[pos]);
      if (r >= 0) heap.emplace(r, prev[pos]);
    }
    if (next[pos] < n) {
      const int64_t r = merge_rank(symbol[pos], symbol[next[pos]]);
      if (r >= 0) heap.emplace(r, pos);
    }
  }
  for (int64_t i = 0; i < n; i = next[i]) out.push_back(symbol[i]);
}

void Tokenizer::encode_append(std::string_view bytes, std::vector<uint32_t>& out) const {
  // Natural text repeats its chunks; remember the ids of short ones for this call.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;  // chunk -> [begin, end) in out
  for (std::string_view chunk : pretokenize(bytes)) {
    const bool cacheable = chunk.size() <= 32;
    if (cacheable) {
      const auto it = seen.find(chunk);
      if (it != seen.end()) {
        const auto [begin, end] = it->second;
        for (size_t i = begin; i < end; ++i) out.push_back(out[i]);
        continue;
      }
    }
    const size_t begin = out.size();
    encode_chunk(chunk, out);
    if (cacheable) seen.emplace(chunk, std::make_pair(begin, out.size()));
  }
}

std::vector<uint32_t> Tokenizer::encode(std::string_view bytes) const {
  std::vector<uint32_t> ids;
  ids.reserve(bytes.size() / 3 + 1);
  encode_append(bytes, ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const uint32_t> ids) const {
  std::string text;
  for (uint32_t id : ids) text += token_bytes(id);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Training

namespace {

struct PairCandidate {
  int64_t count;
  uint64_t key;
  // The heap's top is the most frequent pair; ties go to the smaller (left, right).
  bool operator<(const PairCandidate& other) const {
    return count != other.count ? count < other.count : key > other.key;
  }
};

}  // namespace

Tokenizer Tokenizer::train(std::string_view text, const TokenizerTrainOptions& options) {
  const int64_t specials = static_cast<int64_t>(options.special_tokens.size());
  TESSERA_CHECK(options.vocab_size >= 256 + specials, "tokenizer train: vocab size ", options.vocab_size,
                " is smaller than 256 byte tokens + ", specials, " special tokens");
  TESSERA_CHECK(options.vocab_size <= (int64_t{1} << 31), "tokenizer train: vocab size ", options.vocab_size,
                " is too large");
  TESSERA_CHECK(options.min_pair_count >= 1, "tokenizer train: min_pair_count must be >= 1, got ",
                options.min_pair_count);
  const int64_t target_merges = options.vocab_size - 256 - specials;

  // Distinct chunks with their counts, in byte order so the word numbering is deterministic.
  std::unordered_map<std::string_view, int64_t> chunk_counts;
  for (std::string_view chunk : pretokenize(text)) {
    if (chunk.size() >= 2) ++chunk_counts[chunk];
  }
  std::vector<std::pair<std::string_view, int64_t>> distinct(chunk_counts.begin(), chunk_counts.end());
  chunk_counts.clear();
  std::sort(distinct.begin(), distinct.end());

  std::vector<std::vector<uint32_t>> words(distinct.size());
  std::vector<int64_t> word_count(distinct.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> words_with_pair;  // may hold stale entries
  for (size_t w = 0; w < distinct.size(); ++w) {
    const auto [chunk, count] = distinct[w];
    words[w].assign(chunk.begin(), chunk.end());
    for (auto& id : words[w]) id &= 0xff;  // char -> byte value
    word_count[w] = count;
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t key = pair_key(words[w][i], words[w][i + 1]);
      pair_count[key] += count;
      auto& list = words_with_pair[key];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
    }
  }
  std::priority_queue<PairCandidate> heap;
  for (const auto& [key, count] : pair_count) heap.push({count, key});

  std::vector<Merge> merges;
  merges.reserve(target_merges);
  std::unordered_map<uint64_t, int64_t> delta;
  std::vector<uint32_t> merged;
  while (static_cast<int64_t>(merges.size()) < target_merges && !heap.empty()) {
    const PairCandidate top = heap.top();
    heap.pop();
    const auto current = pair_count.find(top.key);
    if (current == pair_count.end() || current->second != top.count) continue;  // stale entry
    if (top.count < options.min_pair_count) break;
    const uint32_t left = static_cast<uint32_t>(top.key >> 32), right = static_cast<uint32_t>(top.key);
    const uint32_t new_id = static_cast<uint32_t>(256 + merges.size());
    merges.emplace_back(left, right);

    std::vector<uint32_t> affected = std::move(words_with_pair[top.key]);
    words_with_pair.erase(top.key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    delta.clear();
    for (uint32_t w : affected) {
      std::vector<uint32_t>& word = words[w];
      merged.clear();
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
          merged.push_back(new_id);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      if (merged.size() == word.size()) continue;  // a stale index entry
      const int64_t count = word_count[w];
      for (size_t i = 0; i + 1 < word.size(); ++i) delta[pair_key(word[i], word[i + 1])] -= count;
      for (size_t i = 0; i + 1 < merged.size(); ++i) {
        const uint64_t key = pair_key(merged[i], merged[i + 1]);
        delta[key] += count;
        if (merged[i] == new_id || merged[i + 1] == new_id) {
          auto& list = words_with_pair[key];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
      word.swap(merged);
    }
    for (const auto& [key, change] : delta) {
      if (change == 0) continue;
      const int64_t count = (pair_count[key] += change);
      TESSERA_ASSERT(count >= 0, "negative pair count");
      if (count == 0) {
        pair_count.erase(key);
      } else {
        heap.push({count, key});
      }
    }
  }
  return Tokenizer(std::move(merges), options.special_tokens);
}

// ---------------------------------------------------------------------------------------------
// tok.json

void Tokenizer::save(const std::string& path) const {
  using nlohmann::json;
  std::ostringstream out;
  try {
    out << "{\n";
    out << "  \"format\": " << json(kTokenizerFormat).dump() << ",\n";
    out << "  \"version\": " << kTokenizerVersion << ",\n";
    out << "  \"pretokenizer\": " << json(kPretokenizerName).dump() << ",\n";
    out << "  \"vocab_size\": " << vocab_size() << ",\n";
    out << "  \"byte_tokens\": 256,\n";
    out << "  \"special_tokens\": [";
    for (size_t i = 0; i < special_tokens_.size(); ++i) {
      out << (i ? ", " : "") << "{\"id\": " << 256 + merges_.size() + i
          << ", \"text\": " << json(special_tokens_[i]).dump() << "}";
    }
    out << "],\n";
    out << "  \"merges\": [";
    for (size_t i = 0; i < merges_.size(); ++i) {
      out << (i ? ",\n    " : "\n    ") << "[" << merges_[i].first << ", " << merges_[i].second << "]";
    }
    out << (merges_.empty() ? "]\n" : "\n  ]\n") << "}\n";
  } catch (const json::exception& e) {
    TESSERA_CHECK(false, "tokenizer file '", path, "': a special token is not valid UTF-8 (", e.what(), ")");
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    TESSERA_CHECK(file.good(), "tokenizer file '", path, "': cannot open '", tmp, "' for writing");
    const std::string body = out.str();
    file.write(body.data(), static_cast<std::streamsize>(body.size()));
    file.close();
    TESSERA_CHECK(file.good(), "tokenizer file '", path, "': write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  TESSERA_CHECK(!ec, "tokenizer file '", path, "': cannot rename '", tmp, "' into place: ", ec.message());
}

Tokenizer Tokenizer::load(const std::string& path) {
  using nlohmann::json;
  std::ifstream file(path, std::ios::binary);
  TESSERA_CHECK(file.good(), "tokenizer file '", path, "': cannot open it for reading");
  json doc;
  try {
    doc = json::parse(file);
  } catch (const json::exception& e) {
    TESSERA_CHECK(false, "tokenizer file '", path, "': not valid JSON (", e.what(), ")");
  }
  auto fail = [&](const std::string& what) { detail::throw_error(detail::cat("tokenizer file '", path, "': ", what)); };
  try {
    if (!doc.is_object()) fail("expected a JSON object");
    if (doc.value("format", std::string()) != kTokenizerFormat) {
      fail(detail::cat("\"format\" is not \"", kTokenizerFormat, "\" (not a Tessera tokenizer)"));
    }
    for (const char* key : {"version", "pretokenizer", "vocab_size", "byte_tokens", "merges", "special_tokens"}) {
      if (!doc.contains(key)) fail(detail::cat("missing field \"", key, "\""));
    }
    const int version = doc.at("version").get<int>();
    if (version != kTokenizerVersion) {
      fail(detail::cat("unsupported version ", version, " (this build reads version ", kTokenizerVersion, ")"));
    }
    const std::string pretokenizer = doc.at("pretokenizer").get<std::string>();
    if (pretokenizer != kPretokenizerName) {
      fail(detail::cat("unknown pretokenizer \"", pretokenizer, "\" (expected \"", kPretokenizerName, "\")"));
    }
    if (doc.at("byte_tokens").get<int64_t>() != 256) fail("\"byte_tokens\" must be 256");
    const json& merge_list = doc.at("merges");
    if (!merge_list.is_array()) fail("\"merges\" is not an array");
    std::vector<Merge> merges;
    merges.reserve(merge_list.size());
    for (size_t i = 0; i < merge_list.size(); ++i) {
      const json& m = merge_list[i];
      if (!m.is_array() || m.size() != 2 || !m[0].is_number_unsigned() || !m[1].is_number_unsigned()) {
        fail(detail::cat("merge ", i, " is not a pair of non-negative integers: ", m.dump()));
      }
      const uint64_t a = m[0].get<uint64_t>(), b = m[1].get<uint64_t>();
      if (a >= 256 + i || b >= 256 + i) {
        fail(detail::cat("merge ", i, " = ", m.dump(), " uses an id that is not defined before it (ids must be < ",
                         256 + i, ")"));
      }
      merges.emplace_back(static_cast<uint32_t>(a), static_cast<uint32_t>(b));
    }
    const json& special_list = doc.at("special_tokens");
    if (!special_list.is_array()) fail("\"special_tokens\" is not an array");
    std::vector<std::string> specials;
    for (size_t i = 0; i < special_list.size(); ++i) {
      const int64_t expected_id = static_cast<int64_t>(256 + merges.size() + i);
      const int64_t id = special_list[i].at("id").get<int64_t>();
      if (id != expected_id) {
        fail(detail::cat("special token ", i, " has id ", id, ", expected ", expected_id,
                         " (special tokens follow the merges)"));
      }
      specials.push_back(special_list[i].at("text").get<std::string>());
    }
    const int64_t vocab = doc.at("vocab_size").get<int64_t>();
    const int64_t implied = static_cast<int64_t>(256 + merges.size() + specials.size());
    if (vocab != implied) {
      fail(detail::cat("vocab_size ", vocab, " does not match 256 bytes + ", merges.size(), " merges + ",
                       specials.size(), " special tokens = ", implied));
    }
    try {
      return Tokenizer(std::move(merges), std::move(specials));
    } catch (const Error& e) {
      fail(e.what());
    }
  } catch (const json::exception& e) {
    fail(detail::cat("a field has the wrong type (", e.what(), ")"));
  }
  return Tokenizer({}, {});  // unreachable: fail() throws
}

}  // namespace tessera::data
