// Error reporting for all of Tessera: the `Error` exception and the check macros.
//
// defines: tessera::Error, TESSERA_CHECK, TESSERA_ASSERT, tessera::detail::cat
//
// Library code throws `tessera::Error` with a message a user can act on; programs catch it in
// main and exit non-zero. `TESSERA_CHECK(cond, parts...)` is for bad input (the message is the
// whole story: name the op, the argument and what was expected); `TESSERA_ASSERT` is for
// internal invariants and adds file:line. Library-specific checks (CUDA, cuBLAS, cuDNN, NCCL,
// MPI) live in cuda_check.h and framework/dist, and report file:line, the failing statement
// and the library's own error string. This header depends on nothing else in Tessera, so the
// kernels layer may include it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tessera {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {

template <typename... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

[[noreturn]] void throw_error(std::string message);
[[noreturn]] void throw_internal(const char* file, int line, const char* condition, std::string message);

}  // namespace detail
}  // namespace tessera

#define TESSERA_CHECK(condition, ...)                                   \
  do {                                                                  \
    if (!(condition)) ::tessera::detail::throw_error(::tessera::detail::cat(__VA_ARGS__)); \
  } while (0)

#define TESSERA_ASSERT(condition, ...)                                                       \
  do {                                                                                       \
    if (!(condition))                                                                        \
      ::tessera::detail::throw_internal(__FILE__, __LINE__, #condition,                      \
                                        ::tessera::detail::cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
