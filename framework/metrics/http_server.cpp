// The /metrics HTTP server (see http_server.h): one io_context on one thread, an accept loop,
// and one Session object per connection that reads a request, writes the answer and reads the
// next one (keep-alive) until the peer closes, a timeout fires or a request does not parse.
//
// Lifetime: State (io_context, acceptor, options) is shared by the owner and the thread.
// Sessions and pending handlers point at it with a raw pointer; that is safe because they live
// inside the io_context (handlers own sessions) and die when it is destroyed, and State's plain
// members are declared before the io_context so they outlive it. No shared_ptr cycle keeps
// State alive after the owner and thread let go.
#include "framework/metrics/http_server.h"

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20).
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <iostream>
#include <optional>
#include <sstream>

#include "framework/core/error.h"
#include "framework/metrics/exposition.h"
#include "framework/metrics/registry.h"

namespace tessera::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct MetricsHttpServer::State {
  // Declared before `io`: session destructors, run while `io` is destroyed, still use them.
  MetricsHttpServerOptions options;
  Renderer render;
  int open_connections = 0;  // touched only on the server thread
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
};

namespace {

using State = MetricsHttpServer::State;

constexpr size_t kHeaderLimit = 16 * 1024;  // a scrape request is a few hundred bytes
constexpr size_t kBodyLimit = 16 * 1024;
constexpr size_t kReadBufferLimit = 64 * 1024;
constexpr std::chrono::seconds kDrainTimeout{2};

void log_line(const std::string& line) { std::cerr << "tessera metrics http: " + line + "\n" << std::flush; }

std::string to_std(beast::string_view view) { return std::string(view.data(), view.size()); }

// Request targets echoed into answers and logs are cut to a readable length.
std::string shortened(const std::string& text) { return text.size() <= 200 ? text : text.substr(0, 200) + "..."; }

bool is_parse_error(const beast::error_code& ec) {
  static const auto& http_category = http::make_error_code(http::error::bad_method).category();
  // end_of_stream and partial_message mean the peer went away: nobody to answer.
  return ec.category() == http_category && ec != http::error::end_of_stream && ec != http::error::partial_message;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, State* state) : stream_(std::move(socket)), buffer_(kReadBufferLimit), state_(state) {
    ++state_->open_connections;
  }
  ~Session() { --state_->open_connections; }

  void start() {
    beast::error_code ec;
    peer_ = stream_.socket().remote_endpoint(ec);
    read_request();
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(state_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (!is_parse_error(ec)) return close();  // peer gone, timeout, reset: nothing to answer
      int status = ec == http::error::body_limit ? 413 : ec == http::error::header_limit ? 431 : 400;
      return send(error_response(11, static_cast<http::status>(status), "bad request: " + ec.message()),
                  /*close_after=*/true, /*head=*/false);
    }
    const http::request<http::string_body>& request = parser_->get();
    std::string target = to_std(request.target());
    std::string path = target.substr(0, target.find('?'));
    bool head = request.method() == http::verb::head;
    bool close_after = !request.keep_alive();
    if (path != "/metrics") {
      return send(error_response(request.version(), http::status::not_found,
                                 "not found: " + shortened(target) + " (this server answers GET /metrics)"),
                  close_after, head);
    }
    if (request.method() != http::verb::get && !head) {
      auto response = error_response(request.version(), http::status::method_not_allowed,
                                     "method " + to_std(request.method_string()) + " not allowed on /metrics");
      response.set(http::field::allow, "GET, HEAD");
      return send(std::move(response), close_after, head);
    }
    http::response<http::string_body> response{http::status::ok, request.version()};
    try {
      response.body() = state_->render();
    } catch (const std::exception& e) {
      return send(error_response(request.version(), http::status::internal_server_error,
                                 std::string("metrics rendering failed: ") + e.what()),
                  close_after, head);
    }
    response.set(http::field::content_type, kTextContentType);
    send(std::move(response), close_after, head);
  }

  http::response<http::string_body> error_response(unsigned version, http::status status, const std::string& message) {
    if (state_->options.log_bad_requests || status == http::status::internal_server_error) {
      log_line(std::to_string(static_cast<int>(status)) + " to " + peer_text() + ": " + message);
    }
    http::response<http::string_body> response{status, version};
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = message + "\n";
    return response;
  }

  void send(http::response<http::string_body> response, bool close_after, bool head) {
    response_ = std::move(response);
    response_.set(http::field::server, "tessera-metrics");
    if (head) {
      size_t length = response_.body().size();
      response_.body().clear();
      response_.content_length(length);
    } else {
      response_.prepare_payload();
    }
    response_.keep_alive(!close_after);
    stream_.expires_after(state_->options.idle_timeout);
    http::async_write(stream_, response_, [self = shared_from_this(), close_after](beast::error_code ec, size_t) {
      if (ec) return self->close();
      if (close_after) return self->close_after_draining();
      self->read_request();
    });
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // answer just written (a 400 to a request we stopped reading halfway). So: send FIN, discard
  // what the peer still sends until it closes (bounded by kDrainTimeout), then close.
  void close_after_draining() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kDrainTimeout);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();  // end of stream, timeout or reset
      self->drain();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  std::string peer_text() const {
    std::ostringstream out;
    out << peer_;
    return out.str();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::array<char, 4096> discard_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  tcp::endpoint peer_;
  State* state_;
};

void accept_next(State* state) {
  state->acceptor.async_accept([state](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // E.g. out of file descriptors: retry shortly instead of spinning.
      log_line("accept failed: " + ec.message());
      state->accept_retry.expires_after(std::chrono::milliseconds(100));
      state->accept_retry.async_wait([state](beast::error_code wait_ec) {
        if (!wait_ec) accept_next(state);
      });
      return;
    }
    if (state->open_connections >= state->options.max_connections) {
      log_line("refusing a connection: " + std::to_string(state->open_connections) + " open (max_connections)");
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Session>(std::move(socket), state)->start();
    }
    accept_next(state);
  });
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(const Registry& registry, MetricsHttpServerOptions options)
    : MetricsHttpServer([&registry] { return exposition_text(registry); }, std::move(options)) {}

MetricsHttpServer::MetricsHttpServer(Renderer render, MetricsHttpServerOptions options)
    : state_(std::make_shared<State>()), stop_timeout_(options.stop_timeout) {
  TESSERA_CHECK(render != nullptr, "metrics http server: no renderer given");
  TESSERA_CHECK(options.max_connections >= 1, "metrics http server: max_connections must be at least 1, got ",
                options.max_connections);
  TESSERA_CHECK(options.idle_timeout.count() > 0 && options.stop_timeout.count() > 0,
                "metrics http server: idle_timeout and stop_timeout must be positive");
  state_->options = options;
  state_->render = std::move(render);

  beast::error_code ec;
  asio::ip::address ip = asio::ip::make_address(options.address, ec);
  TESSERA_CHECK(!ec, "metrics http server: `", options.address, "` is not an IP address (", ec.message(), ")");
  tcp::endpoint endpoint(ip, options.port);
  std::string where = (ip.is_v6() ? "[" + options.address + "]" : options.address) + ":" + std::to_string(options.port);
  tcp::acceptor& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  TESSERA_CHECK(!ec, "metrics http server: cannot open a socket for ", where, ": ", ec.message());
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  TESSERA_CHECK(!ec, "metrics http server: cannot set SO_REUSEADDR on ", where, ": ", ec.message());
  acceptor.bind(endpoint, ec);
  TESSERA_CHECK(!ec, "metrics http server: cannot bind ", where, ": ", ec.message());
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  TESSERA_CHECK(!ec, "metrics http server: cannot listen on ", where, ": ", ec.message());
  address_ = options.address;
  port_ = acceptor.local_endpoint().port();

  accept_next(state_.get());
  std::promise<void> finished;
  finished_ = finished.get_future();
  thread_ = std::thread([state = state_, finished = std::move(finished)]() mutable {
    for (;;) {
      try {
        state->io.run();
        break;
      } catch (const std::exception& e) {
        // A handler threw (e.g. out of memory): that connection is gone; keep serving the rest.
        log_line(std::string("handler failed: ") + e.what());
      } catch (...) {
        log_line("handler failed with a non-standard exception");
      }
    }
    finished.set_value();
  });
}

MetricsHttpServer::~MetricsHttpServer() { stop(); }

void MetricsHttpServer::stop() {
  if (!thread_.joinable()) return;
  state_->io.stop();
  if (finished_.wait_for(stop_timeout_) == std::future_status::ready) {
    thread_.join();
  } else {
    // The thread holds its own reference to State, so it may finish on its own later.
    log_line("server thread did not stop within " + std::to_string(stop_timeout_.count()) + " ms; detaching it");
    thread_.detach();
  }
  state_.reset();
}

}  // namespace tessera::metrics
