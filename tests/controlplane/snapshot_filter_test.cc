// The view of a snapshot a node restricted to capabilities receives
// (controlplane/snapshot_filter.h): only its routes and the routes their budgets degrade to, the
// providers every chain of those routes names (targets, tier chains, variants, latency classes) and
// no other, their prices, the rate limits and budgets of those capabilities; the view is
// consistent; and views are shared per (set, version).
#include "controlplane/snapshot_filter.h"

#include <algorithm>

#include "controlplane/validation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace turnpike::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

void AddProvider(config::v1::Snapshot& s, const std::string& name) {
  config::v1::Provider* p = s.add_providers();
  p->set_name(name);
  p->set_kind(config::v1::PROVIDER_KIND_OPENAI);
  p->set_base_url("http://127.0.0.1:9/v1");
  p->set_credential("cred-" + name);
  p->set_api_key("sk-SECRET-OF-" + name);
  p->set_credential_version(1);
  config::v1::Price* price = s.add_prices();
  price->set_provider(name);
  price->set_model("m");
  price->set_input_usd_micros_per_mtok(1);
}

void SetTarget(config::v1::Target* t, const std::string& provider) {
  t->set_provider(provider);
  t->set_model("m");
}

config::v1::Route* AddRoute(config::v1::Snapshot& s, const std::string& capability,
                            const std::string& provider) {
  config::v1::Route* r = s.add_routes();
  r->set_capability(capability);
  SetTarget(r->add_targets(), provider);
  return r;
}

void AddBudget(config::v1::Snapshot& s, const std::string& name, const std::string& capability,
               const std::string& degrade_to = "") {
  config::v1::Budget* b = s.add_budgets();
  b->set_name(name);
  b->set_capability(capability);
  b->set_limit_usd_micros(100);
  b->set_window(config::v1::BUDGET_WINDOW_DAILY);
  if (!degrade_to.empty()) {
    b->set_on_exhausted(config::v1::OVER_LIMIT_ACTION_DEGRADE);
    b->set_degrade_to(degrade_to);
  }
}

void AddLimit(config::v1::Snapshot& s, const std::string& name, const std::string& capability) {
  config::v1::RateLimit* l = s.add_rate_limits();
  l->set_name(name);
  l->set_capability(capability);
  l->set_requests_per_minute(10);
}

// Capability "claims" uses p-main, and p-tier, p-variant, p-batch through its other chains; its
// budget degrades to "claims-cheap" (p-cheap), whose budget degrades to "claims-cheapest"
// (p-cheapest). "hr" uses p-hr only.
config::v1::Snapshot Full() {
  config::v1::Snapshot s;
  s.set_version("7");
  for (const char* p :
       {"p-main", "p-tier", "p-variant", "p-batch", "p-cheap", "p-cheapest", "p-hr", "p-idle"}) {
    AddProvider(s, p);
  }
  config::v1::Route* claims = AddRoute(s, "claims", "p-main");
  config::v1::TierChain* gold = claims->add_tier_chains();
  gold->set_tier("gold");
  SetTarget(gold->add_targets(), "p-tier");
  config::v1::Variant* v = claims->add_variants();
  v->set_name("candidate");
  v->set_percent(10);
  SetTarget(v->add_targets(), "p-variant");
  SetTarget(claims->mutable_latency_classes()->mutable_batch()->add_targets(), "p-batch");
  AddRoute(s, "claims-cheap", "p-cheap");
  AddRoute(s, "claims-cheapest", "p-cheapest");
  AddRoute(s, "hr", "p-hr");
  AddBudget(s, "claims-daily", "claims", "claims-cheap");
  AddBudget(s, "cheap-daily", "claims-cheap", "claims-cheapest");
  AddBudget(s, "hr-daily", "hr");
  AddLimit(s, "everything", "");
  AddLimit(s, "claims-rpm", "claims");
  AddLimit(s, "hr-rpm", "hr");
  s.add_callers()->set_name("app");
  return s;
}

template <class T, class F>
std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<T>& items, F name) {
  std::vector<std::string> out;
  for (const T& item : items) out.push_back(name(item));
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SnapshotFilterTest, ARestrictedNodeGetsItsRoutesAndWhatTheyNeedOnly) {
  const config::v1::Snapshot full = Full();
  ASSERT_TRUE(CheckSnapshotConsistency(full).ok()) << CheckSnapshotConsistency(full);
  const config::v1::Snapshot view = FilterSnapshot(full, {"claims"});
  EXPECT_TRUE(CheckSnapshotConsistency(view).ok()) << CheckSnapshotConsistency(view);
  EXPECT_EQ(view.version(), "7");
  EXPECT_THAT(Names(view.routes(), [](const auto& r) { return r.capability(); }),
              ElementsAre("claims", "claims-cheap", "claims-cheapest"));
  EXPECT_THAT(Names(view.providers(), [](const auto& p) { return p.name(); }),
              ElementsAre("p-batch", "p-cheap", "p-cheapest", "p-main", "p-tier", "p-variant"));
  EXPECT_THAT(Names(view.prices(), [](const auto& p) { return p.provider(); }),
              ElementsAre("p-batch", "p-cheap", "p-cheapest", "p-main", "p-tier", "p-variant"));
  EXPECT_THAT(Names(view.budgets(), [](const auto& b) { return b.name(); }),
              ElementsAre("cheap-daily", "claims-daily"));
  EXPECT_THAT(Names(view.rate_limits(), [](const auto& l) { return l.name(); }),
              ElementsAre("claims-rpm", "everything"));
  EXPECT_EQ(view.callers_size(), 1);
  const std::string bytes = view.SerializeAsString();
  EXPECT_THAT(bytes, Not(HasSubstr("sk-SECRET-OF-p-hr")));
  EXPECT_THAT(bytes, Not(HasSubstr("sk-SECRET-OF-p-idle")));
  EXPECT_THAT(bytes, HasSubstr("sk-SECRET-OF-p-main"));
}

TEST(SnapshotFilterTest, DegradeChainsAreFollowedOneWayOnly) {
  const config::v1::Snapshot full = Full();
  // claims-cheap reaches claims-cheapest, not claims (nothing degrades back to it).
  EXPECT_THAT(ReachableCapabilities(full, {"claims-cheap"}),
              ElementsAre("claims-cheap", "claims-cheapest"));
  EXPECT_THAT(ReachableCapabilities(full, {"hr"}), ElementsAre("hr"));
  // A capability whose route was deleted since the token was made is simply not served.
  EXPECT_THAT(ReachableCapabilities(full, {"gone", "hr"}), ElementsAre("hr"));
  const config::v1::Snapshot view = FilterSnapshot(full, {"gone"});
  EXPECT_TRUE(CheckSnapshotConsistency(view).ok());
  EXPECT_EQ(view.routes_size(), 0);
  EXPECT_EQ(view.providers_size(), 0);
  EXPECT_THAT(Names(view.rate_limits(), [](const auto& l) { return l.name(); }),
              ElementsAre("everything"));
}

TEST(SnapshotFilterTest, ViewsAreSharedPerCapabilitySetAndVersion) {
  FilteredSnapshots views;
  auto v7 = std::make_shared<const config::v1::Snapshot>(Full());
  const VersionedSnapshot full7{7, v7};
  // No restriction: the full snapshot itself.
  EXPECT_EQ(views.For(full7, {}).snapshot, v7);
  const VersionedSnapshot a = views.For(full7, {"claims"});
  EXPECT_NE(a.snapshot, v7);
  EXPECT_EQ(a.version, 7);
  EXPECT_EQ(views.For(full7, {"claims"}).snapshot, a.snapshot);  // filtered once
  const VersionedSnapshot b = views.For(full7, {"hr"});
  EXPECT_NE(b.snapshot, a.snapshot);
  EXPECT_EQ(b.snapshot->routes_size(), 1);
  config::v1::Snapshot next = Full();
  next.set_version("8");
  const VersionedSnapshot full8{8, std::make_shared<const config::v1::Snapshot>(next)};
  const VersionedSnapshot a8 = views.For(full8, {"claims"});
  EXPECT_EQ(a8.version, 8);
  EXPECT_EQ(a8.snapshot->version(), "8");
  // A stream still behind gets its older version's view, without evicting the newer one.
  EXPECT_EQ(views.For(full7, {"claims"}).snapshot->version(), "7");
  EXPECT_EQ(views.For(full8, {"claims"}).snapshot, a8.snapshot);
}

}  // namespace
}  // namespace turnpike::controlplane
