// GptMtpOptions (gpt_mtp.h): validation with errors that name the config key, and the JSON form
// stored in checkpoints (state.json "model") from which `tessera generate` rebuilds the model.
#include <algorithm>

#include "framework/core/error.h"
#include "framework/models/gpt_mtp.h"

namespace tessera::models {
namespace {

void check_choice(const std::string& key, const std::string& value, const std::vector<std::string>& choices,
                  const char* what) {
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  detail::throw_error(detail::cat("config key `", key, "` is \"", value, "\": unknown ", what, "; expected one of: ",
                                  list));
}

void check_positive(const char* key, int64_t value) {
  TESSERA_CHECK(value > 0, "config key `", key, "` must be positive, got ", value);
}

}  // namespace

const std::vector<std::string>& mtp_kind_names() {
  static const std::vector<std::string> names = {"deepseek", "medusa", "none"};
  return names;
}

int64_t GptMtpOptions::mlp_width() const {
  if (mlp_hidden > 0) return mlp_hidden;
  if (mlp == "swiglu") return (8 * dim / 3 + 63) / 64 * 64;
  return 4 * dim;
}

void GptMtpOptions::validate() const {
  check_positive("model.vocab_size", vocab_size);
  check_positive("model.context", context);
  check_positive("model.n_layers", n_layers);
  check_positive("model.dim", dim);
  check_positive("model.n_heads", n_heads);
  TESSERA_CHECK(dim % n_heads == 0, "config key `model.n_heads`=", n_heads, " does not divide `model.dim`=", dim);
  TESSERA_CHECK(head_dim() % 2 == 0 || positions != "rope", "config keys `model.dim`=", dim, " and `model.n_heads`=",
                n_heads, " give an odd head size ", head_dim(), "; rotary positions need an even one");
  TESSERA_CHECK(n_kv_heads >= 0, "config key `model.n_kv_heads` must not be negative (0 means n_heads), got ",
                n_kv_heads);
  TESSERA_CHECK(n_heads % kv_heads() == 0, "config key `model.n_kv_heads`=", n_kv_heads,
                " does not divide `model.n_heads`=", n_heads);
  check_choice("model.norm", norm, {"rmsnorm", "layernorm"}, "norm");
  TESSERA_CHECK(norm_eps > 0, "config key `model.norm_eps` must be positive, got ", norm_eps);
  check_choice("model.positions", positions, {"rope", "learned"}, "position encoding");
  TESSERA_CHECK(rope_theta > 0, "config key `model.rope_theta` must be positive, got ", rope_theta);
  check_choice("model.mlp", mlp, {"gelu", "swiglu"}, "activation");
  TESSERA_CHECK(mlp_hidden >= 0, "config key `model.mlp_hidden` must not be negative (0: the default width), got ",
                mlp_hidden);
  TESSERA_CHECK(dropout >= 0 && dropout < 1, "config key `model.dropout` must be in [0, 1), got ", dropout);
  check_choice("model.mtp_kind", mtp_kind, mtp_kind_names(), "mtp_kind");
  if (mtp_kind == "none") {
    TESSERA_CHECK(mtp_depth == 0, "config key `model.mtp_depth`=", mtp_depth,
                  " needs `model.mtp_kind` \"deepseek\" or \"medusa\" (it is \"none\")");
  } else {
    TESSERA_CHECK(mtp_depth >= 1, "config key `model.mtp_depth` must be at least 1 with `model.mtp_kind`=\"", mtp_kind,
                  "\", got ", mtp_depth, " (set model.mtp_kind = \"none\" for no MTP heads)");
  }
  TESSERA_CHECK(mtp_lambda >= 0, "config key `model.mtp_lambda` must not be negative, got ", mtp_lambda);
  TESSERA_CHECK(mtp_shared_head || mtp_kind == "medusa", "config key `model.mtp_shared_head`=false applies only to ",
                "`model.mtp_kind`=\"medusa\" (DeepSeek MTP modules always share the output head)");
}

nlohmann::json GptMtpOptions::to_json() const {
  return {{"vocab_size", vocab_size}, {"context", context},       {"n_layers", n_layers},
          {"dim", dim},               {"n_heads", n_heads},       {"n_kv_heads", n_kv_heads},
          {"norm", norm},             {"norm_eps", norm_eps},     {"positions", positions},
          {"rope_theta", rope_theta}, {"mlp", mlp},               {"mlp_hidden", mlp_hidden},
          {"tie_embeddings", tie_embeddings}, {"dropout", dropout}, {"mtp_kind", mtp_kind},
          {"mtp_depth", mtp_depth},   {"mtp_lambda", mtp_lambda}, {"mtp_shared_head", mtp_shared_head}};
}

GptMtpOptions GptMtpOptions::from_json(const nlohmann::json& j, const std::string& what) {
  GptMtpOptions o;
  try {
    o.vocab_size = j.at("vocab_size").get<int64_t>();
    o.context = j.at("context").get<int64_t>();
    o.n_layers = j.at("n_layers").get<int64_t>();
    o.dim = j.at("dim").get<int64_t>();
    o.n_heads = j.at("n_heads").get<int64_t>();
    o.n_kv_heads = j.at("n_kv_heads").get<int64_t>();
    o.norm = j.at("norm").get<std::string>();
    o.norm_eps = j.at("norm_eps").get<double>();
    o.positions = j.at("positions").get<std::string>();
    o.rope_theta = j.at("rope_theta").get<double>();
    o.mlp = j.at("mlp").get<std::string>();
    o.mlp_hidden = j.at("mlp_hidden").get<int64_t>();
    o.tie_embeddings = j.at("tie_embeddings").get<bool>();
    o.dropout = j.at("dropout").get<double>();
    o.mtp_kind = j.at("mtp_kind").get<std::string>();
    o.mtp_depth = j.at("mtp_depth").get<int64_t>();
    o.mtp_lambda = j.at("mtp_lambda").get<double>();
    o.mtp_shared_head = j.at("mtp_shared_head").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    detail::throw_error(detail::cat(what, ": the GPT-MTP model description is incomplete or mistyped (", e.what(), ")"));
  }
  o.validate();
  return o;
}

}  // namespace tessera::models
