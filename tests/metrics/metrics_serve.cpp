// Serves a small registry on /metrics for a while, for the real-Prometheus scrape test
// (prometheus_scrape.sh).
//
//   metrics_serve [--address 127.0.0.1] [--port 0] [--seconds 60] [--port-file FILE]
//   metrics_serve --free-port          # prints a port that was free a moment ago, then exits
//
// Once listening it writes the chosen port to FILE (atomically: a temporary file renamed into
// place) and to stdout. The counter tessera_sample_ticks_total grows by one every 100 ms, so
// successive scrapes differ. SIGTERM or SIGINT end it early and cleanly.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <string>

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20).
#include <utility>

#include <boost/asio.hpp>

#include "framework/metrics/http_server.h"
#include "framework/metrics/registry.h"

namespace {

int usage(const char* message) {
  std::fprintf(stderr,
               "metrics_serve: %s\nusage: metrics_serve [--address A] [--port P] [--seconds N] [--port-file F]\n"
               "       metrics_serve --free-port\n",
               message);
  return 2;
}

int print_free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  std::printf("%u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tessera::metrics;
  MetricsHttpServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  double seconds = 60;
  std::string port_file;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--free-port") return print_free_port();
      if (i + 1 >= argc) return usage(("missing value after " + arg).c_str());
      std::string value = argv[++i];
      if (arg == "--address") {
        options.address = value;
      } else if (arg == "--port") {
        options.port = static_cast<uint16_t>(std::stoul(value));
      } else if (arg == "--seconds") {
        seconds = std::stod(value);
      } else if (arg == "--port-file") {
        port_file = value;
      } else {
        return usage(("unknown argument " + arg).c_str());
      }
    }

    // Block the stop signals before any thread starts, so only sigtimedwait below sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    Registry registry({.constant_labels = {{"rank", "0"}}});
    register_process_start_time(registry);
    Counter& ticks = registry.counter("tessera_sample_ticks_total", "Ticks of metrics_serve (one per 100 ms).").get();
    registry.counter("tessera_sample_tokens_total", "Tokens by dtype.", {"dtype"}).labels({"bf16"}).inc(42);
    registry.gauge("tessera_sample_queue_depth", "A gauge with an escaped \"label\".", {"path"})
        .labels({"a\\b \"c\""})
        .set(3);
    Histogram& latency =
        registry.histogram("tessera_sample_latency_seconds", "Latencies.", default_buckets()).get();
    for (double v : {0.02, 0.3, 4.0}) latency.observe(v);

    MetricsHttpServer server(registry, options);
    if (!port_file.empty()) {
      std::string temporary = port_file + ".tmp";
      std::ofstream(temporary) << server.port() << "\n";
      if (std::rename(temporary.c_str(), port_file.c_str()) != 0) {
        std::fprintf(stderr, "metrics_serve: cannot write %s\n", port_file.c_str());
        return 1;
      }
    }
    std::printf("metrics_serve: serving http://%s:%u/metrics for %g s\n", options.address.c_str(),
                static_cast<unsigned>(server.port()), seconds);
    std::fflush(stdout);

    const timespec tick{0, 100 * 1000 * 1000};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int signal = sigtimedwait(&stop_signals, nullptr, &tick);
      if (signal == SIGTERM || signal == SIGINT) {
        std::printf("metrics_serve: signal %d, stopping\n", signal);
        break;
      }
      ticks.inc();
    }
    server.stop();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics_serve: %s\n", e.what());
    return 1;
  }
}
