// JsonlLog: append-only JSON lines, flushed per line.
#include "framework/train/log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "framework/core/error.h"

namespace tessera::train {

JsonlLog::JsonlLog(const std::string& dir, bool enabled) : enabled_(enabled) {
  path_ = (std::filesystem::path(dir) / "log.jsonl").string();
  if (!enabled_) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  TESSERA_CHECK(!ec, "cannot create output directory ", dir, ": ", ec.message());
  open();
}

void JsonlLog::open() {
  out_.close();
  out_.clear();
  out_.open(path_, std::ios::app);
  TESSERA_CHECK(out_.good(), "cannot open log file ", path_, " for appending: ", std::strerror(errno));
}

void JsonlLog::write(const nlohmann::ordered_json& record) {
  if (!enabled_) return;
  out_ << record.dump() << '\n';
  out_.flush();
  TESSERA_CHECK(out_.good(), "cannot write log file ", path_, " (disk full?)");
}

void JsonlLog::train(int64_t step, double loss, const nlohmann::ordered_json& extra) {
  nlohmann::ordered_json record = {{"step", step}, {"loss", loss}};
  for (const auto& [key, value] : extra.items()) record[key] = value;
  write(record);
}

void JsonlLog::eval(int64_t step, const std::map<std::string, double>& metrics) {
  nlohmann::ordered_json record = {{"step", step}};
  for (const auto& [name, value] : metrics) record[name] = value;
  write(record);
}

void JsonlLog::truncate_after(int64_t step) {
  if (!enabled_) return;
  out_.close();
  std::ifstream in(path_);
  const std::string tmp = path_ + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream kept(tmp, std::ios::trunc);
    TESSERA_CHECK(kept.good(), "cannot write ", tmp, ": ", std::strerror(errno));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      // A torn last line (a crash mid-write) does not parse and is dropped too.
      const auto record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_discarded()) continue;
      if (record.is_object() && record.contains("step") && record["step"].is_number_integer() &&
          record["step"].get<int64_t>() > step)
        continue;
      kept << line << '\n';
    }
    kept.flush();
    TESSERA_CHECK(kept.good(), "cannot write ", tmp, " (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path_, ec);
  TESSERA_CHECK(!ec, "cannot replace log file ", path_, ": ", ec.message());
  open();
}

}  // namespace tessera::train
