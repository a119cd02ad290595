#include "framework/core/error.h"

namespace tessera::detail {

void throw_error(std::string message) { throw Error(std::move(message)); }

void throw_internal(const char* file, int line, const char* condition, std::string message) {
  std::string text = cat("internal error at ", file, ":", line, ": `", condition, "` failed");
  if (!message.empty()) text += ": " + message;
  throw Error(text);
}

}  // namespace tessera::detail
