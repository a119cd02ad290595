// MetricsHttpServer: a small HTTP/1.1 server (Boost.Beast) that answers `GET /metrics`.
//
// defines: tessera::metrics::MetricsHttpServerOptions, MetricsHttpServer
//
// For processes that have no HTTP server of their own (training ranks, serving workers): it
// binds when constructed (port 0 picks a free port; port() reports it), then answers on one
// background thread. `GET` and `HEAD /metrics` (any query string) get the registry's text with
// Content-Type `text/plain; version=0.0.4; charset=utf-8`; other paths get 404, other methods on
// /metrics 405 with `Allow: GET, HEAD`; a request that does not parse gets 400 and its
// connection is closed; none of them stops the server. Connections are kept alive as HTTP/1.1
// asks (Prometheus reuses them), idle ones are closed after `idle_timeout`, and at most
// `max_connections` are open at once.
//
// stop() (and the destructor) stops the thread and waits for it at most `stop_timeout`; a
// thread that does not finish in time is detached (it owns everything it touches) and reported
// on stderr, so shutdown never hangs.
//
// The router has its own HTTP server; it reuses exposition.h, not this class.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

namespace tessera::metrics {

class Registry;

struct MetricsHttpServerOptions {
  std::string address = "0.0.0.0";  // IPv4 or IPv6 literal to bind
  uint16_t port = 9400;               // 0: any free port
  std::chrono::milliseconds idle_timeout{30000};  // per request read/write
  std::chrono::milliseconds stop_timeout{5000};
  int max_connections = 64;
  bool log_bad_requests = true;  // one stderr line per 4xx/5xx answer
};

class MetricsHttpServer {
 public:
  // Produces the response body of GET /metrics; called on the server thread, once per scrape.
  using Renderer = std::function<std::string()>;

  // Serves exposition_text(registry); the registry must outlive the server.
  MetricsHttpServer(const Registry& registry, MetricsHttpServerOptions options = {});
  MetricsHttpServer(Renderer render, MetricsHttpServerOptions options = {});
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound address and port (the chosen one when options.port was 0).
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }

  // Stops accepting and serving, and waits for the thread (bounded by stop_timeout). Idempotent.
  void stop();

  struct State;  // shared with the server thread (http_server.cpp)

 private:
  std::shared_ptr<State> state_;
  std::thread thread_;
  std::future<void> finished_;
  std::string address_;
  uint16_t port_ = 0;
  std::chrono::milliseconds stop_timeout_;
};

}  // namespace tessera::metrics
