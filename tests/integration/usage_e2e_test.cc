// Metering end to end, with real processes: the fake provider, turnpike-control on a temp
// database, and a turnpike-gateway watching it with its usage spool in the temp dir. The tests
// check what finance relies on: the ledger holds one record per request, with the cost the caller
// was told, to the micro-dollar, whatever the outcome; a gateway killed with SIGKILL loses no
// record older than its durability window; a control plane that is down for a while loses and
// doubles nothing.
#include <signal.h>

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"
#include "turnpike/usage/v1/usage.grpc.pb.h"
#include "turnpike/v1/common.pb.h"
#include "turnpike/v1/embedding.grpc.pb.h"

namespace turnpike::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What the caller was told a request cost: the finish's usage, or the PartialCompletion detail
// of an error (absent when nothing was billed).
int64_t ToldCost(const grpc::Status& status, const v1::Usage& finish_usage) {
  if (status.ok()) return finish_usage.cost_usd_micros();
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return 0;
  for (const auto& any : details.details()) {
    v1::PartialCompletion partial;
    if (any.UnpackTo(&partial)) return partial.usage().cost_usd_micros();
  }
  return 0;
}

// The ledger's records, by request id (all pages). Duplicated ids would collapse here, so the
// count of records is returned too.
std::map<std::string, usage::v1::UsageRecord> Ledger(usage::v1::UsageService::Stub& stub,
                                                     size_t* records) {
  std::map<std::string, usage::v1::UsageRecord> out;
  *records = 0;
  std::string token;
  do {
    usage::v1::ListUsageRequest request;
    request.mutable_start_time()->set_seconds(0);
    request.mutable_end_time()->set_seconds(
        std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count() +
        3600);
    request.set_page_size(500);
    request.set_page_token(token);
    usage::v1::ListUsageResponse response;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    if (!stub.ListUsage(&ctx, request, &response).ok()) return out;
    for (const auto& r : response.records()) out[r.request_id()] = r;
    *records += response.records_size();
    token = response.next_page_token();
  } while (!token.empty());
  return out;
}

class UsageE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    StartControlPlane(0);
    ASSERT_TRUE(admin_->SeedDemo(fake_->port(), "model-0").ok());
    // A price, so every served request costs something: $2.50 in, $1.25 cached in, $10 out per
    // 1M tokens; no cache-write rate (so a cache write would cost the input rate).
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreatePriceRequest price;
    price.mutable_price()->mutable_spec()->set_provider("fake");
    price.mutable_price()->mutable_spec()->set_model("model-0");
    price.mutable_price()->mutable_spec()->set_input_usd_micros_per_mtok(2'500'000);
    price.mutable_price()->mutable_spec()->set_output_usd_micros_per_mtok(10'000'000);
    price.mutable_price()->mutable_spec()->set_cached_input_usd_micros_per_mtok(1'250'000);
    admin::v1::CreatePriceResponse created;
    grpc::Status s = admin_stub_->CreatePrice(&ctx, price, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
    StartGateway();
  }

  void StartControlPlane(int port) {
    control_ = std::make_unique<ControlPlane>(dir_, port);
    ASSERT_GT(control_->port(), 0) << control_->process().Log();
    admin_ = std::make_unique<Admin>(control_->address(), control_->admin_token());
    auto channel = ControlChannel(control_->address(), control_->admin_token());
    admin_stub_ = admin::v1::AdminService::NewStub(channel);
    usage_ = usage::v1::UsageService::NewStub(channel);
  }

  void StartGateway(std::vector<std::string> extra_args = {}) {
    WatchSource source;
    source.control_plane = control_->address();
    source.node_id = "usage-gw";
    source.node_token_file = dir_.File("usage-gw.token");
    if (!std::filesystem::exists(source.node_token_file)) {
      ASSERT_TRUE(admin_->WriteNodeToken("usage-gw", source.node_token_file).ok());
    }
    gateway_ = std::make_unique<Gateway>(dir_, source, std::move(extra_args));
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    client_ = std::make_unique<GatewayClient>(gateway_->address());
    ASSERT_TRUE(WaitFor([&] { return client_->Serves("model-0"); }, seconds(15)))
        << gateway_->process().Log();
  }

  // Waits until the ledger holds every id in `told` (and returns it).
  std::map<std::string, usage::v1::UsageRecord> AwaitLedger(
      const std::map<std::string, int64_t>& told, size_t* records) {
    std::map<std::string, usage::v1::UsageRecord> ledger;
    WaitFor(
        [&] {
          ledger = Ledger(*usage_, records);
          for (const auto& [id, cost] : told) {
            if (!ledger.contains(id)) return false;
          }
          return true;
        },
        seconds(30));
    return ledger;
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<admin::v1::AdminService::Stub> admin_stub_;
  std::unique_ptr<usage::v1::UsageService::Stub> usage_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<GatewayClient> client_;
  int probes_ = 0;
};

TEST_F(UsageE2eTest, TheLedgerEqualsWhatCallersWereToldToTheMicroDollar) {
  std::map<std::string, int64_t> told;  // request id -> cost the caller saw
  std::map<std::string, std::string> told_status;
  auto stream = [&](const std::string& id, const std::string& text) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    auto request = DemoRequest<v1::StreamCompletionRequest>(text);
    request.set_request_id(id);
    auto reader = client_->completion().StreamCompletion(&ctx, request);
    v1::StreamCompletionResponse response;
    v1::Usage usage;
    while (reader->Read(&response)) {
      if (response.has_finish()) usage = response.finish().usage();
    }
    const grpc::Status status = reader->Finish();
    told[id] = ToldCost(status, usage);
    told_status[id] = absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
  };
  for (int i = 0; i < 6; ++i) stream(absl::StrCat("ok-", i), absl::StrCat("hello ", i));
  // The provider read part of the prompt from its cache and spent reasoning tokens: the cached
  // part costs the cached rate, the reasoning is billed once, as output.
  stream("prompt-cached",
         "[[fake cached_tokens=3 reasoning_tokens=7]] one two three four five six");
  // A stream cut off after text: an error with partial usage, still metered.
  stream("partial", "[[fake chunks=8 reset_after_chunks=3]]");
  // A provider error before any text: nothing billed, still one record.
  stream("error", "[[fake status=400]]");
  for (int i = 0; i < 3; ++i) {  // unary
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    auto request = DemoRequest<v1::CompleteRequest>(absl::StrCat("unary ", i));
    request.set_request_id(absl::StrCat("unary-", i));
    v1::CompleteResponse response;
    const grpc::Status status = client_->completion().Complete(&ctx, request, &response);
    told[request.request_id()] = ToldCost(status, response.finish().usage());
    told_status[request.request_id()] = status.ok() ? "OK" : "ERROR";
  }
  {  // an embedding
    auto embed = v1::EmbeddingService::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::EmbedRequest request;
    request.set_capability(kCapability);
    request.set_request_id("embed-0");
    request.add_inputs("some text to embed");
    v1::EmbedResponse response;
    const grpc::Status status = embed->Embed(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    told["embed-0"] = response.usage().cost_usd_micros();
    told_status["embed-0"] = "OK";
  }
  {
    // A route with a first-line cache and a degradation answer: a cache hit and a degraded
    // reply are requests too, billed at nothing.
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateRouteRequest route;
    config::v1::Route* spec = route.mutable_route()->mutable_spec();
    spec->set_capability("cached");
    spec->set_allow_unauthenticated(true);
    spec->add_targets()->set_provider("fake");
    spec->mutable_targets(0)->set_model("model-0");
    spec->mutable_retry()->set_max_attempts(1);
    spec->mutable_cache()->set_mode(config::v1::CACHE_MODE_FIRST);
    spec->mutable_cache()->set_ttl_ms(600000);
    spec->mutable_degradation()->set_mode(config::v1::DEGRADATION_MODE_STATIC_RESPONSE);
    spec->mutable_degradation()->set_static_response("try again later");
    admin::v1::CreateRouteResponse created;
    grpc::Status s = admin_stub_->CreateRoute(&ctx, route, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auto unary_on = [&](const std::string& id, const std::string& capability, const std::string& text,
                      v1::CompleteResponse* response) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CompleteRequest request = DemoRequest<v1::CompleteRequest>(text);
    request.set_capability(capability);
    request.set_request_id(id);
    return client_->completion().Complete(&ctx, request, response);
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::CompleteResponse r;
        return unary_on(absl::StrCat("probe-", ++probes_), "cached", "warm the route", &r).ok();
      },
      seconds(15)));
  for (const char* id : {"cache-miss", "cache-hit"}) {
    v1::CompleteResponse response;
    const grpc::Status status = unary_on(id, "cached", "the same question", &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    told[id] = ToldCost(status, response.finish().usage());
    told_status[id] = std::string(id) + (response.start().cache_hit() ? ":hit" : ":miss");
  }
  {
    v1::CompleteResponse response;
    const grpc::Status status =
        unary_on("degraded", "cached", "fail please [[fake status=503]]", &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.start().degraded());
    told["degraded"] = ToldCost(status, response.finish().usage());
  }
  EXPECT_EQ(told_status["cache-hit"], "cache-hit:hit");
  EXPECT_GT(told["cache-miss"], 0);
  EXPECT_EQ(told["cache-hit"], 0);
  EXPECT_EQ(told["degraded"], 0);
  EXPECT_EQ(told_status["partial"], "UNAVAILABLE");
  EXPECT_GT(told["partial"], 0);
  EXPECT_EQ(told_status["error"], "INVALID_ARGUMENT");

  size_t records = 0;
  const auto ledger = AwaitLedger(told, &records);
  // One record per request: no id twice (the ledger also holds the start-up probe's request).
  ASSERT_EQ(records, ledger.size());
  int64_t told_total = 0;
  int64_t ledger_total = 0;
  for (const auto& [id, cost] : told) {
    ASSERT_TRUE(ledger.contains(id)) << id;
    const usage::v1::UsageRecord& r = ledger.at(id);
    EXPECT_EQ(r.cost_usd_micros(), cost) << id;
    EXPECT_EQ(r.input_cost_usd_micros() + r.cached_input_cost_usd_micros() +
                  r.cache_write_cost_usd_micros() + r.output_cost_usd_micros(),
              r.cost_usd_micros())
        << id;
    EXPECT_EQ(r.node_id(), "usage-gw");
    EXPECT_EQ(r.capability(),
              absl::StartsWith(id, "cache") || id == "degraded" ? "cached" : kCapability);
    told_total += cost;
    ledger_total += r.cost_usd_micros();
  }
  EXPECT_GT(told_total, 0);
  EXPECT_EQ(ledger_total, told_total);
  EXPECT_TRUE(ledger.at("partial").partial());
  EXPECT_EQ(ledger.at("partial").status(), "UNAVAILABLE");
  EXPECT_EQ(ledger.at("error").status(), "INVALID_ARGUMENT");
  EXPECT_EQ(ledger.at("error").cost_usd_micros(), 0);
  EXPECT_EQ(ledger.at("embed-0").method(), usage::v1::METHOD_EMBED);
  EXPECT_EQ(ledger.at("unary-0").method(), usage::v1::METHOD_COMPLETE);
  EXPECT_EQ(ledger.at("ok-0").method(), usage::v1::METHOD_STREAM_COMPLETION);
  EXPECT_GT(ledger.at("ok-0").output_tokens(), 0);
  EXPECT_EQ(ledger.at("ok-0").cached_input_tokens(), 0);
  {
    // 9 prompt words (3 of them cached) and 5 content chunks + 7 reasoning tokens:
    // 6 x $2.50 + 3 x $1.25 + 12 x $10 per 1M = 15 + 3.75 + 120 = 138.75 -> 139 micro-dollars.
    const usage::v1::UsageRecord& r = ledger.at("prompt-cached");
    EXPECT_EQ(r.input_tokens(), 9);
    EXPECT_EQ(r.cached_input_tokens(), 3);
    EXPECT_EQ(r.cache_write_input_tokens(), 0);
    EXPECT_EQ(r.output_tokens(), 12);
    EXPECT_EQ(r.reasoning_output_tokens(), 7);
    EXPECT_FALSE(r.usage_estimated());
    EXPECT_EQ(r.cost_usd_micros(), 139);
    EXPECT_EQ(told["prompt-cached"], 139);
    EXPECT_EQ(r.input_cost_usd_micros(), 15);
    EXPECT_EQ(r.cached_input_cost_usd_micros(), 4);  // ceil(18.75) - 15
    EXPECT_EQ(r.output_cost_usd_micros(), 120);
  }
  EXPECT_TRUE(ledger.at("cache-hit").cache_hit());
  EXPECT_FALSE(ledger.at("cache-miss").cache_hit());
  EXPECT_TRUE(ledger.at("degraded").degraded());
  // The gateway's own counter of cost agrees with the ledger (probes included on both sides).
  int64_t ledger_all = 0;
  for (const auto& [id, r] : ledger) ledger_all += r.cost_usd_micros();
  EXPECT_EQ(
      MetricValue(
          gateway_->Metrics(),
          R"(turnpike_cost_usd_micros_total{capability="demo",provider="fake",model="model-0"})") +
          MetricValue(
              gateway_->Metrics(),
              R"(turnpike_cost_usd_micros_total{capability="cached",provider="fake",model="model-0"})"),
      static_cast<double>(ledger_all));
}

// Each provider reports cached, cache-write and reasoning tokens in its own fields with its own
// meaning (docs/providers.md); the record has one meaning for all (docs/usage.md, "Token kinds").
// Through real processes, for OpenAI, Anthropic and Gemini, streamed and unary: the caller's
// finish, the ledger record and QuerySpend's tokens by kind agree, and the cost is the price's
// four rates applied to the normalized counts, rounded up once.
TEST_F(UsageE2eTest, CacheAndReasoningTokensFromEveryProviderAreMeteredAndPriced) {
  struct Kind {
    const char* provider;
    config::v1::ProviderKind kind;
    const char* base_path;
    int64_t rates[4];  // input, cached input (-1: absent), cache write (-1: absent), output
  };
  const Kind kinds[] = {
      {"fake", config::v1::PROVIDER_KIND_OPENAI, "/v1", {2'500'000, 1'250'000, -1, 10'000'000}},
      {"fake-anthropic",
       config::v1::PROVIDER_KIND_ANTHROPIC,
       "",
       {3'000'000, 300'000, 3'750'000, 15'000'000}},
      {"fake-gemini", config::v1::PROVIDER_KIND_GEMINI, "", {300'000, 30'000, -1, 2'500'000}},
  };
  for (const Kind& k : kinds) {
    if (std::string(k.provider) != "fake") {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      admin::v1::CreateProviderRequest provider;
      config::v1::Provider* spec = provider.mutable_provider()->mutable_spec();
      spec->set_name(k.provider);
      spec->set_kind(k.kind);
      spec->set_base_url(absl::StrCat("http://127.0.0.1:", fake_->port(), k.base_path));
      spec->set_credential("fake-key");
      admin::v1::CreateProviderResponse created;
      grpc::Status s = admin_stub_->CreateProvider(&ctx, provider, &created);
      ASSERT_TRUE(s.ok()) << s.error_message();
      grpc::ClientContext price_ctx;
      SetDeadline(price_ctx);
      admin::v1::CreatePriceRequest price;
      config::v1::Price* p = price.mutable_price()->mutable_spec();
      p->set_provider(k.provider);
      p->set_model("model-0");
      p->set_input_usd_micros_per_mtok(k.rates[0]);
      if (k.rates[1] >= 0) p->set_cached_input_usd_micros_per_mtok(k.rates[1]);
      if (k.rates[2] >= 0) p->set_cache_write_usd_micros_per_mtok(k.rates[2]);
      p->set_output_usd_micros_per_mtok(k.rates[3]);
      admin::v1::CreatePriceResponse price_created;
      s = admin_stub_->CreatePrice(&price_ctx, price, &price_created);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateRouteRequest route;
    config::v1::Route* spec = route.mutable_route()->mutable_spec();
    spec->set_capability(absl::StrCat("cache-", k.provider));
    spec->set_allow_unauthenticated(true);
    spec->add_targets()->set_provider(k.provider);
    spec->mutable_targets(0)->set_model("model-0");
    admin::v1::CreateRouteResponse created;
    grpc::Status s = admin_stub_->CreateRoute(&ctx, route, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // 10 prompt words: 4 read from the provider's cache, 2 written to it (only Anthropic reports
  // writes), 4 uncached; 5 content chunks and 7 reasoning tokens.
  const std::string text =
      "[[fake cached_tokens=4 cache_write_tokens=2 reasoning_tokens=7]] a b c d e f";
  std::map<std::string, v1::Usage> told;
  std::map<std::string, std::string> provider_of;
  for (const Kind& k : kinds) {
    const std::string capability = absl::StrCat("cache-", k.provider);
    ASSERT_TRUE(WaitFor(
        [&] {
          grpc::ClientContext ctx;
          SetDeadline(ctx);
          auto request = DemoRequest<v1::CompleteRequest>("warm up");
          request.set_capability(capability);
          request.set_request_id(absl::StrCat("probe-", ++probes_));
          v1::CompleteResponse response;
          return client_->completion().Complete(&ctx, request, &response).ok();
        },
        seconds(15)))
        << capability;
    {
      const std::string id = absl::StrCat(k.provider, "-stream");
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      auto request = DemoRequest<v1::StreamCompletionRequest>(text);
      request.set_capability(capability);
      request.set_request_id(id);
      auto reader = client_->completion().StreamCompletion(&ctx, request);
      v1::StreamCompletionResponse response;
      while (reader->Read(&response)) {
        if (response.has_finish()) told[id] = response.finish().usage();
      }
      const grpc::Status status = reader->Finish();
      ASSERT_TRUE(status.ok()) << id << ": " << status.error_message();
      provider_of[id] = k.provider;
    }
    {
      const std::string id = absl::StrCat(k.provider, "-unary");
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      auto request = DemoRequest<v1::CompleteRequest>(text);
      request.set_capability(capability);
      request.set_request_id(id);
      v1::CompleteResponse response;
      const grpc::Status status = client_->completion().Complete(&ctx, request, &response);
      ASSERT_TRUE(status.ok()) << id << ": " << status.error_message();
      told[id] = response.finish().usage();
      provider_of[id] = k.provider;
    }
  }

  std::map<std::string, int64_t> told_cost;
  for (const auto& [id, usage] : told) told_cost[id] = usage.cost_usd_micros();
  size_t records = 0;
  const auto ledger = AwaitLedger(told_cost, &records);
  ASSERT_EQ(records, ledger.size());
  std::map<std::string, std::array<int64_t, 4>>
      spend_by_provider;  // cached, write, reasoning, cost
  for (const Kind& k : kinds) {
    for (const char* how : {"-stream", "-unary"}) {
      const std::string id = absl::StrCat(k.provider, how);
      SCOPED_TRACE(id);
      ASSERT_TRUE(ledger.contains(id));
      const usage::v1::UsageRecord& r = ledger.at(id);
      const v1::Usage& u = told.at(id);
      const bool anthropic = k.kind == config::v1::PROVIDER_KIND_ANTHROPIC;
      // The same normalized counts whatever the provider's own fields said.
      EXPECT_EQ(r.input_tokens(), 10);
      EXPECT_EQ(r.cached_input_tokens(), 4);
      EXPECT_EQ(r.cache_write_input_tokens(), anthropic ? 2 : 0);
      EXPECT_EQ(r.output_tokens(), 12);                           // reasoning included, once
      EXPECT_EQ(r.reasoning_output_tokens(), anthropic ? 0 : 7);  // Anthropic does not split it
      EXPECT_FALSE(r.usage_estimated());
      // What the caller was told.
      EXPECT_EQ(u.input_tokens(), r.input_tokens());
      EXPECT_EQ(u.cached_input_tokens(), r.cached_input_tokens());
      EXPECT_EQ(u.cache_write_input_tokens(), r.cache_write_input_tokens());
      EXPECT_EQ(u.output_tokens(), r.output_tokens());
      EXPECT_EQ(u.reasoning_output_tokens(), r.reasoning_output_tokens());
      EXPECT_EQ(u.cost_usd_micros(), r.cost_usd_micros());
      // The price applied to the counts, independently of the gateway's arithmetic.
      const int64_t cached_rate = k.rates[1] >= 0 ? k.rates[1] : k.rates[0];
      const int64_t write_rate = k.rates[2] >= 0 ? k.rates[2] : k.rates[0];
      const int64_t written = r.cache_write_input_tokens();
      const int64_t exact = (10 - 4 - written) * k.rates[0] + 4 * cached_rate +
                            written * write_rate + 12 * k.rates[3];
      EXPECT_EQ(r.cost_usd_micros(), (exact + 999'999) / 1'000'000);
      EXPECT_EQ(r.input_cost_usd_micros() + r.cached_input_cost_usd_micros() +
                    r.cache_write_cost_usd_micros() + r.output_cost_usd_micros(),
                r.cost_usd_micros());
      EXPECT_EQ(r.output_cost_usd_micros(),
                r.cost_usd_micros() - (((10 - 4 - written) * k.rates[0] + 4 * cached_rate +
                                        written * write_rate + 999'999) /
                                       1'000'000));
      auto& sums = spend_by_provider[k.provider];
      sums[0] += r.cached_input_tokens();
      sums[1] += r.cache_write_input_tokens();
      sums[2] += r.reasoning_output_tokens();
      sums[3] += r.cost_usd_micros();
    }
  }

  // QuerySpend's tokens by kind, from the hourly rollups, for the hours around now. The probes
  // add requests with no cached or reasoning tokens, and their cost.
  const int64_t now_s =
      std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  usage::v1::QuerySpendRequest query;
  query.mutable_start_time()->set_seconds(now_s / 3600 * 3600 - 3600);
  query.mutable_end_time()->set_seconds(now_s / 3600 * 3600 + 7200);
  query.set_granularity(usage::v1::GRANULARITY_MONTH);
  query.add_group_by(usage::v1::GROUP_BY_CAPABILITY);
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  usage::v1::QuerySpendResponse spend;
  const grpc::Status status = usage_->QuerySpend(&ctx, query, &spend);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::map<std::string, std::array<int64_t, 3>> rows;  // capability -> cached, write, reasoning
  for (const usage::v1::SpendRow& row : spend.rows()) {
    auto& sums = rows[row.capability()];
    sums[0] += row.cached_input_tokens();
    sums[1] += row.cache_write_input_tokens();
    sums[2] += row.reasoning_output_tokens();
  }
  for (const Kind& k : kinds) {
    SCOPED_TRACE(k.provider);
    const auto& want = spend_by_provider[k.provider];
    const auto& got = rows[absl::StrCat("cache-", k.provider)];
    EXPECT_EQ(got[0], want[0]);
    EXPECT_EQ(got[1], want[1]);
    EXPECT_EQ(got[2], want[2]);
  }
  // The gateway's token counter by type agrees.
  EXPECT_EQ(
      MetricValue(
          gateway_->Metrics(),
          R"(turnpike_tokens_total{capability="cache-fake-anthropic",provider="fake-anthropic",model="model-0",type="cache_write_input"})"),
      4.0);
  EXPECT_EQ(
      MetricValue(
          gateway_->Metrics(),
          R"(turnpike_tokens_total{capability="cache-fake-gemini",provider="fake-gemini",model="model-0",type="reasoning_output"})"),
      14.0);
}

// Unary completions from `threads` callers with unique request ids until stopped; records when
// each OK answer reached its caller, and what it was told it cost.
class CountedLoad {
 public:
  struct Done {
    std::chrono::steady_clock::time_point at;
    int64_t cost;
  };
  CountedLoad(const std::string& address, int threads, const std::string& prefix)
      : client_(address) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t, prefix] {
        for (int n = 0; !stop_; ++n) {
          grpc::ClientContext ctx;
          SetDeadline(ctx, seconds(5));
          auto request = DemoRequest<v1::CompleteRequest>("metered");
          request.set_request_id(absl::StrCat(prefix, t, "-", n));
          v1::CompleteResponse response;
          const grpc::Status status = client_.completion().Complete(&ctx, request, &response);
          if (!status.ok()) continue;
          std::lock_guard<std::mutex> lock(mu_);
          done_[request.request_id()] = {std::chrono::steady_clock::now(),
                                         response.finish().usage().cost_usd_micros()};
        }
      });
    }
  }
  ~CountedLoad() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::map<std::string, Done> done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }

 private:
  GatewayClient client_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, Done> done_;
  std::vector<std::thread> threads_;
};

TEST_F(UsageE2eTest, AGatewayKilledUnderLoadLosesNothingOlderThanItsDurabilityWindow) {
  const auto started = std::chrono::steady_clock::now();
  CountedLoad load(gateway_->address(), 4, "kill-");
  // Long enough under load that many requests finished well before the kill.
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::chrono::steady_clock::now() - started > seconds(2) && load.done().size() >= 200;
      },
      seconds(30)));
  gateway_->process().Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(gateway_->process().Wait(seconds(10)).has_value());
  load.Stop();
  // The durability window is the commit interval (20 ms) plus one write and fdatasync; 250 ms
  // leaves room for a slow disk on a loaded machine.
  std::map<std::string, int64_t> durable;
  for (const auto& [id, done] : load.done()) {
    if (done.at < killed - milliseconds(250)) durable[id] = done.cost;
  }
  ASSERT_GE(durable.size(), 100u);
  // The restarted gateway recovers its spool and ships what the killed one had not.
  StartGateway();
  size_t records = 0;
  const auto ledger = AwaitLedger(durable, &records);
  EXPECT_EQ(records, ledger.size());  // no request id twice
  size_t missing = 0;
  for (const auto& [id, cost] : durable) {
    auto it = ledger.find(id);
    if (it == ledger.end()) {
      ++missing;
      continue;
    }
    EXPECT_EQ(it->second.cost_usd_micros(), cost) << id;
  }
  EXPECT_EQ(missing, 0u) << "of " << durable.size() << " requests finished before the window";
  std::printf("kill -9: finished=%zu durable_before_window=%zu in_ledger=%zu\n", load.done().size(),
              durable.size(), ledger.size());
}

TEST_F(UsageE2eTest, AControlPlaneDownForAWhileUnderLoadLosesAndDoublesNothing) {
  CountedLoad load(gateway_->address(), 3, "outage-");
  ASSERT_TRUE(WaitFor([&] { return load.done().size() >= 50; }, seconds(30)));
  const int port = control_->port();
  admin_.reset();
  admin_stub_.reset();
  usage_.reset();
  control_->process().Signal(SIGKILL);
  ASSERT_TRUE(control_->process().Wait(seconds(10)).has_value());
  // The gateway keeps serving on its snapshot and keeps its records.
  const size_t before = load.done().size();
  ASSERT_TRUE(WaitFor([&] { return load.done().size() >= before + 1000; }, seconds(60)));
  StartControlPlane(port);
  ASSERT_TRUE(WaitFor([&] { return load.done().size() >= before + 1200; }, seconds(60)));
  load.Stop();
  std::map<std::string, int64_t> told;
  for (const auto& [id, done] : load.done()) told[id] = done.cost;
  size_t records = 0;
  const auto ledger = AwaitLedger(told, &records);
  EXPECT_EQ(records, ledger.size());  // no request id twice
  int64_t told_total = 0;
  int64_t ledger_total = 0;
  for (const auto& [id, cost] : told) {
    ASSERT_TRUE(ledger.contains(id)) << id;
    told_total += cost;
    ledger_total += ledger.at(id).cost_usd_micros();
  }
  EXPECT_EQ(ledger_total, told_total);
  std::printf("control plane outage: requests=%zu in_ledger=%zu\n", told.size(), ledger.size());
}

// A gateway whose spool (1 MiB) fills while the control plane is down.
class UsageSpoolFullTest : public UsageE2eTest, public ::testing::WithParamInterface<bool> {};

TEST_P(UsageSpoolFullTest, ServesAndCountsOrRefusesAsSetThenRecovers) {
  const bool reject = GetParam();
  gateway_.reset();
  StartGateway(
      {"--usage_spool_max_mb=1", reject ? "--usage_spool_full=reject" : "--usage_spool_full=drop"});
  const int port = control_->port();
  admin_.reset();
  admin_stub_.reset();
  usage_.reset();
  control_->process().Signal(SIGKILL);
  ASSERT_TRUE(control_->process().Wait(seconds(10)).has_value());
  // Drive requests until the spool is full: each keeps its record on disk (~200 bytes).
  grpc::Status last;
  int served = 0;
  std::string page;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 50; ++i) {
          grpc::ClientContext ctx;
          SetDeadline(ctx, seconds(5));
          v1::CompleteResponse response;
          last = client_->completion().Complete(
              &ctx, DemoRequest<v1::CompleteRequest>("fill the spool"), &response);
          if (last.ok()) ++served;
          if (!last.ok()) return true;
        }
        page = gateway_->Metrics();
        return MetricValue(page, "turnpike_usage_records_dropped_total") > 0;
      },
      seconds(120)))
      << page;
  if (reject) {
    // Refused before any upstream work, with a reason a caller can act on.
    EXPECT_EQ(last.error_code(), grpc::StatusCode::UNAVAILABLE) << last.error_message();
    EXPECT_NE(last.error_message().find("usage spool is full"), std::string::npos);
  } else {
    // Still serving; what did not fit is counted.
    EXPECT_TRUE(last.ok()) << last.error_message();
    EXPECT_GT(MetricValue(page, "turnpike_usage_records_dropped_total"), 0) << page;
  }
  EXPECT_GT(served, 3000);  // the spool held thousands of records before it was full
  // The control plane comes back: the spool drains and a rejecting gateway serves again.
  StartControlPlane(port);
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext ctx;
        SetDeadline(ctx, seconds(5));
        v1::CompleteResponse response;
        return client_->completion()
                   .Complete(&ctx, DemoRequest<v1::CompleteRequest>("again"), &response)
                   .ok() &&
               MetricValue(gateway_->Metrics(), "turnpike_usage_spool_bytes") < (1 << 20) / 2;
      },
      seconds(60)));
}

INSTANTIATE_TEST_SUITE_P(DropOrReject, UsageSpoolFullTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Reject" : "Drop"; });

}  // namespace
}  // namespace turnpike::testing
