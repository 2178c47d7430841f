// Test support for turnpike-fake-provider: starts the real binary on an ephemeral port in
// a private temp dir (so tests run in parallel), talks HTTP to it with libcurl, and parses
// SSE bodies the way a WHATWG-conformant client would. One FakeProviderProcess per test;
// not thread-safe.
#ifndef TURNPIKE_TESTS_FAKE_PROVIDER_TEST_SUPPORT_H_
#define TURNPIKE_TESTS_FAKE_PROVIDER_TEST_SUPPORT_H_

#include <curl/curl.h>
#include <simdjson.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <csignal>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace turnpike::fake_provider::testing {

struct HttpRequest {
  std::string method = "POST";
  std::string path;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  long timeout_ms = 10000;
  // > 0: abort the transfer (write callback returns 0) once this many body bytes arrived.
  size_t abort_after_bytes = 0;
};

struct HttpResponse {
  CURLcode curl_code = CURLE_OK;
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  double seconds = 0;                                        // total transfer time
  long connects = 0;  // new connections opened for this transfer

  // Value of the first header named `name` (lowercase), or "" if absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

class FakeProviderProcess {
 public:
  // Starts FAKE_PROVIDER_BIN with --listen=127.0.0.1:0, --port_file in a fresh temp dir and
  // `extra_args`; waits (at most 10 s) for the port file.
  explicit FakeProviderProcess(std::vector<std::string> extra_args = {});
  ~FakeProviderProcess();
  FakeProviderProcess(const FakeProviderProcess&) = delete;
  FakeProviderProcess& operator=(const FakeProviderProcess&) = delete;

  bool started() const { return port_ > 0; }
  int port() const { return port_; }
  const std::string& stdout_text() const { return stdout_; }

  // Sends `signal` (SIGTERM by default), then waits (at most 10 s). Returns the wait
  // status, or -1 on timeout.
  int Stop(int signal = SIGTERM);

  // Issues one request on a reused keep-alive handle (unless `fresh_connection`).
  HttpResponse Send(const HttpRequest& request, bool fresh_connection = false);
  HttpResponse Post(const std::string& path, const std::string& body,
                    std::vector<std::string> headers = {});
  HttpResponse Get(const std::string& path);
  HttpResponse Delete(const std::string& path);

 private:
  // Starts the binary once and waits for its port file; a failure to start fails the test.
  void Spawn(const std::vector<std::string>& extra_args);

  std::string dir_;
  // The child, while it is not yet reaped; -1 from the moment waitpid returns it, so a pid that
  // the kernel may have handed to another process is never signalled.
  pid_t pid_ = -1;
  int port_ = 0;
  std::string stdout_;
  CURL* curl_ = nullptr;
};

// One dispatched SSE event (WHATWG §9.2.6), plus what the parser saw around it.
struct SseEvent {
  std::string event;  // "" when no event: field
  std::string data;   // data lines joined with '\n'
};

struct SseParse {
  std::vector<SseEvent> events;
  int comment_lines = 0;
  bool trailing_partial = false;  // bytes after the last dispatched event
};

SseParse ParseSse(std::string_view body);

// Parses `json` into `doc` (which must outlive uses of the result); fails the test on error.
simdjson::dom::element ParseJson(simdjson::dom::parser& parser, const std::string& json);

// Waits (deadline 10 s, polling) until GET /_fake/stats has `field` == `want`.
bool WaitForStat(FakeProviderProcess& fp, const std::string& field, int64_t want);
int64_t Stat(FakeProviderProcess& fp, const std::string& field);

// Starts a fresh fake provider for every test and checks it exits 0 on SIGTERM.
class FakeProviderTest : public ::testing::Test {
 protected:
  virtual std::vector<std::string> ExtraArgs() { return {}; }

  void SetUp() override {
    fp_ = std::make_unique<FakeProviderProcess>(ExtraArgs());
    ASSERT_TRUE(fp_->started());
  }

  void TearDown() override {
    const int status = fp_->Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }

  FakeProviderProcess& fp() { return *fp_; }

  std::unique_ptr<FakeProviderProcess> fp_;
};

inline constexpr char kOpenAIAuth[] = "Authorization: Bearer fake-key";

}  // namespace turnpike::fake_provider::testing

#endif  // TURNPIKE_TESTS_FAKE_PROVIDER_TEST_SUPPORT_H_
