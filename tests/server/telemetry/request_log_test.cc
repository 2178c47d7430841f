#include "server/telemetry/request_log.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace turnpike {
namespace {

RequestFinished Event() {
  RequestFinished e;
  e.method = RequestMethod::kComplete;
  e.request_id = "req-1";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.capability = "summaries";
  e.caller = "claims-app";
  e.end_user = "u-7";
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.credential = "openai-key@3";
  e.input_tokens = 12;
  e.output_tokens = 34;
  e.cost_usd_micros = 56;
  e.cost_known = true;
  e.start_time = absl::FromUnixMillis(1'700'000'000'123);
  e.latency = absl::Milliseconds(250);
  e.time_to_first_token = absl::Milliseconds(80);
  v1::Attempt* a = e.attempts.Add();
  a->set_provider("openai");
  a->set_model("gpt-4o-mini");
  a->set_outcome("ok");
  a->set_http_status(200);
  a->set_latency_us(240000);
  return e;
}

std::shared_ptr<RequestContent> Content(config::v1::ContentPolicy policy, std::string prompt,
                                        std::string reply) {
  auto c = std::make_shared<RequestContent>();
  c->policy = policy;
  c->redactor = Redactor::Default();
  c->messages = {{"ROLE_SYSTEM", "be brief"}, {"ROLE_USER", std::move(prompt)}};
  c->reply = std::move(reply);
  return c;
}

simdjson::dom::element Parse(simdjson::dom::parser& parser, const std::string& line) {
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line.substr(0, 300);
  return doc;
}

std::string_view Str(simdjson::dom::element doc, const char* key) {
  std::string_view v;
  if (doc[key].get(v) != simdjson::SUCCESS) return "<absent>";
  return v;
}

TEST(RequestLogTest, LineHasTheIssueFieldsAndNoTextUnderNone) {
  RequestFinished e = Event();
  const std::string line = RequestLog::FormatLine(e, 2048);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = Parse(parser, line);
  EXPECT_EQ(Str(doc, "time"), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(Str(doc, "request_id"), "req-1");
  EXPECT_EQ(Str(doc, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Str(doc, "caller"), "claims-app");
  EXPECT_EQ(Str(doc, "end_user"), "u-7");
  EXPECT_EQ(Str(doc, "capability"), "summaries");
  EXPECT_EQ(Str(doc, "credential"), "openai-key@3");
  EXPECT_EQ(Str(doc, "status"), "OK");
  EXPECT_EQ(Str(doc, "content_policy"), "NONE");
  EXPECT_EQ(int64_t(doc["cost_usd_micros"]), 56);
  EXPECT_EQ(double(doc["ttft_ms"]), 80.0);
  EXPECT_EQ(Str(doc["attempts"].at(0), "outcome"), "ok");
  EXPECT_EQ(bool(doc["cache_hit"]), false);
  for (const char* absent : {"request", "reply", "request_sha256", "reply_sha256"}) {
    EXPECT_EQ(Str(doc, absent), "<absent>") << absent;
  }
}

TEST(RequestLogTest, HashPolicyLogsTheHashesOfTheCanonicalRequestAndReplyOnly) {
  RequestFinished e = Event();
  auto content = Content(config::v1::CONTENT_POLICY_HASH, "my card 4111 1111 1111 1111", "hi");
  e.content = content;
  const std::string line = RequestLog::FormatLine(e, 2048);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = Parse(parser, line);
  EXPECT_EQ(Str(doc, "request_sha256"), Sha256Hex(CanonicalRequest(*content)));
  EXPECT_EQ(CanonicalRequest(*content),
            R"({"messages":[{"role":"ROLE_SYSTEM","content":"be brief"},)"
            R"({"role":"ROLE_USER","content":"my card 4111 1111 1111 1111"}]})");
  // SHA-256("hi").
  EXPECT_EQ(Str(doc, "reply_sha256"),
            "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4");
  EXPECT_EQ(line.find("4111"), std::string::npos);
  EXPECT_EQ(Str(doc, "request"), "<absent>");
}

TEST(RequestLogTest, RedactedPolicyRedactsTheWholeTextThenTruncates) {
  RequestFinished e = Event();
  std::string prompt = "reach me at jane@example.com " + std::string(5000, 'x');
  e.content = Content(config::v1::CONTENT_POLICY_REDACTED, prompt,
                      "your key sk-proj-abcdefghijklmnopqrstuvwxyz");
  const std::string line = RequestLog::FormatLine(e, 100);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = Parse(parser, line);
  EXPECT_EQ(line.find("jane@"), std::string::npos);
  EXPECT_EQ(line.find("sk-proj"), std::string::npos);
  EXPECT_EQ(Str(doc, "reply"), "your key [SECRET]");
  std::string_view user = Str(doc["request"]["messages"].at(1), "content");
  EXPECT_EQ(user.substr(0, 20), "reach me at [EMAIL] ");
  EXPECT_LE(user.size() + 8, 100u);  // "be brief" took 8 of the 100 bytes
  EXPECT_EQ(bool(doc["content_truncated"]), true);
}

TEST(RequestLogTest, FullPolicyKeepsTheText) {
  RequestFinished e = Event();
  e.content = Content(config::v1::CONTENT_POLICY_FULL, "jane@example.com", "ok");
  const std::string line = RequestLog::FormatLine(e, 4);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = Parse(parser, line);
  EXPECT_EQ(Str(doc["request"]["messages"].at(1), "content"), "jane@example.com");
}

// Whatever the provider sent: invalid UTF-8, every control byte, a megabyte of text, in the
// reply, the error message and the attempt detail.
TEST(RequestLogTest, EveryLineIsValidJsonWhateverTheProviderSent) {
  std::string hostile;
  for (int i = 0; i < 256; ++i) hostile.push_back(static_cast<char>(i));
  hostile += "\xe2\x82\"}\n{\"injected\":1}\xed\xa0\x80";
  std::string megabyte;
  while (megabyte.size() < (1 << 20)) megabyte += hostile;
  for (auto policy : {config::v1::CONTENT_POLICY_NONE, config::v1::CONTENT_POLICY_HASH,
                      config::v1::CONTENT_POLICY_REDACTED, config::v1::CONTENT_POLICY_FULL}) {
    RequestFinished e = Event();
    e.status = absl::UnavailableError(hostile);
    e.attempts[0].set_detail(megabyte);
    e.end_user = hostile;
    e.tags = {{hostile, hostile}};
    if (policy != config::v1::CONTENT_POLICY_NONE) e.content = Content(policy, megabyte, megabyte);
    const std::string line = RequestLog::FormatLine(e, 2048);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    simdjson::dom::parser parser;
    simdjson::dom::element doc = Parse(parser, line);
    EXPECT_EQ(Str(doc, "status"), "UNAVAILABLE");
  }
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RequestLogTest, RotatesBySizeAndKeepsNFiles) {
  const std::string dir = ::testing::TempDir() + "/request_log_rotation";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/requests.jsonl";
  RequestFinished sized = Event();
  sized.request_id = "req-100";
  const size_t line_size = RequestLog::FormatLine(sized, 2048).size() + 1;
  RequestLog::Options options;
  options.path = path;
  options.max_bytes = static_cast<int64_t>(line_size * 10);  // 10 lines per file
  options.max_files = 3;
  {
    auto log = RequestLog::Create(options);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 45; ++i) {
      RequestFinished e = Event();
      e.request_id = absl::StrCat("req-", 100 + i);  // same length for every line
      (*log)->OnRequestFinished(e);
      if (i % 7 == 0) (*log)->Flush();  // batches of different sizes
    }
    (*log)->Flush();
    EXPECT_EQ((*log)->stats().written, 45);
    EXPECT_EQ((*log)->stats().rotations, 4);
  }
  // 45 lines, 10 per file: the live file has 5, .1 .2 .3 have 10 each, the oldest 10 are gone.
  EXPECT_EQ(ReadLines(path).size(), 5u);
  for (int i = 1; i <= 3; ++i) {
    const std::string rotated = absl::StrCat(path, ".", i);
    EXPECT_EQ(ReadLines(rotated).size(), 10u) << rotated;
    EXPECT_LE(std::filesystem::file_size(rotated), options.max_bytes);
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".4"));
  std::vector<std::string> newest = ReadLines(path);
  EXPECT_NE(newest.back().find("req-144"), std::string::npos);
  EXPECT_NE(ReadLines(path + ".3").front().find("req-110"), std::string::npos);
}

TEST(RequestLogTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  const std::string path = ::testing::TempDir() + "/request_log_drops.jsonl";
  std::filesystem::remove(path);
  RequestLog::Options options;
  options.path = path;
  options.queue_capacity = 2;
  auto log = RequestLog::Create(options);
  ASSERT_TRUE(log.ok());
  RequestFinished e = Event();
  e.content = Content(config::v1::CONTENT_POLICY_REDACTED, std::string(1 << 20, '7'), "");
  for (int i = 0; i < 200; ++i) (*log)->OnRequestFinished(e);
  (*log)->Flush();
  const RequestLog::Stats stats = (*log)->stats();
  EXPECT_EQ(stats.written + stats.dropped, 200);
  EXPECT_GT(stats.dropped, 0);  // each line redacts a megabyte: the writer cannot keep up
  EXPECT_EQ(static_cast<int64_t>(ReadLines(path).size()), stats.written);
}

}  // namespace
}  // namespace turnpike

namespace turnpike {
namespace {

// What the request log adds to a request's internal overhead under the default policy: the copy
// into the queue (the writer formats and writes on its own thread). docs/request-log.md quotes the
// printed median; the bound only catches a gross regression on a shared machine.
TEST(RequestLogTest, HotPathCostPerRequest) {
  const std::string path = ::testing::TempDir() + "/request_log_cost.jsonl";
  RequestLog::Options options;
  options.path = path;
  auto log = RequestLog::Create(options);
  ASSERT_TRUE(log.ok());
  RequestFinished e = Event();
  e.tags = {{"team", "claims"}};
  std::vector<int64_t> nanos;
  for (int i = 0; i < 20000; ++i) {
    const absl::Time start = absl::Now();
    (*log)->OnRequestFinished(e);
    nanos.push_back(absl::ToInt64Nanoseconds(absl::Now() - start));
    if (i % 1000 == 999) (*log)->Flush();  // keep the queue from filling
  }
  (*log)->Flush();
  std::sort(nanos.begin(), nanos.end());
  const int64_t p50 = nanos[nanos.size() / 2];
  std::printf("request log: OnRequestFinished p50 %.2f us, p99 %.2f us\n", p50 / 1000.0,
              nanos[nanos.size() * 99 / 100] / 1000.0);
  EXPECT_LT(p50, 20'000);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace turnpike
