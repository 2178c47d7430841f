// Canary tests for the evidence sinks (docs/request-log.md): real processes (fake provider,
// turnpike-control, a gateway watching it with its request log and usage spool in the temp dir).
// Prompts carry one canary of every kind the redactor knows; the fake provider echoes them back
// in replies (unary and streamed, split across chunks) and in error bodies. Then every byte the
// stack wrote is searched: the request log, the usage spool, the snapshot cache, the control
// plane's database and log, the gateway's log (at debug level), both /metrics pages, and the
// error messages and details the caller received. Under NONE, HASH and REDACTED no canary may
// appear anywhere; under FULL they appear in the request log and in provider error messages
// (where docs/request-log.md says) and nowhere else.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"
#include "turnpike/v1/embedding.grpc.pb.h"

namespace turnpike::testing {
namespace {

using std::chrono::seconds;

struct Canary {
  const char* kind;
  std::string text;                  // what the prompt carries
  std::vector<std::string> needles;  // what must not appear (the text and its other spellings)
  const char* placeholder;
};

const std::vector<Canary>& Canaries() {
  static const std::vector<Canary> canaries = {
      {"email", "canary.mail@example-corp.com", {"canary.mail@example-corp.com"}, "[EMAIL]"},
      {"phone", "+1 415 555 0199", {"415 555 0199"}, "[PHONE]"},
      {"card", "4539 1488 0343 6467", {"4539 1488 0343 6467", "4539148803436467"}, "[CARD]"},
      {"iban", "GB82 WEST 1234 5698 7654 32", {"GB82 WEST 1234", "GB82WEST1234"}, "[IBAN]"},
      {"ssn", "219-09-9999", {"219-09-9999"}, "[SSN]"},
      {"ipv4", "203.0.113.77", {"203.0.113.77"}, "[IP]"},
      {"ipv6", "2001:db8:cafe::77", {"2001:db8:cafe::77"}, "[IP]"},
      {"openai", "sk-proj-CANARYopenai0123456789abcd", {"CANARYopenai"}, "[SECRET]"},
      {"anthropic", "sk-ant-api03-CANARYanthropic0123456789", {"CANARYanthropic"}, "[SECRET]"},
      {"aws", "AKIACANARY0123456789", {"AKIACANARY"}, "[SECRET]"},
      {"github", "ghp_CANARYgithub0123456789abcdefghijklmn", {"CANARYgithub"}, "[SECRET]"},
      {"github_pat", "github_pat_CANARYpat0123456789abcdefghij", {"CANARYpat"}, "[SECRET]"},
      {"google", "AIzaCANARYgoogle0123456789abcdefghijklm", {"CANARYgoogle"}, "[SECRET]"},
      {"slack", "xoxb-CANARY-slack-0123456789", {"CANARY-slack"}, "[SECRET]"},
      {"jwt",
       "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiJqd3QifQ.CANARYjwtSignature",
       {"CANARYjwtSignature", "eyJjYW5hcnkiOiJqd3QifQ"},
       "[SECRET]"},
      {"pem",
       "-----BEGIN PRIVATE KEY-----\nMIIEvCANARYpemBody0123\n-----END PRIVATE KEY-----",
       {"CANARYpemBody"},
       "[SECRET]"},
      {"bearer", "Bearer CANARYbearerToken0123", {"CANARYbearerToken"}, "[SECRET]"},
      {"caller_key",
       "tpk_CANARYcaller0123456789abcdefghijklmnopqrstu",
       {"CANARYcaller"},
       "[SECRET]"},
      {"custom", "project NIGHTJAR-77", {"NIGHTJAR-77"}, "[CUSTOM]"},
  };
  return canaries;
}

std::string AllCanaries() {
  std::string text;
  for (const Canary& c : Canaries()) absl::StrAppend(&text, c.kind, ": ", c.text, " | ");
  return text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The canaries found in `haystack`, as "kind" names.
std::vector<std::string> Found(const std::string& haystack) {
  std::vector<std::string> found;
  for (const Canary& c : Canaries()) {
    for (const std::string& needle : c.needles) {
      if (absl::StrContains(haystack, needle)) {
        found.push_back(c.kind);
        break;
      }
    }
  }
  return found;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) absl::StrAppend(&out, out.empty() ? "" : ",", s);
  return out;
}

class EvidenceTest : public ::testing::TestWithParam<config::v1::ContentPolicy> {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    control_ = std::make_unique<ControlPlane>(dir_);
    ASSERT_GT(control_->port(), 0) << control_->process().Log();
    admin_ = std::make_unique<Admin>(control_->address(), control_->admin_token());
    ASSERT_TRUE(admin_->SeedDemo(fake_->port(), "model-0").ok());
    auto channel = ControlChannel(control_->address(), control_->admin_token());
    admin_stub_ = admin::v1::AdminService::NewStub(channel);
    // The policy under test, one custom pattern, and no retries (one attempt per request keeps
    // the counts simple); the admin API shows the policy back.
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::UpdateRouteRequest update;
    config::v1::Route* spec = update.mutable_route()->mutable_spec();
    spec->set_capability(kCapability);
    spec->set_content_policy(GetParam());
    spec->add_redaction_patterns("NIGHTJAR-[0-9]+");
    spec->mutable_retry()->set_max_attempts(1);
    // The 503s must all reach the provider: no circuit breaker opening on them.
    spec->mutable_circuit_breaker()->set_consecutive_failures(1000);
    spec->mutable_circuit_breaker()->set_minimum_volume(1000000);
    update.mutable_update_mask()->add_paths("spec.content_policy");
    update.mutable_update_mask()->add_paths("spec.redaction_patterns");
    update.mutable_update_mask()->add_paths("spec.retry");
    update.mutable_update_mask()->add_paths("spec.circuit_breaker");
    admin::v1::UpdateRouteResponse updated;
    grpc::Status s = admin_stub_->UpdateRoute(&ctx, update, &updated);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(updated.route().spec().content_policy(), GetParam());

    WatchSource source;
    source.control_plane = control_->address();
    source.node_id = "evidence-gw";
    source.node_token_file = dir_.File("evidence-gw.token");
    ASSERT_TRUE(admin_->WriteNodeToken(source.node_id, source.node_token_file).ok());
    gateway_ = std::make_unique<Gateway>(
        dir_, source,
        std::vector<std::string>{"--request_log=" + RequestLogPath(), "--log_level=debug"});
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    ASSERT_TRUE(WaitFor([&] { return admin_->AllAckedCurrent({"evidence-gw"}); }, seconds(15)))
        << gateway_->process().Log();
    channel_ = grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials());
    completion_ = v1::CompletionService::NewStub(channel_);
  }

  std::string RequestLogPath() const { return dir_.File("requests.jsonl"); }

  // What the caller saw of a failed request: the message and the serialized details.
  static std::string ErrorText(const grpc::Status& status) {
    return status.error_message() + "\n" + status.error_details();
  }

  // Sends every kind of request; returns how many request-log lines to expect and collects the
  // caller-visible error text.
  int SendAll() {
    int requests = 0;
    // Unary, the reply echoing every canary.
    {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      v1::CompleteResponse response;
      grpc::Status s = completion_->Complete(
          &ctx, DemoRequest<v1::CompleteRequest>("[[fake echo=1]]" + AllCanaries()), &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(response.text(), AllCanaries());  // the caller gets its reply untouched
      ++requests;
    }
    // Streamed, 13 chunks: canaries are cut across chunk boundaries.
    {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      ctx.AddMetadata("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
      auto reader = completion_->StreamCompletion(
          &ctx,
          DemoRequest<v1::StreamCompletionRequest>("[[fake echo=1 chunks=13]]" + AllCanaries()));
      v1::StreamCompletionResponse response;
      std::string text;
      while (reader->Read(&response)) text += response.delta().text();
      grpc::Status s = reader->Finish();
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(text, AllCanaries());
      ++requests;
    }
    // Error bodies quoting a canary, one per request (a provider message is kept up to 512
    // bytes): a 400 (not retried) and a 503 (an availability failure).
    for (const Canary& c : Canaries()) {
      for (int status : {400, 503}) {
        grpc::ClientContext ctx;
        SetDeadline(ctx);
        v1::CompleteResponse response;
        grpc::Status s =
            completion_->Complete(&ctx,
                                  DemoRequest<v1::CompleteRequest>(absl::StrCat(
                                      "[[fake status=", status, " error_echo=1]]", c.text)),
                                  &response);
        EXPECT_FALSE(s.ok());
        errors_.push_back({c.kind, ErrorText(s)});
        ++requests;
      }
    }
    // Embeddings carrying every canary.
    {
      auto embed = v1::EmbeddingService::NewStub(channel_);
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      v1::EmbedRequest request;
      request.set_capability(kCapability);
      request.add_inputs(AllCanaries());
      v1::EmbedResponse response;
      grpc::Status s = embed->Embed(&ctx, request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      ++requests;
    }
    return requests;
  }

  // The request log's lines once it has `n` (it is written asynchronously).
  std::vector<std::string> AwaitLogLines(int n) {
    std::vector<std::string> lines;
    WaitFor(
        [&] {
          lines.clear();
          std::istringstream in(ReadFile(RequestLogPath()));
          for (std::string line; std::getline(in, line);) lines.push_back(line);
          return static_cast<int>(lines.size()) >= n;
        },
        seconds(15));
    return lines;
  }

  // Every file the stack wrote except the request log and the fake provider's own log (the
  // provider is where the prompt is meant to go).
  std::string EverythingElse() {
    std::string all;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_.path())) {
      if (!entry.is_regular_file()) continue;
      const std::string name = entry.path().filename().string();
      if (absl::StartsWith(name, "requests.jsonl") || absl::StartsWith(name, "fake")) continue;
      absl::StrAppend(&all, "\n== ", name, "\n", ReadFile(entry.path().string()));
    }
    absl::StrAppend(&all, "\n== gateway /metrics\n", gateway_->Metrics());
    return all;
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<admin::v1::AdminService::Stub> admin_stub_;
  std::unique_ptr<Gateway> gateway_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CompletionService::Stub> completion_;
  std::vector<std::pair<std::string, std::string>> errors_;  // canary kind, what the caller saw
};

TEST_P(EvidenceTest, CanariesReachOnlyTheSinksThePolicyAllows) {
  const config::v1::ContentPolicy policy = GetParam();
  const bool full = policy == config::v1::CONTENT_POLICY_FULL;
  const int requests = SendAll();
  const std::vector<std::string> lines = AwaitLogLines(requests);
  ASSERT_EQ(static_cast<int>(lines.size()), requests) << gateway_->process().Log();

  // Every line is JSON with the request's metadata.
  std::string log;
  int with_hash = 0;
  for (const std::string& line : lines) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    std::string_view capability, policy_name;
    EXPECT_EQ(doc["capability"].get(capability), simdjson::SUCCESS);
    EXPECT_EQ(capability, kCapability);
    EXPECT_EQ(doc["content_policy"].get(policy_name), simdjson::SUCCESS);
    EXPECT_EQ(policy_name, config::v1::ContentPolicy_Name(policy).substr(15)) << line;
    std::string_view hash;
    if (doc["request_sha256"].get(hash) == simdjson::SUCCESS && hash.size() == 64) ++with_hash;
    log += line + "\n";
  }
  EXPECT_EQ(with_hash, policy == config::v1::CONTENT_POLICY_NONE ? 0 : requests);

  // The request log: the text only under FULL; placeholders under REDACTED.
  if (full) {
    EXPECT_EQ(Join(Found(log)), Join(Found(AllCanaries()))) << log;
  } else {
    EXPECT_EQ(Join(Found(log)), "") << log;
  }
  if (policy == config::v1::CONTENT_POLICY_REDACTED) {
    for (const Canary& c : Canaries()) EXPECT_TRUE(absl::StrContains(log, c.placeholder)) << c.kind;
  }

  // Error messages and details: the provider's text is redacted unless FULL; the provider's
  // error type is kept. The OpenAI adapter masks `sk-` keys itself whatever the policy
  // ("sk-***", as providers echo the caller's key in 401 bodies).
  for (const auto& [kind, text] : errors_) {
    EXPECT_TRUE(absl::StrContains(text, "invalid_request_error") ||
                absl::StrContains(text, "server_error"))
        << kind << ": " << text;
    const bool masked_by_adapter = kind == "openai" || kind == "anthropic";
    if (full) {
      if (!masked_by_adapter) {
        EXPECT_NE(Join(Found(text)), "") << kind << ": " << text;
      }
    } else {
      EXPECT_EQ(Join(Found(text)), "") << kind << ": " << text;
      if (!masked_by_adapter) {
        EXPECT_TRUE(absl::StrContains(text, "[")) << kind << ": " << text;
      }
    }
  }

  // Everything else, under every policy: the spool, the snapshot cache, the control plane's
  // database and log, the gateway's log, /metrics.
  const std::string everything = EverythingElse();
  EXPECT_EQ(Join(Found(everything)), "") << everything.substr(0, 4000);

  // The caller's trace went upstream: the fake provider saw the trace id in a traceparent.
  const HttpResponse seen = HttpRequest("GET", absl::StrCat(fake_->base(), "/_fake/requests"));
  EXPECT_TRUE(absl::StrContains(seen.body, "00-4bf92f3577b34da6a3ce929d0e0e4736-")) << seen.body;
}

INSTANTIATE_TEST_SUITE_P(
    Policies, EvidenceTest,
    ::testing::Values(config::v1::CONTENT_POLICY_NONE, config::v1::CONTENT_POLICY_HASH,
                      config::v1::CONTENT_POLICY_REDACTED, config::v1::CONTENT_POLICY_FULL),
    [](const auto& info) { return config::v1::ContentPolicy_Name(info.param).substr(15); });

// The admin API refuses what every gateway would refuse: an unknown policy, a custom pattern that
// does not compile.
TEST(EvidenceAdminTest, RejectsBadContentSettings) {
  TempDir dir;
  FakeProvider fake(dir);
  ControlPlane control(dir);
  ASSERT_GT(control.port(), 0) << control.process().Log();
  Admin admin(control.address(), control.admin_token());
  ASSERT_TRUE(admin.SeedDemo(fake.port(), "model-0").ok());
  auto stub = admin::v1::AdminService::NewStub(
      ControlChannel(control.address(), control.admin_token()));
  const auto update = [&](auto mutate, const char* path) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::UpdateRouteRequest request;
    config::v1::Route* spec = request.mutable_route()->mutable_spec();
    spec->set_capability(kCapability);
    mutate(*spec);
    request.mutable_update_mask()->add_paths(path);
    admin::v1::UpdateRouteResponse response;
    return stub->UpdateRoute(&ctx, request, &response);
  };
  grpc::Status s = update([](config::v1::Route& r) { r.add_redaction_patterns("(unclosed"); },
                          "spec.redaction_patterns");
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "redaction_patterns[0]")) << s.error_message();
  s = update([](config::v1::Route& r) { r.set_content_policy(config::v1::ContentPolicy(42)); },
             "spec.content_policy");
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "content_policy")) << s.error_message();
  s = update([](config::v1::Route& r) { r.set_content_policy(config::v1::CONTENT_POLICY_FULL); },
             "spec.content_policy");
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace
}  // namespace turnpike::testing
