// End-to-end tests of the OpenAI-compatible HTTP front door (docs/openai-compatible.md): a real
// gateway started with --http_listen, the fake provider behind it, and libcurl as the client on
// real sockets. Chat completions streamed and not, embeddings, the model list, every error
// status with OpenAI's error JSON, a mid-stream failure as an error event, a client that
// leaves cancelling the upstream, and tools, image parts and response formats in OpenAI's shape.
// The official openai npm SDK drives the same door in tests/integration/openai_sdk_test.mjs.
#include <curl/curl.h>
#include <signal.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/integration/harness.h"

namespace turnpike::testing {
namespace {

using std::chrono::seconds;

constexpr char kKey[] = "test";  // sha256 below

std::string Config(int fake_port) {
  const std::string base = absl::StrCat("http://127.0.0.1:", fake_port, "/v1");
  return absl::StrCat(R"({"version":"http-1","providers":[
    {"name":"openai","kind":"PROVIDER_KIND_OPENAI","baseUrl":")",
                      base, R"(","apiKeyEnv":"TURNPIKE_FAKE_KEY"}],
  "routes":[
    {"capability":"chat","targets":[{"provider":"openai","model":"gpt-4o-mini"}],"retry":{"maxAttempts":1}},
    {"capability":"embed","targets":[{"provider":"openai","model":"text-embedding-3-small"}]},
    {"capability":"forbidden","targets":[{"provider":"openai","model":"gpt-4o-mini"}]}],
  "callers":[{"name":"app","keySha256":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],"allowedCapabilities":["chat","embed"]}]
  })");
}

struct Reply {
  long status = 0;
  std::string body;
  std::vector<std::string> headers;  // raw "name: value" lines
  std::string Header(const std::string& name) const {
    for (const std::string& h : headers) {
      if (h.size() > name.size() + 1 && strncasecmp(h.c_str(), name.c_str(), name.size()) == 0 &&
          h[name.size()] == ':') {
        std::string v = h.substr(name.size() + 1);
        while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
        while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
        return v;
      }
    }
    return "";
  }
};

struct Sink {
  Reply* reply;
  size_t abort_after_bytes = 0;  // 0: read everything
};

size_t OnBody(char* data, size_t size, size_t n, void* p) {
  auto* sink = static_cast<Sink*>(p);
  sink->reply->body.append(data, size * n);
  if (sink->abort_after_bytes > 0 && sink->reply->body.size() >= sink->abort_after_bytes) {
    return 0;  // the client leaves
  }
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* p) {
  static_cast<Reply*>(p)->headers.emplace_back(data, size * n);
  return size * n;
}

class OpenAiHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_, std::vector<std::string>{"--chunks=5"});
    ASSERT_GT(fake_->port(), 0);
    gateway_ = std::make_unique<Gateway>(
        dir_, Config(fake_->port()),
        std::vector<std::string>{"--http_listen=127.0.0.1:0",
                                 "--http_port_file=" + dir_.File("http.port"),
                                 "--max_request_bytes=4096"},
        std::map<std::string, std::string>{{"TURNPIKE_FAKE_KEY", "fake-key"}});
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    http_port_ = WaitForPort(dir_.File("http.port"), gateway_->process());
    ASSERT_GT(http_port_, 0) << gateway_->process().Log();
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& body,
             const std::string& key = kKey, const std::string& content_type = "application/json",
             size_t abort_after_bytes = 0) {
    Reply reply;
    Sink sink{&reply, abort_after_bytes};
    CURL* curl = curl_easy_init();
    const std::string url = absl::StrCat("http://127.0.0.1:", http_port_, path);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_slist* headers = nullptr;
    if (!key.empty())
      headers = curl_slist_append(headers, ("Authorization: Bearer " + key).c_str());
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return reply;
  }

  Reply Chat(const std::string& json, const std::string& key = kKey) {
    return Call("POST", "/v1/chat/completions", json, key);
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<Gateway> gateway_;
  int http_port_ = -1;
};

// The "data: " payloads of an SSE body, in order.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    EXPECT_TRUE(absl::StartsWith(block, "data: ")) << std::string(block);
    out.emplace_back(block.substr(6));
  }
  return out;
}

// The error object of an error reply, checked for OpenAI's four fields.
simdjson::dom::element ErrorOf(simdjson::dom::parser& parser, const std::string& body) {
  simdjson::dom::element root = parser.parse(body);
  simdjson::dom::element error = root["error"];
  EXPECT_TRUE(error["message"].is_string()) << body;
  EXPECT_TRUE(error["type"].is_string()) << body;
  EXPECT_FALSE(error["param"].error()) << body;
  EXPECT_FALSE(error["code"].error()) << body;
  return error;
}

TEST_F(OpenAiHttpTest, CompletesWithOneJsonReply) {
  Reply r = Chat(R"({"model":"chat","messages":[{"role":"user","content":"hello there"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(r.body);
  EXPECT_EQ(std::string_view(root["object"]), "chat.completion");
  EXPECT_EQ("chatcmpl-" + r.Header("x-request-id"), std::string(std::string_view(root["id"])));
  EXPECT_EQ(std::string_view(root["model"]), "chat");
  EXPECT_TRUE(std::string(std::string_view(root["id"])).rfind("chatcmpl-", 0) == 0);
  simdjson::dom::element choice = root["choices"].at(0);
  EXPECT_EQ(std::string_view(choice["message"]["content"]), "Hello from the fake provider");
  EXPECT_EQ(std::string_view(choice["message"]["role"]), "assistant");
  EXPECT_EQ(std::string_view(choice["finish_reason"]), "stop");
  EXPECT_EQ(int64_t(root["usage"]["prompt_tokens"]), 2);
  EXPECT_EQ(int64_t(root["usage"]["completion_tokens"]), 5);
  EXPECT_EQ(int64_t(root["usage"]["total_tokens"]), 7);
  // The provider got the gateway's own request (its model and key), not the client's.
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  EXPECT_NE(seen.body.find("gpt-4o-mini"), std::string::npos);
  // The same sinks as gRPC: the request is counted under its method and capability.
  EXPECT_TRUE(WaitFor(
      [&] {
        return MetricValue(
                   gateway_->Metrics(),
                   R"(turnpike_requests_total{method="Complete",capability="chat",code="OK"})") ==
               1;
      },
      seconds(5)));
}

TEST_F(OpenAiHttpTest, StreamsChunksThenUsageThenDone) {
  Reply r = Chat(
      R"({"model":"chat","stream":true,"stream_options":{"include_usage":true},
          "messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "text/event-stream");
  EXPECT_EQ(r.Header("x-turnpike-provider"), "openai");
  std::vector<std::string> events = Events(r.body);
  ASSERT_GE(events.size(), 4u) << r.body;
  EXPECT_EQ(events.back(), "[DONE]");
  simdjson::dom::parser parser;
  std::string text;
  std::string id;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    simdjson::dom::element chunk = parser.parse(events[i]);
    EXPECT_EQ(std::string_view(chunk["object"]), "chat.completion.chunk");
    if (id.empty()) id = std::string(std::string_view(chunk["id"]));
    EXPECT_EQ(std::string_view(chunk["id"]), id) << "every chunk has the same id";
    simdjson::dom::array choices = chunk["choices"];
    if (i == 0) {
      EXPECT_EQ(std::string_view(choices.at(0)["delta"]["role"]), "assistant");
    }
    if (i + 2 == events.size()) {  // the usage chunk: no choices
      EXPECT_EQ(choices.size(), 0u);
      EXPECT_EQ(int64_t(chunk["usage"]["prompt_tokens"]), 3);
      EXPECT_EQ(int64_t(chunk["usage"]["completion_tokens"]), 5);
      continue;
    }
    EXPECT_TRUE(chunk["usage"].is_null());
    std::string_view content;
    if (!choices.at(0)["delta"]["content"].get(content)) text += content;
    if (i + 3 == events.size()) {
      EXPECT_EQ(std::string_view(choices.at(0)["finish_reason"]), "stop");
    }
  }
  EXPECT_EQ(text, "Hello from the fake provider");
  // Without include_usage there is no usage chunk and no usage field.
  Reply plain =
      Chat(R"({"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(plain.body.find("usage"), std::string::npos) << plain.body;
  EXPECT_EQ(Events(plain.body).back(), "[DONE]");
}

// The fake provider's tool-call arguments (tools/fake_provider/README.md, "Tool calls").
constexpr char kFakeArguments[] =
    R"({"city": "Paris", "unit": "celsius", "note": "say \"hi\" \u00e9 👋"})";
constexpr char kToolTurn[] =
    R"("tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
       "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
       "tool_choice":"required")";

// Tools pass through the door in OpenAI's shape both ways: the call streams back as
// `tool_calls` deltas by index (arguments byte for byte), finish "tool_calls"; the result goes
// back as a "tool" message and the model answers.
TEST_F(OpenAiHttpTest, StreamsAToolCallAndTakesItsResult) {
  Reply r = Chat(absl::StrCat(R"({"model":"chat","stream":true,)", kToolTurn,
                              R"(,"messages":[{"role":"user","content":"Weather in Paris?"}]})"));
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> events = Events(r.body);
  ASSERT_GE(events.size(), 3u) << r.body;
  EXPECT_EQ(events.back(), "[DONE]");
  simdjson::dom::parser parser;
  std::string id, name, arguments, finish;
  int pieces = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    simdjson::dom::element choice = parser.parse(events[i])["choices"].at(0);
    EXPECT_TRUE(choice["delta"]["content"].error() || choice["delta"]["content"].is_null() ||
                std::string_view(choice["delta"]["content"]).empty())
        << events[i];
    std::string_view reason;
    if (!choice["finish_reason"].get(reason)) finish = std::string(reason);
    simdjson::dom::array calls;
    if (choice["delta"]["tool_calls"].get(calls)) continue;
    ++pieces;
    simdjson::dom::element call = calls.at(0);
    EXPECT_EQ(int64_t(call["index"]), 0);
    std::string_view v;
    if (!call["id"].get(v)) {
      EXPECT_TRUE(id.empty()) << "the id comes once";
      id = std::string(v);
      EXPECT_EQ(std::string_view(call["type"]), "function");
      name = std::string(std::string_view(call["function"]["name"]));
    }
    arguments += std::string_view(call["function"]["arguments"]);
  }
  EXPECT_GT(pieces, 1);
  EXPECT_EQ(id, "call_fake_0");
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(arguments, kFakeArguments);
  EXPECT_EQ(finish, "tool_calls");
  // The provider was offered the tool and the forced choice in its own (OpenAI) shape.
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  EXPECT_NE(seen.body.find(R"(\"tool_choice\":\"required\")"), std::string::npos) << seen.body;
  EXPECT_NE(seen.body.find(R"(\"name\":\"get_weather\")"), std::string::npos) << seen.body;

  // Turn 2: the call and its result go back; the model answers in text (unary this time).
  Reply answer = Chat(absl::StrCat(R"({"model":"chat",)", kToolTurn, R"(,"messages":[
        {"role":"user","content":"Weather in Paris?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_fake_0","type":"function",
          "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_fake_0","content":"{\"temperature_c\": 21}"}]})"));
  ASSERT_EQ(answer.status, 200) << answer.body;
  simdjson::dom::element choice = parser.parse(answer.body)["choices"].at(0);
  EXPECT_EQ(std::string_view(choice["message"]["content"]), "Hello from the fake provider");
  EXPECT_EQ(std::string_view(choice["finish_reason"]), "stop");
}

TEST_F(OpenAiHttpTest, AUnaryToolCallComesWholeWithNullContent) {
  Reply r = Chat(absl::StrCat(R"({"model":"chat",)", kToolTurn,
                              R"(,"messages":[{"role":"user","content":"Weather in Paris?"}]})"));
  ASSERT_EQ(r.status, 200) << r.body;
  simdjson::dom::parser parser;
  simdjson::dom::element choice = parser.parse(r.body)["choices"].at(0);
  EXPECT_TRUE(choice["message"]["content"].is_null()) << r.body;
  simdjson::dom::element call = choice["message"]["tool_calls"].at(0);
  EXPECT_EQ(std::string_view(call["id"]), "call_fake_0");
  EXPECT_EQ(std::string_view(call["type"]), "function");
  EXPECT_EQ(std::string_view(call["function"]["name"]), "get_weather");
  EXPECT_EQ(std::string_view(call["function"]["arguments"]), kFakeArguments);
  EXPECT_EQ(std::string_view(choice["finish_reason"]), "tool_calls");
}

// Image parts and a response format reach the provider in OpenAI's shape.
TEST_F(OpenAiHttpTest, PassesImagePartsAndAResponseFormat) {
  Reply r = Chat(
      R"({"model":"chat","response_format":{"type":"json_schema","json_schema":{"name":"w",
          "strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}},
          "messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  HttpResponse seen = HttpRequest("GET", fake_->base() + "/_fake/requests");
  for (const char* expected :
       {R"(\"type\":\"json_schema\")", R"(\"strict\":true)", R"(\"type\":\"image_url\")",
        R"(data:image/png;base64,iVBORw0KGgo=)"}) {
    EXPECT_NE(seen.body.find(expected), std::string::npos) << expected << "\n" << seen.body;
  }
}

TEST_F(OpenAiHttpTest, MidStreamFailureIsAnErrorEventNotASilentEnd) {
  Reply r = Chat(R"({"model":"chat","stream":true,
      "messages":[{"role":"user","content":"x [[fake stream_error_after=2]]"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> events = Events(r.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_NE(events.back(), "[DONE]");
  simdjson::dom::parser parser;
  simdjson::dom::element error = ErrorOf(parser, events.back());
  EXPECT_EQ(std::string_view(error["type"]), "service_unavailable");
}

TEST_F(OpenAiHttpTest, StreamThatFailsBeforeItsFirstChunkIsAPlainHttpError) {
  // No 200 is sent before a target commits: the failure keeps its status and JSON body.
  Reply r = Chat(R"({"model":"chat","stream":true,
      "messages":[{"role":"user","content":"x [[fake status=503]]"}]})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  simdjson::dom::parser parser;
  EXPECT_EQ(std::string_view(ErrorOf(parser, r.body)["type"]), "service_unavailable");
}

TEST_F(OpenAiHttpTest, SigtermDrainsStreamsInFlight) {
  Reply r;
  std::thread client([&] {
    r = Chat(R"({"model":"chat","stream":true,
        "messages":[{"role":"user","content":"x [[fake chunks=10 chunk_delay_ms=50]]"}]})");
  });
  ASSERT_TRUE(WaitFor([&] { return FakeStat(fake_->port(), "active_streams") == 1; }, seconds(5)));
  gateway_->process().Signal(SIGTERM);
  client.join();
  EXPECT_EQ(r.status, 200);
  std::vector<std::string> events = Events(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]") << "the stream in flight finishes";
  EXPECT_EQ(gateway_->process().Wait(seconds(10)), 0) << gateway_->process().Log();
}

TEST_F(OpenAiHttpTest, ErrorsCarryOpenAiJsonAndTheMatchingStatus) {
  simdjson::dom::parser parser;
  const std::string hi = R"("messages":[{"role":"user","content":"hi"}])";
  struct Case {
    Reply reply;
    long status;
    std::string param;
    std::string code;
  };
  std::vector<Case> cases = {
      {Chat(R"({"model":"chat",)"), 400, "", ""},
      {Chat(R"({"model":"chat"})"), 400, "messages", ""},
      {Chat(R"({"model":"chat","messages":[{"role":"robot","content":"x"}]})"), 400,
       "messages[0].role", ""},
      {Chat(absl::StrCat(R"({"model":"chat","temperature":3,)", hi, "}")), 400, "temperature", ""},
      {Chat(absl::StrCat(R"({"messages":[{"role":"user","content":")", std::string(5000, 'a'),
                         R"("}],"model":"chat"})")),
       400, "", ""},
      {Call("POST", "/v1/chat/completions", absl::StrCat(R"({"model":"chat",)", hi, "}"), kKey,
            "text/plain"),
       400, "", ""},
      {Chat(absl::StrCat(R"({"model":"chat",)", hi, "}"), "wrong-key"), 401, "", "unauthenticated"},
      {Chat(absl::StrCat(R"({"model":"chat",)", hi, "}"), ""), 401, "", "unauthenticated"},
      {Chat(absl::StrCat(R"({"model":"forbidden",)", hi, "}")), 403, "", "capability_not_allowed"},
      {Chat(absl::StrCat(R"({"model":"no-such",)", hi, "}")), 404, "", "model_not_found"},
      {Chat(
           R"({"model":"chat","messages":[{"role":"user","content":"x [[fake status=429 retry_after=1]]"}]})"),
       429, "", ""},
      {Chat(R"({"model":"chat","messages":[{"role":"user","content":"x [[fake status=401]]"}]})"),
       500, "", ""},
      {Chat(R"({"model":"chat","messages":[{"role":"user","content":"x [[fake status=503]]"}]})"),
       503, "", ""},
      {Call("GET", "/v1/chat/completions", ""), 405, "", ""},
      {Call("GET", "/v1/nothing", ""), 404, "", ""},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(absl::StrCat("case ", i, ": ", c.reply.body));
    EXPECT_EQ(c.reply.status, c.status);
    EXPECT_EQ(c.reply.Header("Content-Type"), "application/json");
    simdjson::dom::element error = ErrorOf(parser, c.reply.body);
    if (!c.param.empty()) {
      EXPECT_EQ(std::string(std::string_view(error["param"])), c.param);
    }
    if (!c.code.empty()) {
      EXPECT_EQ(std::string(std::string_view(error["code"])), c.code);
    }
  }
  EXPECT_EQ(cases[10].reply.Header("retry-after"), "1");
  EXPECT_EQ(cases[8].reply.Header("x-request-id").rfind("req_", 0), 0u) << "refusals carry the id";
  EXPECT_NE(cases[4].reply.body.find("the limit is 4096"), std::string::npos);
  // Every refusal went through the same request-finished sinks as gRPC's.
  EXPECT_GE(
      MetricValue(
          gateway_->Metrics(),
          R"(turnpike_requests_total{method="Complete",capability="",code="UNAUTHENTICATED"})"),
      2);
}

TEST_F(OpenAiHttpTest, ClientThatLeavesCancelsTheUpstream) {
  // Streaming: the client leaves after the first bytes.
  Reply r = Call(
      "POST", "/v1/chat/completions",
      R"({"model":"chat","stream":true,"messages":[{"role":"user","content":"x [[fake chunks=400 chunk_delay_ms=20]]"}]})",
      kKey, "application/json", /*abort_after_bytes=*/200);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(WaitFor([&] { return FakeStat(fake_->port(), "aborted_streams") == 1; }, seconds(5)))
      << FakeStat(fake_->port(), "aborted_streams");
  EXPECT_TRUE(WaitFor(
      [&] {
        return MetricValue(
                   gateway_->Metrics(),
                   R"(turnpike_requests_total{method="StreamCompletion",capability="chat",code="CANCELLED"})") ==
               1;
      },
      seconds(5)));
  // Non-streaming: the client times out while the provider has not answered yet.
  Reply slow;
  {
    CURL* curl = curl_easy_init();
    const std::string url = absl::StrCat("http://127.0.0.1:", http_port_, "/v1/chat/completions");
    const std::string body =
        R"({"model":"chat","messages":[{"role":"user","content":"x [[fake first_byte_delay_ms=4000]]"}]})";
    curl_slist* headers = curl_slist_append(nullptr, "Authorization: Bearer test");
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 300L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        return MetricValue(
                   gateway_->Metrics(),
                   R"(turnpike_requests_total{method="Complete",capability="chat",code="CANCELLED"})") ==
               1;
      },
      seconds(2)))
      << "the upstream must be cancelled before the provider's 4 s delay ends";
  // The gateway still serves.
  EXPECT_EQ(Chat(R"({"model":"chat","messages":[{"role":"user","content":"hi"}]})").status, 200);
}

TEST_F(OpenAiHttpTest, ListsTheModelsTheCallerMayUse) {
  Reply r = Call("GET", "/v1/models", "");
  ASSERT_EQ(r.status, 200) << r.body;
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(r.body);
  EXPECT_EQ(std::string_view(root["object"]), "list");
  std::vector<std::string> ids;
  for (simdjson::dom::element m : simdjson::dom::array(root["data"])) {
    EXPECT_EQ(std::string_view(m["object"]), "model");
    ids.emplace_back(std::string_view(m["id"]));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"chat", "embed"}));  // not "forbidden"
  EXPECT_EQ(Call("GET", "/v1/models", "", "wrong-key").status, 401);
  EXPECT_EQ(Call("GET", "/v1/models/chat", "").status, 200);
  EXPECT_EQ(Call("GET", "/v1/models/forbidden", "").status, 403);
}

TEST_F(OpenAiHttpTest, Embeds) {
  Reply r = Call("POST", "/v1/embeddings", R"({"model":"embed","input":["a b","c"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(r.body);
  EXPECT_EQ(std::string_view(root["object"]), "list");
  simdjson::dom::array data = root["data"];
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(int64_t(data.at(1)["index"]), 1);
  EXPECT_EQ(simdjson::dom::array(data.at(0)["embedding"]).size(), 8u);
  EXPECT_EQ(int64_t(root["usage"]["prompt_tokens"]), 3);
  // base64: 8 float32 values are 32 bytes, 44 base64 characters.
  Reply b64 =
      Call("POST", "/v1/embeddings", R"({"model":"embed","input":"a","encoding_format":"base64"})");
  ASSERT_EQ(b64.status, 200) << b64.body;
  simdjson::dom::element e = parser.parse(b64.body)["data"].at(0)["embedding"];
  EXPECT_EQ(std::string_view(e).size(), 44u);
  Reply bad = Call("POST", "/v1/embeddings", R"({"model":"embed","input":[[1,2,3]]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("input[0]"), std::string::npos);
}

}  // namespace
}  // namespace turnpike::testing
