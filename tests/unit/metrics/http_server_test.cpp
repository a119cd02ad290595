// The /metrics HTTP server, driven by a raw Boost.Asio client on 127.0.0.1: status lines,
// headers and bodies, 404/405/400 answers, keep-alive, and that bad requests and idle clients
// neither kill the server nor block its shutdown. Every client wait is bounded (run_for).
#include <gtest/gtest.h>

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (GCC 12, C++20).
#include <utility>

#include <boost/asio.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

#include "framework/core/error.h"
#include "framework/metrics/exposition.h"
#include "framework/metrics/http_server.h"
#include "framework/metrics/registry.h"

namespace tessera::metrics {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Sends `request` as raw bytes and returns everything the server sent until it closed the
// connection (or the 5 s limit passed, which fails the test).
std::string exchange_raw(uint16_t port, const std::string& request) {
  asio::io_context io;
  tcp::socket socket(io);
  std::string received;
  boost::system::error_code result;
  bool done = false;
  socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](boost::system::error_code ec) {
    if (ec) {
      result = ec, done = true;
      return;
    }
    asio::async_write(socket, asio::buffer(request), [&](boost::system::error_code write_ec, size_t) {
      if (write_ec) {
        result = write_ec, done = true;
        return;
      }
      asio::async_read(socket, asio::dynamic_buffer(received), [&](boost::system::error_code read_ec, size_t) {
        result = read_ec, done = true;
      });
    });
  });
  io.run_for(5s);
  EXPECT_TRUE(done) << "no complete answer within 5 s; got so far: " << received;
  EXPECT_EQ(result, asio::error::eof) << result.message();
  return received;
}

// Splits one HTTP response (the first in `raw`, with a Content-Length) into its parts.
Reply parse_reply(const std::string& raw) {
  Reply reply;
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) throw std::runtime_error("no header end in: " + raw);
  size_t line_end = raw.find("\r\n");
  std::string status_line = raw.substr(0, line_end);
  reply.status = std::stoi(status_line.substr(status_line.find(' ') + 1, 3));
  size_t pos = line_end + 2;
  while (pos < header_end) {
    size_t next = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, next - pos);
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    pos = next + 2;
  }
  size_t length = reply.headers.count("content-length") ? std::stoul(reply.headers["content-length"]) : 0;
  reply.body = raw.substr(header_end + 4, length);
  return reply;
}

Reply fetch(uint16_t port, const std::string& method, const std::string& target) {
  return parse_reply(
      exchange_raw(port, method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  MetricsHttpServerTest() {
    registry_.counter("tessera_requests_total", "Requests.", {"code"}).labels({"200"}).inc(7);
    registry_.gauge("tessera_temperature", "A \"gauge\".").get().set(21.5);
    options_.address = "127.0.0.1";
    options_.port = 0;
    options_.log_bad_requests = false;
  }

  Registry registry_;
  MetricsHttpServerOptions options_;
};

TEST_F(MetricsHttpServerTest, PortZeroPicksAFreePort) {
  MetricsHttpServer server(registry_, options_);
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(server.address(), "127.0.0.1");
}

TEST_F(MetricsHttpServerTest, GetMetricsServesTheExposition) {
  MetricsHttpServer server(registry_, options_);
  Reply reply = fetch(server.port(), "GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(reply.body, exposition_text(registry_));
  EXPECT_EQ(std::stoul(reply.headers["content-length"]), reply.body.size());
  EXPECT_NE(reply.body.find("tessera_requests_total{code=\"200\"} 7\n"), std::string::npos);
  EXPECT_EQ(fetch(server.port(), "GET", "/metrics?name[]=x").status, 200);  // query strings are ignored
}

TEST_F(MetricsHttpServerTest, ScrapesSeeCurrentValues) {
  MetricsHttpServer server(registry_, options_);
  registry_.gauge("tessera_temperature", "A \"gauge\".").get().set(-3);
  EXPECT_NE(fetch(server.port(), "GET", "/metrics").body.find("tessera_temperature -3\n"), std::string::npos);
}

TEST_F(MetricsHttpServerTest, HeadGivesHeadersWithoutBody) {
  MetricsHttpServer server(registry_, options_);
  std::string raw = exchange_raw(server.port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  Reply reply = parse_reply(raw);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(std::stoul(reply.headers["content-length"]), exposition_text(registry_).size());
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "");
}

TEST_F(MetricsHttpServerTest, OtherPathsGet404) {
  MetricsHttpServer server(registry_, options_);
  EXPECT_EQ(fetch(server.port(), "GET", "/").status, 404);
  EXPECT_EQ(fetch(server.port(), "GET", "/metricsx").status, 404);
  EXPECT_EQ(fetch(server.port(), "POST", "/v1/completions").status, 404);
}

TEST_F(MetricsHttpServerTest, OtherMethodsGet405WithAllow) {
  MetricsHttpServer server(registry_, options_);
  Reply reply = fetch(server.port(), "POST", "/metrics");
  EXPECT_EQ(reply.status, 405);
  EXPECT_EQ(reply.headers["allow"], "GET, HEAD");
  EXPECT_EQ(fetch(server.port(), "DELETE", "/metrics").status, 405);
}

TEST_F(MetricsHttpServerTest, MalformedRequestsGet400AndTheServerKeepsServing) {
  MetricsHttpServer server(registry_, options_);
  for (const std::string& bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET /metrics HTTP/9\r\n\r\n"),
                                 std::string("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"),
                                 std::string("GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
                                 std::string("\x01\x02\x03\r\n\r\n", 7)}) {
    std::string raw = exchange_raw(server.port(), bad);
    ASSERT_FALSE(raw.empty()) << "no answer to " << bad;
    EXPECT_EQ(parse_reply(raw).status, 400) << "request: " << bad;
  }
  EXPECT_EQ(parse_reply(exchange_raw(server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n" +
                                                        std::string(20000, 'a') + ": b\r\n\r\n"))
                .status,
            431);
  {
    // A client that sends half a request and hangs up gets nothing, and costs nothing.
    asio::io_context io;
    tcp::socket quitter(io);
    quitter.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    asio::write(quitter, asio::buffer(std::string("GET /metr")));
    quitter.close();
  }
  EXPECT_EQ(fetch(server.port(), "GET", "/metrics").status, 200);
}

TEST_F(MetricsHttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  MetricsHttpServer server(registry_, options_);
  std::string raw = exchange_raw(server.port(),
                                 "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                                 "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                                 "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(count_of(raw, "HTTP/1.1 200 OK\r\n"), 2u);
  EXPECT_EQ(count_of(raw, "HTTP/1.1 404 Not Found\r\n"), 1u);
}

TEST_F(MetricsHttpServerTest, RendererFailureGets500) {
  options_.log_bad_requests = false;
  MetricsHttpServer server([]() -> std::string { throw std::runtime_error("registry on fire"); }, options_);
  Reply reply = fetch(server.port(), "GET", "/metrics");
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find("registry on fire"), std::string::npos);
  EXPECT_EQ(fetch(server.port(), "GET", "/").status, 404);
}

TEST_F(MetricsHttpServerTest, StopsWhileAClientHoldsAnIdleConnection) {
  asio::io_context io;
  tcp::socket idle(io);
  {
    MetricsHttpServer server(registry_, options_);
    idle.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    server.stop();
    server.stop();  // idempotent
  }
  // The server closed the idle connection when it stopped: the client sees the end of stream.
  char byte;
  boost::system::error_code result;
  bool done = false;
  idle.async_read_some(asio::buffer(&byte, 1), [&](boost::system::error_code ec, size_t) { result = ec, done = true; });
  io.run_for(5s);
  EXPECT_TRUE(done);
  EXPECT_TRUE(result == asio::error::eof || result == asio::error::connection_reset) << result.message();
}

TEST_F(MetricsHttpServerTest, BindErrorsNameTheAddress) {
  MetricsHttpServer server(registry_, options_);
  MetricsHttpServerOptions taken = options_;
  taken.port = server.port();
  try {
    MetricsHttpServer second(registry_, taken);
    ADD_FAILURE() << "a second server bound the same port";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot bind 127.0.0.1:" + std::to_string(server.port())), std::string::npos)
        << e.what();
  }
  MetricsHttpServerOptions bad = options_;
  bad.address = "localhost:80";
  try {
    MetricsHttpServer third(registry_, bad);
    ADD_FAILURE() << "bound a non-address";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("`localhost:80` is not an IP address"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::metrics
