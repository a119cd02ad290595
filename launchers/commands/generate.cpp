// `tessera generate`: text from a GPT-MTP checkpoint, greedy or sampled, optionally speculative.
//
//   tessera generate --checkpoint runs/tiny --prompt "The jury said" --max-tokens 60
//   tessera generate --checkpoint runs/tiny --prompt "The jury said" --temperature 0.8 --top-p 0.9 --seed 1
//   tessera generate --checkpoint runs/tiny --prompt "The jury said" --speculative
//
// The checkpoint's state.json describes the model ("model"); its weights are model.safetensors.
// The tokenizer is --tokenizer, else RUN/tokenizer.json (copied there by `tessera train`), else
// the path recorded in state.json. The continuation goes to stdout (after the prompt, unless
// --no-echo); statistics (tokens/s, stop reason, speculative acceptance) go to stderr. Decoding
// itself is framework/models/gpt_mtp_generate.h.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "framework/core/error.h"
#include "framework/data/tokenizer.h"
#include "framework/models/gpt_mtp.h"
#include "framework/models/gpt_mtp_generate.h"
#include "framework/train/checkpoint.h"
#include "launchers/command.h"

namespace {

using namespace tessera;
namespace fs = std::filesystem;

struct GenerateFlags {
  std::string checkpoint;
  std::string prompt;
  int64_t max_tokens = 64;
  double temperature = 0.0;
  double top_p = 1.0;
  uint64_t seed = 0;
  std::string tokenizer;
  bool speculative = false;
  std::string device = "cpu";
  std::string dtype = "auto";
  bool ignore_eos = false;
  bool no_echo = false;
  bool print_ids = false;
};

// --tokenizer, else RUN/tokenizer.json next to the checkpoints, else state.json's "tokenizer".
std::string find_tokenizer(const GenerateFlags& f, const std::string& checkpoint_dir, const nlohmann::json& state) {
  if (!f.tokenizer.empty()) return f.tokenizer;
  std::vector<std::string> tried;
  const fs::path run_copy = fs::path(checkpoint_dir).parent_path().parent_path() / "tokenizer.json";
  if (fs::exists(run_copy)) return run_copy.string();
  tried.push_back(run_copy.string());
  const std::string recorded = state.value("tokenizer", "");
  if (!recorded.empty()) {
    if (fs::exists(recorded)) return recorded;
    tried.push_back(recorded);
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  detail::throw_error(detail::cat("generate: no tokenizer for checkpoint ", checkpoint_dir, " (tried ", list,
                                  "); pass --tokenizer tok.json"));
}

void run_generate(const GenerateFlags& f) {
  const Device device = Device::parse(f.device);
  require_device(device);
  const train::Checkpoint ckpt = train::load_job_checkpoint("--checkpoint", f.checkpoint, "gpt_mtp");
  const std::string& dir = ckpt.dir;
  const models::GptMtpOptions options =
      models::GptMtpOptions::from_json(ckpt.state.at("model"), (fs::path(dir) / "state.json").string());
  models::GptMtp model(options);
  model.load_state_dict(ckpt.file("model"));
  TESSERA_CHECK(f.dtype == "auto" || f.dtype == "f32" || f.dtype == "bf16", "--dtype must be auto, f32 or bf16, got ",
                f.dtype);
  const DType dtype = f.dtype == "bf16" || (f.dtype == "auto" && device.is_cuda()) ? DType::bf16 : DType::f32;
  model.to(device);
  model.to(dtype);
  model.set_compute_dtype(dtype);

  const data::Tokenizer tokenizer = data::Tokenizer::load(find_tokenizer(f, dir, ckpt.state));
  TESSERA_CHECK(tokenizer.vocab_size() <= options.vocab_size, "generate: the tokenizer has ", tokenizer.vocab_size(),
                " ids but the model only ", options.vocab_size);
  std::vector<int64_t> prompt;
  for (uint32_t id : tokenizer.encode(f.prompt)) prompt.push_back(id);
  TESSERA_CHECK(!prompt.empty(), "generate: --prompt is empty");

  models::GenerateOptions g;
  g.max_tokens = f.max_tokens;
  g.temperature = f.temperature;
  g.top_p = f.top_p;
  g.seed = f.seed;
  g.speculative = f.speculative;
  bool has_eos = false;
  for (const auto& s : tokenizer.special_tokens()) has_eos = has_eos || s == data::kEndOfText;
  if (has_eos && !f.ignore_eos) g.stop_token = tokenizer.special_id(data::kEndOfText);

  const auto start = std::chrono::steady_clock::now();
  const models::GenerateResult r = models::generate(model, prompt, g);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<uint32_t> ids;
  for (int64_t id : r.tokens)
    if (!tokenizer.is_special(static_cast<uint32_t>(id)) && id < tokenizer.vocab_size())
      ids.push_back(static_cast<uint32_t>(id));
  if (f.print_ids) {
    for (size_t i = 0; i < r.tokens.size(); ++i) std::cout << (i ? " " : "") << r.tokens[i];
    std::cout << "\n";
  } else {
    std::cout << (f.no_echo ? "" : f.prompt) << tokenizer.decode(ids) << "\n";
  }
  std::cout.flush();
  std::fprintf(stderr, "generated %zu tokens in %.2f s (%.1f tokens/s, %lld trunk steps after the %zu-token prompt), "
               "stopped: %s\n",
               r.tokens.size(), seconds, seconds > 0 ? static_cast<double>(r.tokens.size()) / seconds : 0.0,
               static_cast<long long>(r.trunk_steps), prompt.size(), r.stop_reason.c_str());
  if (f.speculative) {
    std::string per_depth;
    for (size_t k = 0; k < r.accepted_at_depth.size(); ++k)
      per_depth += (k ? ", " : "") + std::to_string(r.accepted_at_depth[k]);
    std::fprintf(stderr, "speculative (%s, depth %lld): acceptance rate %.3f (%lld of %lld drafts; accepted by depth: "
                 "%s), %.2f tokens per trunk step\n",
                 options.mtp_kind.c_str(), static_cast<long long>(options.depth()), r.acceptance_rate(),
                 static_cast<long long>(r.accepted), static_cast<long long>(r.drafted), per_depth.c_str(),
                 r.trunk_steps > 0 ? static_cast<double>(r.tokens.size() - 1) / r.trunk_steps : 0.0);
  }
}

}  // namespace

TESSERA_COMMAND(generate,
                "Generate text from a GPT-MTP checkpoint with a KV cache: greedy (default) or sampled "
                "(--temperature, --top-p); --speculative drafts with the model's MTP/Medusa heads",
                [](CLI::App& app) {
                  auto f = std::make_shared<GenerateFlags>();
                  app.add_option("--checkpoint", f->checkpoint,
                                 "Run directory (its latest checkpoints/step_<N>/) or a step_<N> directory")
                      ->required();
                  app.add_option("--prompt", f->prompt, "Text to continue")->required();
                  app.add_option("--max-tokens", f->max_tokens, "Tokens to generate at most")
                      ->capture_default_str()
                      ->check(CLI::NonNegativeNumber);
                  app.add_option("--temperature", f->temperature, "0: greedy; > 0: sample from softmax(logits / T)")
                      ->capture_default_str()
                      ->check(CLI::NonNegativeNumber);
                  app.add_option("--top-p", f->top_p, "Nucleus sampling: keep the most likely tokens up to this mass")
                      ->capture_default_str()
                      ->check(CLI::Range(0.0, 1.0));
                  app.add_option("--seed", f->seed, "Seed of the sampler")->capture_default_str();
                  app.add_option("--tokenizer", f->tokenizer,
                                 "tok.json (default: RUN/tokenizer.json, else the one recorded in the checkpoint)");
                  app.add_flag("--speculative", f->speculative,
                               "Greedy speculative decoding: the MTP/Medusa heads draft, the main model verifies "
                               "(same output as greedy; reports the acceptance rate)");
                  app.add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
                  app.add_option("--dtype", f->dtype, "auto (bf16 on CUDA, f32 on CPU), f32 or bf16")
                      ->capture_default_str();
                  app.add_flag("--ignore-eos", f->ignore_eos, "Do not stop at <|endoftext|>");
                  app.add_flag("--no-echo", f->no_echo, "Print only the continuation, not the prompt");
                  app.add_flag("--print-ids", f->print_ids, "Print the generated token ids instead of text");
                  app.callback([f] { run_generate(*f); });
                });
