// Webhook delivery against a real local HTTP receiver: retries with backoff on a simulated clock
// until a receiver that fails its first tries accepts, giving up after max_attempts, the three
// body formats, a resolve notification, and errors that never carry the URL.
#include "controlplane/alerts/alert_notifier.h"

#include <map>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/alerts/webhook_receiver.h"
#include "tests/controlplane/test_util.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::WebhookReceiver;
using turnpike::testing::WaitFor;

Notification Firing(const std::string& channel, uint64_t id = 1) {
  Notification n;
  n.delivery_id = id;
  n.channel = channel;
  n.event = a::ALERT_STATE_FIRING;
  n.alert.set_rule("monthly");
  n.alert.set_subject("80%");
  n.alert.set_kind(a::ALERT_KIND_BUDGET_THRESHOLD);
  n.alert.set_state(a::ALERT_STATE_FIRING);
  n.alert.set_summary("budget monthly has spent 81.0% of its limit");
  n.description = "tell finance";
  return n;
}

class AlertNotifierTest : public ::testing::Test {
 protected:
  void StartNotifier(AlertNotifier::Options o) {
    notifier_ = AlertNotifier::Start(
        [this](const std::string& name) -> absl::StatusOr<OpenedChannel> {
          absl::MutexLock lock(&mu_);
          auto it = channels_.find(name);
          if (it == channels_.end()) return absl::NotFoundError("no channel");
          return it->second;
        },
        *poster_, clock_, o,
        [this](const std::string&, const std::string&, uint64_t id, const a::Delivery& d) {
          absl::MutexLock lock(&mu_);
          results_[id] = d;
          history_[id].push_back(clock_.Now());
        });
  }
  void AddChannel(const std::string& name, a::ChannelKind kind, const std::string& url,
                  const std::string& key = "") {
    absl::MutexLock lock(&mu_);
    channels_[name] = OpenedChannel{name, kind, url, key};
  }
  std::optional<a::Delivery> Result(uint64_t id) {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(id);
    if (it == results_.end()) return std::nullopt;
    return it->second;
  }
  // When each attempt at delivery `id` ended, on the simulated clock.
  std::vector<absl::Time> History(uint64_t id) {
    absl::MutexLock lock(&mu_);
    return history_[id];
  }
  // Advances the simulated clock until delivery `id` is final (delivered or failed): a second at
  // a time, and only while the notifier waits for time to pass, never while an attempt is in
  // flight, so a backoff is overshot by at most a second however loaded the machine is.
  std::optional<a::Delivery> AwaitFinal(uint64_t id) {
    std::optional<a::Delivery> d;
    const bool done = WaitFor([&] {
      d = Result(id);
      if (d.has_value() && d->status() != a::DELIVERY_STATUS_PENDING) return true;
      if (clock_.TimedWaiters() > 0) clock_.Advance(absl::Seconds(1));
      return false;
    });
    EXPECT_TRUE(done) << "delivery " << id << " never became final";
    return d;
  }

  SimulatedClock clock_;
  std::unique_ptr<HttpPoster> poster_ = NewCurlPoster();
  absl::Mutex mu_;
  std::map<std::string, OpenedChannel> channels_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, a::Delivery> results_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::vector<absl::Time>> history_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<AlertNotifier> notifier_;
};

TEST_F(AlertNotifierTest, RetriesWithBackoffUntilTheReceiverAccepts) {
  WebhookReceiver receiver(/*fail_first=*/2);
  AddChannel("ops", a::CHANNEL_KIND_WEBHOOK, receiver.Url("/hook/SECRETPATH"));
  AlertNotifier::Options o;
  o.backoff_base = absl::Seconds(4);
  o.backoff_cap = absl::Seconds(30);
  StartNotifier(o);
  notifier_->Enqueue({Firing("ops")});
  std::optional<a::Delivery> d = AwaitFinal(1);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status(), a::DELIVERY_STATUS_DELIVERED);
  EXPECT_EQ(d->attempts(), 3);
  EXPECT_EQ(d->last_error(), "");
  EXPECT_EQ(receiver.requests().size(), 3u);
  EXPECT_EQ(receiver.delivered(), 1);
  // Two backoffs, each below its ceiling (4 s, then 8 s), each overshot by at most the clock's
  // one-second step.
  const std::vector<absl::Time> ended = History(1);
  ASSERT_EQ(ended.size(), 3u);
  EXPECT_LE(ended[1] - ended[0], absl::Seconds(4 + 1));
  EXPECT_LE(ended[2] - ended[1], absl::Seconds(8 + 1));
  for (const auto& r : receiver.requests()) {
    EXPECT_EQ(r.path, "/hook/SECRETPATH");
    EXPECT_THAT(r.body, HasSubstr(R"("status":"firing")"));
    EXPECT_THAT(r.body, HasSubstr(R"("rule":"monthly")"));
  }
  EXPECT_EQ(notifier_->waiting(), 0);
}

TEST_F(AlertNotifierTest, GivesUpAfterMaxAttemptsWithoutNamingTheUrl) {
  WebhookReceiver receiver(/*fail_first=*/100);
  AddChannel("ops", a::CHANNEL_KIND_WEBHOOK, receiver.Url("/SECRETPATH"));
  AddChannel("dead", a::CHANNEL_KIND_WEBHOOK, "http://127.0.0.1:1/SECRETPATH");
  AlertNotifier::Options o;
  o.max_attempts = 3;
  o.backoff_base = absl::Seconds(1);
  StartNotifier(o);
  notifier_->Enqueue({Firing("ops", 1), Firing("dead", 2), Firing("missing", 3)});
  std::optional<a::Delivery> d = AwaitFinal(1);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status(), a::DELIVERY_STATUS_FAILED);
  EXPECT_EQ(d->attempts(), 3);
  EXPECT_EQ(d->last_error(), "HTTP 503");
  EXPECT_EQ(receiver.requests().size(), 3u);
  std::optional<a::Delivery> dead = AwaitFinal(2);
  ASSERT_TRUE(dead.has_value());
  EXPECT_EQ(dead->status(), a::DELIVERY_STATUS_FAILED);
  EXPECT_FALSE(dead->last_error().empty());
  EXPECT_THAT(dead->last_error(), Not(HasSubstr("SECRET")));
  EXPECT_THAT(dead->last_error(), Not(HasSubstr("127.0.0.1")));
  std::optional<a::Delivery> missing = AwaitFinal(3);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status(), a::DELIVERY_STATUS_FAILED);
  EXPECT_EQ(missing->attempts(), 1);
}

TEST_F(AlertNotifierTest, SlackAndPagerDutyBodies) {
  WebhookReceiver receiver;
  AddChannel("slack", a::CHANNEL_KIND_SLACK, receiver.Url("/slack"));
  AddChannel("pd", a::CHANNEL_KIND_PAGERDUTY, receiver.Url("/v2/enqueue"), "RKEY");
  StartNotifier(AlertNotifier::Options{});
  Notification resolved = Firing("pd", 3);
  resolved.event = a::ALERT_STATE_RESOLVED;
  notifier_->Enqueue({Firing("slack", 1), Firing("pd", 2), resolved});
  ASSERT_TRUE(WaitFor([&] { return receiver.delivered() == 3; }));
  std::map<std::string, std::vector<std::string>> by_path;
  for (const auto& r : receiver.requests()) by_path[r.path].push_back(r.body);
  ASSERT_EQ(by_path["/slack"].size(), 1u);
  EXPECT_THAT(by_path["/slack"][0],
              HasSubstr(R"({"text":":rotating_light: [FIRING] monthly (80%): budget monthly)"));
  ASSERT_EQ(by_path["/v2/enqueue"].size(), 2u);
  EXPECT_THAT(by_path["/v2/enqueue"][0], HasSubstr(R"("routing_key":"RKEY")"));
  EXPECT_THAT(by_path["/v2/enqueue"][0], HasSubstr(R"("event_action":"trigger")"));
  EXPECT_THAT(by_path["/v2/enqueue"][0], HasSubstr(R"("dedup_key":"turnpike/monthly/80%")"));
  EXPECT_THAT(by_path["/v2/enqueue"][0], HasSubstr(R"("severity":"error")"));
  EXPECT_THAT(by_path["/v2/enqueue"][1], HasSubstr(R"("event_action":"resolve")"));
  EXPECT_THAT(by_path["/v2/enqueue"][1], HasSubstr(R"("dedup_key":"turnpike/monthly/80%")"));
}

}  // namespace
}  // namespace turnpike::controlplane
