// Reading and validating the `gpt_mtp` job's config keys (gpt_mtp_settings.h).
#include "framework/train/jobs/gpt_mtp_settings.h"

#include <algorithm>

#include "framework/core/error.h"
#include "framework/optim/schedule.h"
#include "framework/train/dp_optimizer.h"

namespace tessera::train {
std::string gpt_mtp_data_hint(const std::string& data_dir, int64_t vocab_size) {
  const std::string vocab = vocab_size > 256 ? std::to_string(vocab_size) : std::string("8192");
  return detail::cat("create it from the Brown corpus with\n",
                     "  tessera data prepare brown --out data/brown\n",
                     "  mkdir -p ", data_dir, "\n",
                     "  tessera tokenizer train --input data/brown/brown.txt --vocab ", vocab, " --out ", data_dir,
                     "/tok.json\n",
                     "  tessera data tokenize --tokenizer ", data_dir, "/tok.json --input data/brown/brown.txt --out ",
                     data_dir, "\n",
                     "(examples/gpt_mtp/run.sh does this), or set config key `data.dir` to a directory holding ",
                     "train.bin and val.bin");
}

GptMtpSettings read_gpt_mtp_settings(const Config& c) {
  GptMtpSettings s;
  models::GptMtpOptions& m = s.model;
  s.seed = static_cast<uint64_t>(c.get_int("seed", 0));
  s.data_dir = c.get_string("data.dir", "data/brown/tok8192");
  s.tokenizer = c.get_string("data.tokenizer", "");

  m.vocab_size = c.get_int("model.vocab_size");
  m.context = c.get_int("model.context", m.context);
  m.n_layers = c.get_int("model.n_layers", m.n_layers);
  m.dim = c.get_int("model.dim", m.dim);
  m.n_heads = c.get_int("model.n_heads", m.n_heads);
  m.n_kv_heads = c.get_int("model.n_kv_heads", 0);
  m.norm = c.get_string("model.norm", m.norm);
  m.norm_eps = c.get_double("model.norm_eps", m.norm_eps);
  m.positions = c.get_string("model.positions", m.positions);
  if (m.positions == "rope") m.rope_theta = c.get_double("model.rope_theta", m.rope_theta);
  m.mlp = c.get_string("model.mlp", m.mlp);
  m.mlp_hidden = c.get_int("model.mlp_hidden", 0);
  m.tie_embeddings = c.get_bool("model.tie_embeddings", m.tie_embeddings);
  m.dropout = c.get_double("model.dropout", m.dropout);
  m.mtp_kind = c.get_string("model.mtp_kind", m.mtp_kind);
  m.mtp_depth = c.get_int("model.mtp_depth", m.mtp_kind == "none" ? 0 : 1);
  m.mtp_lambda = c.get_double("model.mtp_lambda", m.mtp_lambda);
  m.mtp_shared_head = c.get_bool("model.mtp_shared_head", true);

  s.batch_size = c.get_int("train.batch_size", s.batch_size);
  s.seq_len = c.get_int("train.seq_len", m.context);
  s.steps = c.get_int("train.steps");
  s.grad_accum = c.get_int("train.grad_accum", 1);
  s.grad_clip = c.get_double("train.grad_clip", s.grad_clip);
  s.stop_at = c.get_int("train.stop_at", 0);
  s.time_limit_minutes = c.get_double("train.time_limit_minutes", 0.0);
  s.precision = c.get_string("train.precision", "auto");

  s.lr = c.get_double("optim.lr", s.lr);
  s.weight_decay = c.get_double("optim.weight_decay", s.weight_decay);
  std::vector<double> betas = c.get_double_list("optim.betas", {s.beta1, s.beta2});
  s.eps = c.get_double("optim.eps", s.eps);

  s.schedule = c.get_string("schedule.name", s.schedule);
  s.warmup_steps = c.get_int("schedule.warmup_steps", 0);
  if (s.schedule != "constant") s.min_lr = c.get_double("schedule.min_lr", 0.0);

  s.eval_every = c.get_int("eval.every", 0);
  s.eval_batch_size = c.get_int("eval.batch_size", s.batch_size);
  s.eval_max_batches = c.get_int("eval.max_batches", 0);
  s.log_every = c.get_int("log.every", s.log_every);
  s.checkpoint_every = c.get_int("checkpoint.every", 0);
  s.checkpoint_keep = c.get_int("checkpoint.keep", 3);
  s.dist = read_dist_settings(c);
  s.scaler = read_grad_scaler_options(c, s.precision == "fp16");

  c.check_all_used();

  TESSERA_CHECK(!s.data_dir.empty(), "config key `data.dir` is empty");
  m.validate();
  check_positive(s.batch_size, "train.batch_size");
  check_positive(s.seq_len, "train.seq_len");
  TESSERA_CHECK(s.seq_len <= m.context, "config key `train.seq_len`=", s.seq_len, " exceeds `model.context`=",
                m.context);
  check_positive(s.steps, "train.steps");
  check_positive(s.grad_accum, "train.grad_accum");
  check_not_negative(s.grad_clip, "train.grad_clip");
  TESSERA_CHECK(s.stop_at >= 0, "config key `train.stop_at` must not be negative (0: run to the end)");
  check_not_negative(s.time_limit_minutes, "train.time_limit_minutes");
  check_choice(s.precision, {"auto", "f32", "bf16", "fp16"}, "train.precision");
  s.dist.validate();
  TESSERA_CHECK(s.lr > 0, "config key `optim.lr` must be positive, got ", s.lr);
  check_not_negative(s.weight_decay, "optim.weight_decay");
  TESSERA_CHECK(betas.size() == 2 && betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1,
                "config key `optim.betas` must be two numbers in [0, 1), like [0.9, 0.95]");
  s.beta1 = betas[0];
  s.beta2 = betas[1];
  TESSERA_CHECK(s.eps > 0, "config key `optim.eps` must be positive, got ", s.eps);
  check_choice(s.schedule, optim::schedule_names(), "schedule.name");
  TESSERA_CHECK(s.warmup_steps >= 0, "config key `schedule.warmup_steps` must not be negative");
  TESSERA_CHECK(s.schedule == "constant" || s.warmup_steps <= s.steps, "config key `schedule.warmup_steps`=",
                s.warmup_steps, " exceeds `train.steps`=", s.steps);
  TESSERA_CHECK(s.min_lr >= 0 && s.min_lr <= s.lr, "config key `schedule.min_lr`=", s.min_lr,
                " must be in [0, optim.lr = ", s.lr, "]");
  TESSERA_CHECK(s.eval_every >= 0 && s.checkpoint_every >= 0, "config keys `eval.every` and `checkpoint.every` ",
                "must not be negative (0 means: only at the end)");
  check_positive(s.eval_batch_size, "eval.batch_size");
  TESSERA_CHECK(s.eval_max_batches >= 0, "config key `eval.max_batches` must not be negative (0: all)");
  check_positive(s.log_every, "log.every");
  return s;
}

}  // namespace tessera::train
