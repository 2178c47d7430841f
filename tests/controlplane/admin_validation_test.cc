// Table tests of admin request validation: each case breaks one thing and names the field the
// google.rpc.BadRequest must point at. Nothing invalid may change the config version.
#include <functional>

#include "controlplane/validation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"

namespace turnpike::controlplane::testing {
namespace {

using ::testing::Contains;

template <class Spec>
struct Case {
  const char* what;
  std::function<void(Spec&)> mutate;
  const char* field;  // expected violated field
};

class AdminValidationTest : public AdminFixture {
 protected:
  template <class R, class Spec>
  void RunTable(const R& valid, const std::vector<Case<Spec>>& cases) {
    int64_t version = Version();
    for (const auto& c : cases) {
      SCOPED_TRACE(c.what);
      R r = valid;
      c.mutate(*r.mutable_spec());
      absl::StatusOr<R> out = admin_->CreateResource<R>(r, "test");
      ASSERT_FALSE(out.ok());
      EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
      EXPECT_THAT(ViolatedFields(out.status()), Contains(c.field)) << out.status();
    }
    EXPECT_EQ(Version(), version);
    // The valid one goes through.
    EXPECT_TRUE(admin_->CreateResource<R>(valid, "test").ok());
  }
};

TEST_F(AdminValidationTest, Provider) {
  using P = config::v1::Provider;
  ASSERT_TRUE(admin_->CreateCredential(MakeCredential("key", "secret"), "t").ok());
  RunTable<admin::v1::Provider, P>(
      MakeProvider("openai", "key"),
      {
          {"empty name", [](P& p) { p.clear_name(); }, "provider.spec.name"},
          {"name with space", [](P& p) { p.set_name("open ai"); }, "provider.spec.name"},
          {"name starting with dash", [](P& p) { p.set_name("-openai"); }, "provider.spec.name"},
          {"name too long", [](P& p) { p.set_name(std::string(64, 'a')); }, "provider.spec.name"},
          {"name with slash", [](P& p) { p.set_name("a/b"); }, "provider.spec.name"},
          {"no kind", [](P& p) { p.clear_kind(); }, "provider.spec.kind"},
          {"unknown kind", [](P& p) { p.set_kind(static_cast<config::v1::ProviderKind>(99)); },
           "provider.spec.kind"},
          {"no base_url", [](P& p) { p.clear_base_url(); }, "provider.spec.base_url"},
          {"ftp base_url", [](P& p) { p.set_base_url("ftp://x/v1"); }, "provider.spec.base_url"},
          {"base_url without host", [](P& p) { p.set_base_url("https:///v1"); },
           "provider.spec.base_url"},
          {"base_url with user info", [](P& p) { p.set_base_url("https://u:pw@h/v1"); },
           "provider.spec.base_url"},
          {"base_url with query", [](P& p) { p.set_base_url("https://h/v1?key=x"); },
           "provider.spec.base_url"},
          {"base_url with space", [](P& p) { p.set_base_url("https://h /v1"); },
           "provider.spec.base_url"},
          {"api_key given", [](P& p) { p.set_api_key("sk-x"); }, "provider.spec.api_key"},
          {"api_key_env given", [](P& p) { p.set_api_key_env("OPENAI_API_KEY"); },
           "provider.spec.api_key_env"},
          {"credential_version given", [](P& p) { p.set_credential_version(2); },
           "provider.spec.credential_version"},
          {"azure without api_version",
           [](P& p) { p.set_kind(config::v1::PROVIDER_KIND_AZURE_OPENAI); },
           "provider.spec.api_version"},
          {"compat flavor on openai",
           [](P& p) { p.set_compat_flavor(config::v1::COMPAT_FLAVOR_VLLM); },
           "provider.spec.compat_flavor"},
          {"hosted provider without credential", [](P& p) { p.clear_credential(); },
           "provider.spec.credential"},
          {"secret header", [](P& p) { (*p.mutable_headers())["Authorization"] = "Bearer x"; },
           "provider.spec.headers[\"Authorization\"]"},
          {"header with newline", [](P& p) { (*p.mutable_headers())["X-A"] = "a\r\nb: c"; },
           "provider.spec.headers[\"X-A\"]"},
          {"bad header name", [](P& p) { (*p.mutable_headers())["X A"] = "v"; },
           "provider.spec.headers"},
          {"bad credential name", [](P& p) { p.set_credential("Bad Name"); },
           "provider.spec.credential"},
      });
}

TEST_F(AdminValidationTest, Route) {
  using R = config::v1::Route;
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  RunTable<admin::v1::Route, R>(
      MakeRoute("demo", "fake"),
      {
          {"empty capability", [](R& r) { r.clear_capability(); }, "route.spec.capability"},
          {"bad capability", [](R& r) { r.set_capability("claims summary"); },
           "route.spec.capability"},
          {"no targets", [](R& r) { r.clear_targets(); }, "route.spec.targets"},
          {"17 targets",
           [](R& r) {
             for (int i = 0; i < 16; ++i) {
               auto* t = r.add_targets();
               t->set_provider("fake");
               t->set_model("m" + std::to_string(i));
             }
           },
           "route.spec.targets"},
          {"target without provider", [](R& r) { r.mutable_targets(0)->clear_provider(); },
           "route.spec.targets[0].provider"},
          {"target without model", [](R& r) { r.mutable_targets(0)->clear_model(); },
           "route.spec.targets[0].model"},
          {"model with space", [](R& r) { r.mutable_targets(0)->set_model("gpt 4"); },
           "route.spec.targets[0].model"},
          {"duplicate target", [](R& r) { *r.add_targets() = r.targets(0); },
           "route.spec.targets[1]"},
          {"negative max tokens", [](R& r) { r.set_default_max_tokens(-1); },
           "route.spec.default_max_tokens"},
          {"negative timeout", [](R& r) { r.mutable_timeouts()->set_first_token_ms(-5); },
           "route.spec.timeouts.first_token_ms"},
          {"huge timeout", [](R& r) { r.mutable_timeouts()->set_total_ms(2'000'000'000); },
           "route.spec.timeouts.total_ms"},
      });
}

// The resilience settings: the gateway's own limits (common/route_settings.h), one case per
// limit, so that no route an admin can store is NACKed by every gateway.
TEST_F(AdminValidationTest, RouteResilienceSettings) {
  using R = config::v1::Route;
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Route valid = MakeRoute("demo", "fake");
  RunTable<admin::v1::Route, R>(
      valid, {
                 {"connect timeout over a day",
                  [](R& r) { r.mutable_timeouts()->set_connect_ms(86'400'001); },
                  "route.spec.timeouts.connect_ms"},
                 {"negative idle timeout", [](R& r) { r.mutable_timeouts()->set_idle_ms(-1); },
                  "route.spec.timeouts.idle_ms"},
                 {"max_attempts 11", [](R& r) { r.mutable_retry()->set_max_attempts(11); },
                  "route.spec.retry.max_attempts"},
                 {"negative max_attempts", [](R& r) { r.mutable_retry()->set_max_attempts(-1); },
                  "route.spec.retry.max_attempts"},
                 {"max_attempts_per_target 6",
                  [](R& r) { r.mutable_retry()->set_max_attempts_per_target(6); },
                  "route.spec.retry.max_attempts_per_target"},
                 {"base_backoff_ms over a minute",
                  [](R& r) { r.mutable_retry()->set_base_backoff_ms(60'001); },
                  "route.spec.retry.base_backoff_ms"},
                 {"max_backoff_ms over 5 minutes",
                  [](R& r) { r.mutable_retry()->set_max_backoff_ms(300'001); },
                  "route.spec.retry.max_backoff_ms"},
                 {"max_backoff below base",
                  [](R& r) {
                    r.mutable_retry()->set_base_backoff_ms(500);
                    r.mutable_retry()->set_max_backoff_ms(100);
                  },
                  "route.spec.retry.max_backoff_ms"},
                 {"max_backoff below the default base",
                  [](R& r) { r.mutable_retry()->set_max_backoff_ms(50); },
                  "route.spec.retry.max_backoff_ms"},
                 {"max_retry_after_ms over an hour",
                  [](R& r) { r.mutable_retry()->set_max_retry_after_ms(3'600'001); },
                  "route.spec.retry.max_retry_after_ms"},
                 {"consecutive_failures 1001",
                  [](R& r) { r.mutable_circuit_breaker()->set_consecutive_failures(1001); },
                  "route.spec.circuit_breaker.consecutive_failures"},
                 {"failure_rate_window_ms 9",
                  [](R& r) { r.mutable_circuit_breaker()->set_failure_rate_window_ms(9); },
                  "route.spec.circuit_breaker.failure_rate_window_ms"},
                 {"failure_rate_percent 101",
                  [](R& r) { r.mutable_circuit_breaker()->set_failure_rate_percent(101); },
                  "route.spec.circuit_breaker.failure_rate_percent"},
                 {"negative minimum_volume",
                  [](R& r) { r.mutable_circuit_breaker()->set_minimum_volume(-3); },
                  "route.spec.circuit_breaker.minimum_volume"},
                 {"base_ejection_ms over an hour",
                  [](R& r) { r.mutable_circuit_breaker()->set_base_ejection_ms(3'600'001); },
                  "route.spec.circuit_breaker.base_ejection_ms"},
                 {"max_ejection below base",
                  [](R& r) {
                    r.mutable_circuit_breaker()->set_base_ejection_ms(60'000);
                    r.mutable_circuit_breaker()->set_max_ejection_ms(1'000);
                  },
                  "route.spec.circuit_breaker.max_ejection_ms"},
                 {"half_open_probes 101",
                  [](R& r) { r.mutable_circuit_breaker()->set_half_open_probes(101); },
                  "route.spec.circuit_breaker.half_open_probes"},
                 {"probe_timeout_ms over 10 minutes",
                  [](R& r) { r.mutable_circuit_breaker()->set_probe_timeout_ms(600'001); },
                  "route.spec.circuit_breaker.probe_timeout_ms"},
                 {"unknown cache mode",
                  [](R& r) { r.mutable_cache()->set_mode(static_cast<config::v1::CacheMode>(7)); },
                  "route.spec.cache.mode"},
                 {"negative cache ttl", [](R& r) { r.mutable_cache()->set_ttl_ms(-1); },
                  "route.spec.cache.ttl_ms"},
                 {"max_stale over a year",
                  [](R& r) { r.mutable_cache()->set_max_stale_ms(int64_t{366} * 86'400'000); },
                  "route.spec.cache.max_stale_ms"},
                 {"cache under 1 KiB", [](R& r) { r.mutable_cache()->set_max_bytes(10); },
                  "route.spec.cache.max_bytes"},
                 {"cache over 1 GiB",
                  [](R& r) { r.mutable_cache()->set_max_bytes((int64_t{1} << 30) + 1); },
                  "route.spec.cache.max_bytes"},
                 {"unknown degradation mode",
                  [](R& r) {
                    r.mutable_degradation()->set_mode(static_cast<config::v1::DegradationMode>(9));
                  },
                  "route.spec.degradation.mode"},
                 {"static response mode without text",
                  [](R& r) {
                    r.mutable_degradation()->set_mode(config::v1::DEGRADATION_MODE_STATIC_RESPONSE);
                  },
                  "route.spec.degradation.static_response"},
                 {"static response over 64 KiB",
                  [](R& r) {
                    r.mutable_degradation()->set_mode(config::v1::DEGRADATION_MODE_STATIC_RESPONSE);
                    r.mutable_degradation()->set_static_response(std::string(65'537, 'x'));
                  },
                  "route.spec.degradation.static_response"},
                 {"static text without its mode",
                  [](R& r) { r.mutable_degradation()->set_static_response("Try later."); },
                  "route.spec.degradation.static_response"},
                 {"tier on some targets only",
                  [](R& r) {
                    r.mutable_targets(0)->set_tier(0);
                    auto* t = r.add_targets();
                    t->set_provider("fake");
                    t->set_model("other");
                  },
                  "route.spec.targets"},
                 {"negative tier", [](R& r) { r.mutable_targets(0)->set_tier(-1); },
                  "route.spec.targets[0].tier"},
                 {"weight 1001", [](R& r) { r.mutable_targets(0)->set_weight(1001); },
                  "route.spec.targets[0].weight"},
                 {"unknown task", [](R& r) { r.set_task(static_cast<config::v1::RouteTask>(7)); },
                  "route.spec.task"},
                 {"a classification answering with static text",
                  [](R& r) {
                    r.set_task(config::v1::ROUTE_TASK_CLASSIFICATION);
                    r.mutable_degradation()->set_mode(config::v1::DEGRADATION_MODE_STATIC_RESPONSE);
                    r.mutable_degradation()->set_static_response("Try later.");
                  },
                  "route.spec.degradation.mode"},
             });
}

TEST_F(AdminValidationTest, RouteResilienceSettingsAtTheirLimitsAreAccepted) {
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Route r = MakeRoute("edges", "fake");
  config::v1::Route& s = *r.mutable_spec();
  s.mutable_targets(0)->set_tier(0);
  s.mutable_targets(0)->set_weight(1000);
  auto* second = s.add_targets();
  second->set_provider("fake");
  second->set_model("other");
  second->set_tier(3);
  s.mutable_timeouts()->set_total_ms(86'400'000);
  s.mutable_retry()->set_max_attempts(10);
  s.mutable_retry()->set_max_attempts_per_target(5);
  s.mutable_retry()->set_base_backoff_ms(60'000);
  s.mutable_retry()->set_max_backoff_ms(300'000);
  s.mutable_circuit_breaker()->set_failure_rate_window_ms(10);
  s.mutable_circuit_breaker()->set_failure_rate_percent(100);
  s.mutable_circuit_breaker()->set_base_ejection_ms(1'000);
  s.mutable_circuit_breaker()->set_max_ejection_ms(1'000);
  s.mutable_cache()->set_mode(config::v1::CACHE_MODE_FIRST);
  s.mutable_cache()->set_max_bytes(1024);
  s.mutable_degradation()->set_mode(config::v1::DEGRADATION_MODE_STATIC_RESPONSE);
  s.mutable_degradation()->set_static_response(std::string(65'536, 'x'));
  absl::StatusOr<admin::v1::Route> created = admin_->CreateResource(r, "t");
  ASSERT_TRUE(created.ok()) << created.status();
  // An update is checked the same way: a bad value in an update mask's field is refused.
  admin::v1::Route bad;
  bad.mutable_spec()->set_capability("edges");
  bad.mutable_spec()->mutable_retry()->set_max_attempts(11);
  google::protobuf::FieldMask mask;
  mask.add_paths("spec.retry");
  absl::StatusOr<admin::v1::Route> updated = admin_->UpdateResource(bad, mask, "t");
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(updated.status()), Contains("route.spec.retry.max_attempts"));
}

// Every violation is reported at once, each naming its field.
TEST_F(AdminValidationTest, RouteResilienceViolationsAreAllReported) {
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Route r = MakeRoute("many", "fake");
  r.mutable_spec()->mutable_retry()->set_max_attempts(0);  // 0 is the default: fine
  r.mutable_spec()->mutable_retry()->set_max_attempts_per_target(9);
  r.mutable_spec()->mutable_circuit_breaker()->set_half_open_probes(-1);
  r.mutable_spec()->mutable_cache()->set_max_bytes(1);
  absl::StatusOr<admin::v1::Route> out = admin_->CreateResource(r, "t");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(ViolatedFields(out.status()),
              ::testing::ElementsAre("route.spec.retry.max_attempts_per_target",
                                     "route.spec.circuit_breaker.half_open_probes",
                                     "route.spec.cache.max_bytes"));
  EXPECT_THAT(std::string(out.status().message()),
              ::testing::HasSubstr("must be between 1 and 5 (0 for the default, 2)"));
}

TEST_F(AdminValidationTest, Caller) {
  using C = config::v1::Caller;
  RunTable<admin::v1::Caller, C>(
      MakeCaller("claims-service"),
      {
          {"empty name", [](C& c) { c.clear_name(); }, "caller.spec.name"},
          {"bad tier", [](C& c) { c.set_tier("Gold!"); }, "caller.spec.tier"},
          {"bad capability", [](C& c) { c.add_allowed_capabilities("Not Valid"); },
           "caller.spec.allowed_capabilities[1]"},
          {"duplicate capability", [](C& c) { c.add_allowed_capabilities("demo"); },
           "caller.spec.allowed_capabilities[1]"},
          {"key digests given", [](C& c) { c.add_key_sha256(std::string(64, 'a')); },
           "caller.spec.key_sha256"},
          {"untyped certificate SAN", [](C& c) { c.add_cert_sans("claims.internal"); },
           "caller.spec.cert_sans[0]"},
          {"certificate SAN with a space", [](C& c) { c.add_cert_sans("DNS:a b"); },
           "caller.spec.cert_sans[0]"},
          {"certificate SAN twice",
           [](C& c) {
             c.add_cert_sans("DNS:claims.internal");
             c.add_cert_sans("DNS:claims.internal");
           },
           "caller.spec.cert_sans[1]"},
      });
}

// A certificate SAN identifies one caller: a second caller claiming it is refused, naming the
// first; the caller itself may be updated with its own; gateways get them in the snapshot.
TEST_F(AdminValidationTest, CallerCertSansAreUniqueAcrossCallers) {
  admin::v1::Caller claims = MakeCaller("claims-service");
  claims.mutable_spec()->add_cert_sans("DNS:claims.internal");
  claims.mutable_spec()->add_cert_sans("URI:spiffe://example.org/claims");
  ASSERT_TRUE(admin_->CreateResource(claims, "test").ok());
  const int64_t version = Version();
  admin::v1::Caller other = MakeCaller("billing");
  other.mutable_spec()->add_cert_sans("DNS:billing.internal");
  other.mutable_spec()->add_cert_sans("URI:spiffe://example.org/claims");
  absl::StatusOr<admin::v1::Caller> out = admin_->CreateResource(other, "test");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_THAT(ViolatedFields(out.status()), Contains("caller.spec.cert_sans[1]"));
  EXPECT_NE(out.status().message().find("already identifies caller \"claims-service\""),
            std::string::npos)
      << out.status();
  EXPECT_EQ(Version(), version);
  // Updating the owner with its own SANs is fine.
  claims.mutable_spec()->add_cert_sans("email:claims@example.org");
  absl::StatusOr<admin::v1::Caller> updated =
      admin_->UpdateResource(claims, google::protobuf::FieldMask(), "test");
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->spec().cert_sans_size(), 3);
  // Gateways get them in the snapshot.
  std::shared_ptr<const config::v1::Snapshot> published = LastPublished();
  ASSERT_NE(published, nullptr);
  ASSERT_EQ(published->callers_size(), 1);
  EXPECT_EQ(published->callers(0).cert_sans_size(), 3);
}

TEST_F(AdminValidationTest, Price) {
  using P = config::v1::Price;
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Price valid;
  valid.mutable_spec()->set_provider("fake");
  valid.mutable_spec()->set_model("gpt-4o-mini");
  valid.mutable_spec()->set_input_usd_micros_per_mtok(150000);
  valid.mutable_spec()->set_output_usd_micros_per_mtok(600000);
  RunTable<admin::v1::Price, P>(
      valid,
      {
          {"no provider", [](P& p) { p.clear_provider(); }, "price.spec.provider"},
          {"no model", [](P& p) { p.clear_model(); }, "price.spec.model"},
          {"negative input", [](P& p) { p.set_input_usd_micros_per_mtok(-1); },
           "price.spec.input_usd_micros_per_mtok"},
          {"absurd output", [](P& p) { p.set_output_usd_micros_per_mtok(1LL << 60); },
           "price.spec.output_usd_micros_per_mtok"},
          {"negative cached input", [](P& p) { p.set_cached_input_usd_micros_per_mtok(-1); },
           "price.spec.cached_input_usd_micros_per_mtok"},
          {"absurd cached input",
           [](P& p) { p.set_cached_input_usd_micros_per_mtok(1'000'000'000'001LL); },
           "price.spec.cached_input_usd_micros_per_mtok"},
          {"negative cache write", [](P& p) { p.set_cache_write_usd_micros_per_mtok(-5); },
           "price.spec.cache_write_usd_micros_per_mtok"},
          {"absurd cache write", [](P& p) { p.set_cache_write_usd_micros_per_mtok(1LL << 60); },
           "price.spec.cache_write_usd_micros_per_mtok"},
      });
}

// The cache rates are optional: absent means the input rate, and an explicit 0 (a free cache
// read) is kept as set, distinct from absent, through the store and the snapshot.
TEST_F(AdminValidationTest, PriceCacheRatesKeepTheirPresence) {
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Price with_rates;
  with_rates.mutable_spec()->set_provider("fake");
  with_rates.mutable_spec()->set_model("cached-model");
  with_rates.mutable_spec()->set_input_usd_micros_per_mtok(3'000'000);
  with_rates.mutable_spec()->set_output_usd_micros_per_mtok(15'000'000);
  with_rates.mutable_spec()->set_cached_input_usd_micros_per_mtok(0);
  with_rates.mutable_spec()->set_cache_write_usd_micros_per_mtok(3'750'000);
  admin::v1::Price without = with_rates;
  without.mutable_spec()->set_model("plain-model");
  without.mutable_spec()->clear_cached_input_usd_micros_per_mtok();
  without.mutable_spec()->clear_cache_write_usd_micros_per_mtok();
  ASSERT_TRUE(admin_->CreateResource(with_rates, "t").ok());
  ASSERT_TRUE(admin_->CreateResource(without, "t").ok());
  std::shared_ptr<const config::v1::Snapshot> snap = LastPublished();
  ASSERT_NE(snap, nullptr);
  int seen = 0;
  for (const config::v1::Price& p : snap->prices()) {
    if (p.model() == "cached-model") {
      ++seen;
      EXPECT_TRUE(p.has_cached_input_usd_micros_per_mtok());
      EXPECT_EQ(p.cached_input_usd_micros_per_mtok(), 0);
      EXPECT_TRUE(p.has_cache_write_usd_micros_per_mtok());
      EXPECT_EQ(p.cache_write_usd_micros_per_mtok(), 3'750'000);
    } else if (p.model() == "plain-model") {
      ++seen;
      EXPECT_FALSE(p.has_cached_input_usd_micros_per_mtok());
      EXPECT_FALSE(p.has_cache_write_usd_micros_per_mtok());
    }
  }
  EXPECT_EQ(seen, 2);
}

TEST_F(AdminValidationTest, RateLimit) {
  using L = config::v1::RateLimit;
  admin::v1::RateLimit valid;
  valid.mutable_spec()->set_name("demo-rpm");
  valid.mutable_spec()->set_capability("demo");
  valid.mutable_spec()->set_requests_per_minute(60);
  RunTable<admin::v1::RateLimit, L>(
      valid,
      {
          {"empty name", [](L& l) { l.clear_name(); }, "rate_limit.spec.name"},
          {"bad capability", [](L& l) { l.set_capability("A B"); }, "rate_limit.spec.capability"},
          {"bad caller", [](L& l) { l.set_caller("A B"); }, "rate_limit.spec.caller"},
          {"no limits", [](L& l) { l.clear_requests_per_minute(); },
           "rate_limit.spec.requests_per_minute"},
          {"negative tokens", [](L& l) { l.set_tokens_per_minute(-1); },
           "rate_limit.spec.tokens_per_minute"},
          {"negative requests", [](L& l) { l.set_requests_per_minute(-60); },
           "rate_limit.spec.requests_per_minute"},
          {"absurd requests", [](L& l) { l.set_requests_per_minute(1'000'000'001); },
           "rate_limit.spec.requests_per_minute"},
          {"absurd tokens", [](L& l) { l.set_tokens_per_minute(1'000'000'000'001LL); },
           "rate_limit.spec.tokens_per_minute"},
          {"unknown key", [](L& l) { l.set_key(static_cast<config::v1::RateLimitKey>(9)); },
           "rate_limit.spec.key"},
          {"bad tier", [](L& l) { l.set_tier("gold tier"); }, "rate_limit.spec.tier"},
      });
}

TEST_F(AdminValidationTest, Budget) {
  using B = config::v1::Budget;
  admin::v1::Budget valid;
  valid.mutable_spec()->set_name("demo-monthly");
  valid.mutable_spec()->set_capability("demo");
  valid.mutable_spec()->set_limit_usd_micros(5'000'000);
  valid.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_MONTHLY);
  RunTable<admin::v1::Budget, B>(
      valid,
      {
          {"empty name", [](B& b) { b.clear_name(); }, "budget.spec.name"},
          {"no capability", [](B& b) { b.clear_capability(); }, "budget.spec.capability"},
          {"negative limit", [](B& b) { b.set_limit_usd_micros(-1); },
           "budget.spec.limit_usd_micros"},
          {"no window", [](B& b) { b.clear_window(); }, "budget.spec.window"},
          {"unknown window", [](B& b) { b.set_window(static_cast<config::v1::BudgetWindow>(8)); },
           "budget.spec.window"},
          {"zero limit", [](B& b) { b.set_limit_usd_micros(0); }, "budget.spec.limit_usd_micros"},
          {"absurd limit", [](B& b) { b.set_limit_usd_micros(1'000'000'000'000'001LL); },
           "budget.spec.limit_usd_micros"},
          {"bad caller", [](B& b) { b.set_caller("A B"); }, "budget.spec.caller"},
          {"bad tier", [](B& b) { b.set_tier("-gold"); }, "budget.spec.tier"},
          {"unknown action",
           [](B& b) { b.set_on_exhausted(static_cast<config::v1::OverLimitAction>(7)); },
           "budget.spec.on_exhausted"},
          {"degrade without degrade_to",
           [](B& b) { b.set_on_exhausted(config::v1::OVER_LIMIT_ACTION_DEGRADE); },
           "budget.spec.degrade_to"},
          {"degrade to itself",
           [](B& b) {
             b.set_on_exhausted(config::v1::OVER_LIMIT_ACTION_DEGRADE);
             b.set_degrade_to("demo");
           },
           "budget.spec.degrade_to"},
          {"degrade_to without degrade",
           [](B& b) {
             b.set_on_exhausted(config::v1::OVER_LIMIT_ACTION_QUEUE);
             b.set_degrade_to("demo-cheap");
           },
           "budget.spec.degrade_to"},
          {"bad degrade_to",
           [](B& b) {
             b.set_on_exhausted(config::v1::OVER_LIMIT_ACTION_DEGRADE);
             b.set_degrade_to("cheap route");
           },
           "budget.spec.degrade_to"},
      });
}

TEST_F(AdminValidationTest, RouteAdmission) {
  using R = config::v1::Route;
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  RunTable<admin::v1::Route, R>(
      MakeRoute("demo", "fake"),
      {
          {"rate limit degrades",
           [](R& r) { r.set_on_rate_limited(config::v1::OVER_LIMIT_ACTION_DEGRADE); },
           "route.spec.on_rate_limited"},
          {"unknown action",
           [](R& r) { r.set_on_rate_limited(static_cast<config::v1::OverLimitAction>(5)); },
           "route.spec.on_rate_limited"},
          {"negative wait", [](R& r) { r.mutable_admission_queue()->set_max_wait_ms(-1); },
           "route.spec.admission_queue.max_wait_ms"},
          {"wait over a minute", [](R& r) { r.mutable_admission_queue()->set_max_wait_ms(60'001); },
           "route.spec.admission_queue.max_wait_ms"},
          {"negative length", [](R& r) { r.mutable_admission_queue()->set_max_length(-1); },
           "route.spec.admission_queue.max_length"},
          {"queue over 10000", [](R& r) { r.mutable_admission_queue()->set_max_length(10'001); },
           "route.spec.admission_queue.max_length"},
      });
}

// degrade_to must name an existing route, and that route cannot be deleted while a budget
// degrades to it. The admission fields round-trip through Create, Get and Update and reach the
// snapshot gateways receive.
TEST_F(AdminValidationTest, AdmissionFieldsRoundTripAndDegradeToIsAReference) {
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Route route = MakeRoute("summaries", "fake");
  route.mutable_spec()->set_on_rate_limited(config::v1::OVER_LIMIT_ACTION_QUEUE);
  route.mutable_spec()->mutable_admission_queue()->set_max_wait_ms(2'500);
  route.mutable_spec()->mutable_admission_queue()->set_max_length(50);
  ASSERT_TRUE(admin_->CreateResource(route, "t").ok());

  admin::v1::Budget budget;
  budget.mutable_spec()->set_name("summaries-monthly");
  budget.mutable_spec()->set_capability("summaries");
  budget.mutable_spec()->set_limit_usd_micros(50'000'000);
  budget.mutable_spec()->set_window(config::v1::BUDGET_WINDOW_MONTHLY);
  budget.mutable_spec()->set_tier("standard");
  budget.mutable_spec()->set_on_exhausted(config::v1::OVER_LIMIT_ACTION_DEGRADE);
  budget.mutable_spec()->set_degrade_to("summaries-cheap");
  budget.mutable_spec()->set_fail_open(true);
  const int64_t version = Version();
  absl::StatusOr<admin::v1::Budget> missing = admin_->CreateResource(budget, "t");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ViolatedFields(missing.status()), Contains("budget.spec.degrade_to"));
  EXPECT_EQ(Version(), version);

  ASSERT_TRUE(admin_->CreateResource(MakeRoute("summaries-cheap", "fake", "small"), "t").ok());
  ASSERT_TRUE(admin_->CreateResource(budget, "t").ok());
  admin::v1::RateLimit limit;
  limit.mutable_spec()->set_name("per-user-tpm");
  limit.mutable_spec()->set_tokens_per_minute(20'000);
  limit.mutable_spec()->set_key(config::v1::RATE_LIMIT_KEY_PER_END_USER);
  limit.mutable_spec()->set_fail_open(true);
  ASSERT_TRUE(admin_->CreateResource(limit, "t").ok());

  absl::StatusOr<admin::v1::Budget> got =
      admin_->GetResource<admin::v1::Budget>("summaries-monthly");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->spec().SerializeAsString(), budget.spec().SerializeAsString());
  std::shared_ptr<const config::v1::Snapshot> snap = LastPublished();
  ASSERT_EQ(snap->budgets_size(), 1);
  EXPECT_EQ(snap->budgets(0).SerializeAsString(), budget.spec().SerializeAsString());
  ASSERT_EQ(snap->rate_limits_size(), 1);
  EXPECT_EQ(snap->rate_limits(0).SerializeAsString(), limit.spec().SerializeAsString());
  bool found = false;
  for (const auto& r : snap->routes()) {
    if (r.capability() != "summaries") continue;
    found = true;
    EXPECT_EQ(r.on_rate_limited(), config::v1::OVER_LIMIT_ACTION_QUEUE);
    EXPECT_EQ(r.admission_queue().max_wait_ms(), 2'500);
    EXPECT_EQ(r.admission_queue().max_length(), 50);
  }
  EXPECT_TRUE(found);

  // Update with a mask switches the action back to reject (degrade_to must go with it).
  admin::v1::Budget change;
  change.mutable_spec()->set_name("summaries-monthly");
  change.mutable_spec()->set_on_exhausted(config::v1::OVER_LIMIT_ACTION_REJECT);
  google::protobuf::FieldMask mask;
  mask.add_paths("spec.on_exhausted");
  absl::StatusOr<admin::v1::Budget> half = admin_->UpdateResource(change, mask, "t");
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(ViolatedFields(half.status()), Contains("budget.spec.degrade_to"));

  absl::Status in_use = admin_->DeleteResource<admin::v1::Route>("summaries-cheap", 0, "t");
  EXPECT_EQ(in_use.code(), absl::StatusCode::kFailedPrecondition) << in_use;
  EXPECT_THAT(std::string(in_use.message()), ::testing::HasSubstr("summaries-monthly"));

  mask.add_paths("spec.degrade_to");
  absl::StatusOr<admin::v1::Budget> updated = admin_->UpdateResource(change, mask, "t");
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->spec().on_exhausted(), config::v1::OVER_LIMIT_ACTION_REJECT);
  EXPECT_TRUE(updated->spec().fail_open());
  EXPECT_TRUE(admin_->DeleteResource<admin::v1::Route>("summaries-cheap", 0, "t").ok());
}

// Routing rules (docs/routing.md): each broken rule names its field; the valid route (a tier
// chain for an existing tier, a 10 % variant, least latency) is stored and published as given.
TEST_F(AdminValidationTest, RouteRoutingRules) {
  using R = config::v1::Route;
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Caller gold = MakeCaller("gold-app");
  gold.mutable_spec()->set_tier("gold");
  ASSERT_TRUE(admin_->CreateResource(gold, "t").ok());
  admin::v1::Route valid = MakeRoute("summaries", "fake", "small");
  R& spec = *valid.mutable_spec();
  spec.set_target_selection(config::v1::TARGET_SELECTION_LEAST_LATENCY);
  auto* chain = spec.add_tier_chains();
  chain->set_tier("gold");
  auto* t = chain->add_targets();
  t->set_provider("fake");
  t->set_model("large");
  auto* variant = spec.add_variants();
  variant->set_name("candidate");
  variant->set_percent(10);
  variant->add_callers("tester");
  t = variant->add_targets();
  t->set_provider("fake");
  t->set_model("cand");
  auto add_variant = [](R& r, const std::string& name, uint32_t percent) {
    auto* v = r.add_variants();
    v->set_name(name);
    v->set_percent(percent);
    auto* target = v->add_targets();
    target->set_provider("fake");
    target->set_model(name);
  };
  RunTable<admin::v1::Route, R>(
      valid,
      {
          {"tier chain without targets", [](R& r) { r.mutable_tier_chains(0)->clear_targets(); },
           "route.spec.tier_chains[0].targets"},
          {"tier chain without tier", [](R& r) { r.mutable_tier_chains(0)->clear_tier(); },
           "route.spec.tier_chains[0].tier"},
          {"tier twice", [](R& r) { *r.add_tier_chains() = r.tier_chains(0); },
           "route.spec.tier_chains[1].tier"},
          {"chain target without model",
           [](R& r) { r.mutable_tier_chains(0)->mutable_targets(0)->clear_model(); },
           "route.spec.tier_chains[0].targets[0].model"},
          {"variant without targets", [](R& r) { r.mutable_variants(0)->clear_targets(); },
           "route.spec.variants[0].targets"},
          {"variant over 100 %", [](R& r) { r.mutable_variants(0)->set_percent(101); },
           "route.spec.variants[0].percent"},
          {"variants adding up to 110 %", [&](R& r) { add_variant(r, "second", 100); },
           "route.spec.variants"},
          {"variant twice", [&](R& r) { add_variant(r, "candidate", 1); },
           "route.spec.variants[1].name"},
          {"variant receiving nothing",
           [](R& r) {
             r.mutable_variants(0)->set_percent(0);
             r.mutable_variants(0)->clear_callers();
           },
           "route.spec.variants[0]"},
          {"unknown selection",
           [](R& r) { r.set_target_selection(static_cast<config::v1::TargetSelection>(7)); },
           "route.spec.target_selection"},
      });
  std::shared_ptr<const config::v1::Snapshot> snap = LastPublished();
  ASSERT_EQ(snap->routes_size(), 1);
  EXPECT_EQ(snap->routes(0).SerializeAsString(), valid.spec().SerializeAsString());

  // A tier no caller has, and a chain target naming no provider: FAILED_PRECONDITION.
  admin::v1::Route other = valid;
  other.mutable_spec()->set_capability("other");
  other.mutable_spec()->mutable_tier_chains(0)->set_tier("platinum");
  absl::StatusOr<admin::v1::Route> no_tier = admin_->CreateResource(other, "t");
  ASSERT_FALSE(no_tier.ok());
  EXPECT_EQ(no_tier.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ViolatedFields(no_tier.status()), Contains("route.spec.tier_chains[0].tier"));
  other = valid;
  other.mutable_spec()->set_capability("other");
  other.mutable_spec()->mutable_variants(0)->mutable_targets(0)->set_provider("nope");
  absl::StatusOr<admin::v1::Route> no_provider = admin_->CreateResource(other, "t");
  ASSERT_FALSE(no_provider.ok());
  EXPECT_EQ(no_provider.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ViolatedFields(no_provider.status()),
              Contains("route.spec.variants[0].targets[0].provider"));
  // A provider a variant uses cannot be deleted from under it.
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("spare"), "t").ok());
  other = valid;
  other.mutable_spec()->set_capability("other");
  other.mutable_spec()->mutable_variants(0)->mutable_targets(0)->set_provider("spare");
  ASSERT_TRUE(admin_->CreateResource(other, "t").ok());
  absl::Status in_use = admin_->DeleteResource<admin::v1::Provider>("spare", 0, "t");
  EXPECT_EQ(in_use.code(), absl::StatusCode::kFailedPrecondition) << in_use;
}

TEST_F(AdminValidationTest, RouteLatencyClasses) {
  using R = config::v1::Route;
  ASSERT_TRUE(admin_->CreateResource(MakeProvider("fake"), "t").ok());
  admin::v1::Route valid = MakeRoute("reports", "fake", "small");
  R& spec = *valid.mutable_spec();
  config::v1::LatencyClasses& classes = *spec.mutable_latency_classes();
  classes.mutable_interactive()->mutable_timeouts()->set_first_token_ms(2000);
  classes.mutable_batch()->mutable_timeouts()->set_total_ms(3'600'000);
  auto* t = classes.mutable_batch()->add_targets();
  t->set_provider("fake");
  t->set_model("cheap");
  RunTable<admin::v1::Route, R>(
      valid,
      {
          {"class timeout below its limit",
           [](R& r) {
             r.mutable_latency_classes()->mutable_batch()->mutable_timeouts()->set_total_ms(-1);
           },
           "route.spec.latency_classes.batch.timeouts.total_ms"},
          {"class timeout above its limit",
           [](R& r) {
             r.mutable_latency_classes()->mutable_interactive()->mutable_timeouts()->set_idle_ms(
                 100'000'000);
           },
           "route.spec.latency_classes.interactive.timeouts.idle_ms"},
          {"class target twice",
           [](R& r) {
             auto* batch = r.mutable_latency_classes()->mutable_batch();
             *batch->add_targets() = batch->targets(0);
           },
           "route.spec.latency_classes.batch.targets[1]"},
          {"class target without model",
           [](R& r) {
             r.mutable_latency_classes()->mutable_batch()->mutable_targets(0)->clear_model();
           },
           "route.spec.latency_classes.batch.targets[0].model"},
      });
  std::shared_ptr<const config::v1::Snapshot> snap = LastPublished();
  ASSERT_EQ(snap->routes_size(), 1);
  EXPECT_EQ(snap->routes(0).SerializeAsString(), valid.spec().SerializeAsString());

  // A class's chain naming no provider: FAILED_PRECONDITION naming the field.
  admin::v1::Route other = valid;
  other.mutable_spec()->set_capability("other");
  other.mutable_spec()
      ->mutable_latency_classes()
      ->mutable_batch()
      ->mutable_targets(0)
      ->set_provider("nope");
  absl::StatusOr<admin::v1::Route> no_provider = admin_->CreateResource(other, "t");
  ASSERT_FALSE(no_provider.ok());
  EXPECT_EQ(no_provider.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ViolatedFields(no_provider.status()),
              Contains("route.spec.latency_classes.batch.targets[0].provider"));
}

TEST_F(AdminValidationTest, CredentialRequests) {
  struct CredCase {
    const char* what;
    admin::v1::CreateCredentialRequest request;
    const char* field;
  };
  std::vector<CredCase> cases = {
      {"no name", MakeCredential("", "s"), "credential.name"},
      {"bad name", MakeCredential("Bad Name", "s"), "credential.name"},
      {"no secret", MakeCredential("k", ""), "secret"},
      {"secret with newline", MakeCredential("k", "abc\ndef"), "secret"},
      {"secret too long", MakeCredential("k", std::string(8193, 'x')), "secret"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto out = admin_->CreateCredential(c.request, "t");
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(out.status()), Contains(c.field));
    EXPECT_EQ(std::string(out.status().message()).find("abc"), std::string::npos);
  }
  ASSERT_TRUE(admin_->CreateCredential(MakeCredential("k", "s"), "t").ok());
  admin::v1::RotateCredentialRequest rotate;
  rotate.set_name("k");
  rotate.set_secret("s2");
  rotate.mutable_grace_period()->set_seconds(-1);
  auto r = admin_->RotateCredential(rotate, "t");
  EXPECT_THAT(ViolatedFields(r.status()), Contains("grace_period"));
}

TEST_F(AdminValidationTest, PaginationInputs) {
  auto bad_token = admin_->ListResources<admin::v1::Route>(10, "not-a-token");
  EXPECT_THAT(ViolatedFields(bad_token.status()), Contains("page_token"));
  auto bad_size = admin_->ListResources<admin::v1::Route>(-1, "");
  EXPECT_THAT(ViolatedFields(bad_size.status()), Contains("page_size"));
}

// The publish gate: specs that pass admin validation but would make an inconsistent snapshot.
TEST(SnapshotConsistencyTest, RejectsBrokenSnapshots) {
  auto base = [] {
    config::v1::Snapshot s;
    s.set_version("1");
    auto* p = s.add_providers();
    p->set_name("fake");
    p->set_kind(config::v1::PROVIDER_KIND_OPENAI);
    p->set_base_url("http://127.0.0.1:1/v1");
    p->set_credential("k");
    p->set_api_key("sk");
    auto* r = s.add_routes();
    r->set_capability("demo");
    auto* t = r->add_targets();
    t->set_provider("fake");
    t->set_model("m");
    auto* c = s.add_callers();
    c->set_name("c");
    c->add_key_sha256(std::string(64, 'a'));
    return s;
  };
  ASSERT_TRUE(CheckSnapshotConsistency(base()).ok());
  struct SnapCase {
    const char* what;
    std::function<void(config::v1::Snapshot&)> mutate;
    const char* field;
  };
  std::vector<SnapCase> cases = {
      {"dangling target",
       [](auto& s) { s.mutable_routes(0)->mutable_targets(0)->set_provider("x"); },
       "routes[0].targets[0].provider"},
      {"duplicate provider", [](auto& s) { *s.add_providers() = s.providers(0); },
       "providers[1].name"},
      {"duplicate route", [](auto& s) { *s.add_routes() = s.routes(0); }, "routes[1].capability"},
      {"credential without key", [](auto& s) { s.mutable_providers(0)->clear_api_key(); },
       "providers[0].api_key"},
      {"bad digest", [](auto& s) { s.mutable_callers(0)->set_key_sha256(0, "ABC"); },
       "callers[0].key_sha256[0]"},
      {"shared digest",
       [](auto& s) {
         auto* c = s.add_callers();
         c->set_name("d");
         c->add_key_sha256(std::string(64, 'a'));
       },
       "callers[1].key_sha256[0]"},
      {"shared certificate SAN",
       [](auto& s) {
         s.mutable_callers(0)->add_cert_sans("DNS:x.internal");
         auto* c = s.add_callers();
         c->set_name("d");
         c->add_cert_sans("DNS:x.internal");
       },
       "callers[1].cert_sans[0]"},
      {"bad certificate SAN", [](auto& s) { s.mutable_callers(0)->add_cert_sans("x"); },
       "callers[0].cert_sans[0]"},
      {"price of unknown provider",
       [](auto& s) {
         auto* p = s.add_prices();
         p->set_provider("ghost");
         p->set_model("m");
       },
       "prices[0].provider"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    config::v1::Snapshot s = base();
    c.mutate(s);
    absl::Status st = CheckSnapshotConsistency(s);
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(ViolatedFields(st), Contains(c.field)) << st;
    EXPECT_EQ(std::string(st.ToString()).find("sk"), std::string::npos);
  }
}

}  // namespace
}  // namespace turnpike::controlplane::testing
