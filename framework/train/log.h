// JsonlLog: the machine-readable record of a run, one JSON object per line in DIR/log.jsonl.
//
// defines: tessera::train::JsonlLog
//
// Training lines carry "step" and "loss" (the mean over the steps since the previous line)
// plus whatever else the job adds ("lr", "grad_norm", "epoch"); evaluation lines carry "step"
// and metric names ("test_accuracy", "test_loss"). Every line is flushed as it is written, so
// `tail -f` and a crash both see complete lines. Lines hold only deterministic values (no
// times or throughput — those go to the progress lines on stdout), so the log of a resumed
// run is line for line the log of a straight run. On resume, `truncate_after(step)` drops lines
// a crashed run wrote after its last checkpoint. A disabled log (ranks other than 0) writes
// nothing.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace tessera::train {

class JsonlLog {
 public:
  // Opens DIR/log.jsonl for appending, creating DIR if needed; errors name the path.
  explicit JsonlLog(const std::string& dir, bool enabled = true);

  void write(const nlohmann::ordered_json& record);
  // {"step": step, "loss": loss, ...extra}
  void train(int64_t step, double loss, const nlohmann::ordered_json& extra = nlohmann::ordered_json::object());
  // {"step": step, name: value, ...} (names in alphabetical order)
  void eval(int64_t step, const std::map<std::string, double>& metrics);
  // Rewrites the file without lines whose "step" is greater than `step` (atomically).
  void truncate_after(int64_t step);

  const std::string& path() const { return path_; }

 private:
  void open();

  std::string path_;
  bool enabled_;
  std::ofstream out_;
};

}  // namespace tessera::train
