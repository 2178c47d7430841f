// /_fake/* introspection, process lifecycle and connection handling.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fake_provider/test_support.h"

namespace turnpike::fake_provider::testing {
namespace {

using simdjson::dom::element;

constexpr char kChat[] = "/v1/chat/completions";
constexpr char kBody[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

class IntrospectionTest : public FakeProviderTest {};

TEST_F(IntrospectionTest, PrintsListeningLine) {
  EXPECT_EQ(fp().stdout_text(),
            "turnpike-fake-provider listening on 127.0.0.1:" + std::to_string(fp().port()) + "\n");
}

TEST_F(IntrospectionTest, RecordsEveryProviderRequestInOrder) {
  ASSERT_EQ(fp().Post(kChat, kBody, {kOpenAIAuth, "X-Custom-Header: Mixed Case"}).status, 200);
  ASSERT_EQ(fp().Post("/openai/deployments/d/chat/completions?api-version=2024-10-21", kBody,
                      {"api-key: fake-key"})
                .status,
            200);
  HttpResponse r = fp().Get("/_fake/requests");
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, r.body);
  simdjson::dom::array list = doc.get_array().value();
  ASSERT_EQ(list.size(), 2u);
  element first = list.at(0);
  EXPECT_EQ(first["method"].get_string().value(), "POST");
  EXPECT_EQ(first["path"].get_string().value(), kChat);
  EXPECT_EQ(first["query"].get_string().value(), "");
  EXPECT_EQ(first["headers"]["x-custom-header"].get_string().value(), "Mixed Case");
  EXPECT_EQ(first["headers"]["authorization"].get_string().value(), "Bearer fake-key");
  EXPECT_EQ(first["body"].get_string().value(), kBody);
  element second = list.at(1);
  EXPECT_EQ(second["path"].get_string().value(), "/openai/deployments/d/chat/completions");
  EXPECT_EQ(second["query"].get_string().value(), "api-version=2024-10-21");
  EXPECT_EQ(second["headers"]["api-key"].get_string().value(), "fake-key");

  EXPECT_EQ(fp().Delete("/_fake/requests").status, 200);
  r = fp().Get("/_fake/requests");
  EXPECT_EQ(r.body, "[]");
}

TEST_F(IntrospectionTest, StatsCountRequestsAndStreams) {
  fp().Post(kChat, kBody, {kOpenAIAuth});
  fp().Post(
      kChat,
      "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
      {kOpenAIAuth});
  fp().Post("/nope", "{}");
  simdjson::dom::parser parser;
  element doc = ParseJson(parser, fp().Get("/_fake/stats").body);
  EXPECT_EQ(doc["requests"].get_int64().value(), 3);
  EXPECT_EQ(doc["active_streams"].get_int64().value(), 0);
  EXPECT_EQ(doc["completed_streams"].get_int64().value(), 1);
  EXPECT_EQ(doc["aborted_streams"].get_int64().value(), 0);
}

TEST_F(IntrospectionTest, ResetClearsRequestsStatsAndFaults) {
  fp().Post(kChat, kBody, {kOpenAIAuth});
  fp().Post("/_fake/faults", "[{\"status\":500}]");
  ASSERT_EQ(fp().Post("/_fake/reset", "").status, 200);
  EXPECT_EQ(fp().Get("/_fake/requests").body, "[]");
  EXPECT_EQ(Stat(fp(), "requests"), 0);
  EXPECT_EQ(Stat(fp(), "queued_faults"), 0);
  EXPECT_EQ(fp().Post(kChat, kBody, {kOpenAIAuth}).status, 200);
}

TEST_F(IntrospectionTest, KeepAliveReusesTheConnection) {
  HttpResponse a = fp().Post(kChat, kBody, {kOpenAIAuth});
  HttpResponse b = fp().Post(kChat, kBody, {kOpenAIAuth});
  HttpResponse c = fp().Post(
      kChat,
      "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
      {kOpenAIAuth});
  HttpResponse d = fp().Post(kChat, kBody, {kOpenAIAuth});
  EXPECT_EQ(a.connects, 1);
  EXPECT_EQ(b.connects, 0);
  EXPECT_EQ(c.connects, 0);
  EXPECT_EQ(d.connects, 0);
  EXPECT_EQ(d.status, 200);
}

TEST_F(IntrospectionTest, UnknownControlEndpointIs404) {
  EXPECT_EQ(fp().Get("/_fake/nothing").status, 404);
  EXPECT_EQ(fp().Get("/_fake/health").status, 200);
}

class RecordCapTest : public FakeProviderTest {
 protected:
  std::vector<std::string> ExtraArgs() override { return {"--max_recorded_requests=3"}; }
};

TEST_F(RecordCapTest, KeepsOnlyTheLastRequests) {
  for (int i = 0; i < 5; ++i) {
    fp().Post(kChat,
              "{\"model\":\"m" + std::to_string(i) +
                  "\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              {kOpenAIAuth});
  }
  simdjson::dom::parser parser;
  simdjson::dom::array list =
      ParseJson(parser, fp().Get("/_fake/requests").body).get_array().value();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_NE(std::string(list.at(0)["body"].get_string().value()).find("\"m2\""), std::string::npos);
  EXPECT_EQ(Stat(fp(), "requests"), 5);
}

class NoAuthTest : public FakeProviderTest {
 protected:
  std::vector<std::string> ExtraArgs() override { return {"--api_key="}; }
};

TEST_F(NoAuthTest, EmptyApiKeyDisablesAuth) { EXPECT_EQ(fp().Post(kChat, kBody).status, 200); }

// Opens a connection, sends `request` and returns the socket without reading the reply.
int SendRaw(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  return fd;
}

std::string StreamRequest(const std::string& extra_headers) {
  const std::string body =
      "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fake-key\r\n"
         "Content-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(FakeProviderProcessTest, ExitsCleanlyWithStreamsInFlight) {
  for (int sig : {SIGTERM, SIGINT}) {
    FakeProviderProcess fp;
    ASSERT_TRUE(fp.started());
    const int stalled = SendRaw(fp.port(), StreamRequest("x-fake-stall-after-chunks: 1\r\n"));
    const int slow = SendRaw(fp.port(), StreamRequest("x-fake-chunk-delay-ms: 1000\r\n"));
    const int delayed = SendRaw(fp.port(), StreamRequest("x-fake-first-byte-delay-ms: 5000\r\n"));
    ASSERT_TRUE(WaitForStat(fp, "active_streams", 3));
    const int status = fp.Stop(sig);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    for (int fd : {stalled, slow, delayed}) close(fd);
  }
}

TEST(FakeProviderProcessTest, PipelinedRequestIsServedAfterADelayedOne) {
  FakeProviderProcess fp;
  ASSERT_TRUE(fp.started());
  // Two requests in one write: the first is held back, the second must wait its turn.
  const std::string first = StreamRequest("x-fake-first-byte-delay-ms: 50\r\n");
  const std::string second = StreamRequest("");
  const int fd = SendRaw(fp.port(), first + second);
  ASSERT_GE(fd, 0);
  std::string got;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  size_t done_count = 0;
  while (std::chrono::steady_clock::now() < deadline && done_count < 2) {
    pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    done_count = 0;
    for (size_t pos = 0; (pos = got.find("data: [DONE]", pos)) != std::string::npos; ++pos) {
      ++done_count;
    }
  }
  close(fd);
  EXPECT_EQ(done_count, 2u) << got;
  EXPECT_EQ(fp.Stop(), 0);
}

}  // namespace
}  // namespace turnpike::fake_provider::testing
