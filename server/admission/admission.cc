#include "server/admission/admission.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/thread_name.h"

namespace turnpike {
namespace {

// How long a dropped per-key quota stays maintained for requests that found it just before.
constexpr absl::Duration kRetiredGrace = absl::Seconds(10);

const char* UnitLabel(Quota::Kind kind) {
  switch (kind) {
    case Quota::Kind::kRequests:
      return "requests per minute";
    case Quota::Kind::kTokens:
      return "tokens per minute";
    case Quota::Kind::kUsdMicros:
      return "micro-dollars";
  }
  return "";
}

}  // namespace

int64_t InputTokensUpperBound(int64_t text_bytes, int messages) {
  return text_bytes + 8 * static_cast<int64_t>(messages) + 16;
}

// ---- AdmissionTicket ----

AdmissionTicket::~AdmissionTicket() {
  if (settled_.exchange(true)) return;
  for (const Hold& hold : holds_) hold.quota->Settle(hold.reservation, 0);
}

void AdmissionTicket::Settle(int64_t input_tokens, int64_t output_tokens, int64_t cost_usd_micros,
                             bool cost_known) {
  if (settled_.exchange(true)) return;
  for (const Hold& hold : holds_) {
    int64_t actual = 0;
    switch (hold.quota->kind()) {
      case Quota::Kind::kRequests:
        actual = hold.reservation.amount;  // an admitted request counts, whatever its outcome
        break;
      case Quota::Kind::kTokens:
        actual = input_tokens + output_tokens;
        break;
      case Quota::Kind::kUsdMicros:
        actual = cost_known ? cost_usd_micros : hold.reservation.amount;
        break;
    }
    hold.quota->Settle(hold.reservation, actual);
  }
}

void AdmissionSettler::OnRequestDecided(const RequestFinished& event) {
  if (event.admission == nullptr) return;
  event.admission->Settle(event.input_tokens, event.output_tokens, event.cost_usd_micros,
                          event.cost_known);
}

// ---- Admission ----

Admission::Admission(std::unique_ptr<LeaseSource> source, Clock& clock, Options options)
    : source_(std::move(source)), clock_(clock), options_(options) {
  thread_ = std::thread([this] {
    NameThisThread("tp-admission");
    Run();
  });
}

Admission::~Admission() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

std::shared_ptr<Quota> Admission::QuotaFor(const LimitRule& rule, int which,
                                           const std::string& key) {
  const bool shared =
      rule.kind == LimitRule::Kind::kBudget || rule.key == config::v1::RATE_LIMIT_KEY_SHARED;
  // Shared quotas are never dropped, so the rule may cache a plain pointer to them.
  if (shared) {
    if (Quota* cached = rule.quotas[which].load(std::memory_order_acquire); cached != nullptr) {
      return std::shared_ptr<Quota>(std::shared_ptr<Quota>(), cached);  // non-owning
    }
  }
  budget::v1::Quota id;
  Quota::Kind kind;
  Quota::Settings settings;
  settings.fail_open = rule.fail_open;
  std::string label;
  if (rule.kind == LimitRule::Kind::kBudget) {
    id.set_budget(rule.name);
    id.set_unit(budget::v1::QUOTA_UNIT_USD_MICROS);
    kind = Quota::Kind::kUsdMicros;
    settings.limit = rule.limit_usd_micros;
    label = absl::StrCat("budget \"", rule.name, "\"");
  } else {
    id.set_rate_limit(rule.name);
    id.set_key(key);
    kind = which == 0 ? Quota::Kind::kRequests : Quota::Kind::kTokens;
    id.set_unit(which == 0 ? budget::v1::QUOTA_UNIT_REQUESTS : budget::v1::QUOTA_UNIT_TOKENS);
    settings.limit = which == 0 ? rule.requests_per_minute : rule.tokens_per_minute;
    label = absl::StrCat("rate limit \"", rule.name, "\" (", UnitLabel(kind),
                         key.empty() ? "" : absl::StrCat(", key \"", key, "\""), ")");
  }
  const std::string name =
      absl::StrCat(static_cast<int>(kind), "/", id.budget(), id.rate_limit(), "/", key);
  std::shared_ptr<Quota> quota;
  {
    absl::MutexLock lock(&registry_mu_);
    std::shared_ptr<Quota>& slot = quotas_[name];
    if (slot == nullptr) {
      slot = std::make_shared<Quota>(std::move(id), kind, std::move(label), [this] { Kick(); });
    }
    quota = slot;
    idle_since_.erase(quota.get());
  }
  quota->set_settings(settings);
  if (shared) rule.quotas[which].store(quota.get(), std::memory_order_release);
  return quota;
}

void Admission::Kick() {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
}

std::map<std::string, Admission::Refusals> Admission::RefusalsByCapability() const {
  absl::MutexLock lock(&refusals_mu_);
  return refusals_;
}

Admission::Stats Admission::stats() const {
  Stats s;
  s.admitted = admitted_.load(std::memory_order_relaxed);
  s.refused = refused_.load(std::memory_order_relaxed);
  s.queued = queued_.load(std::memory_order_relaxed);
  s.degraded = degraded_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&registry_mu_);
  for (const auto& [name, quota] : quotas_) {
    s.fail_open += quota->fail_open_admissions();
    s.fail_closed += quota->fail_closed_refusals();
    s.lease_round_trips += quota->lease_round_trips();
  }
  for (const auto& [quota, since] : retired_) {
    s.fail_open += quota->fail_open_admissions();
    s.fail_closed += quota->fail_closed_refusals();
    s.lease_round_trips += quota->lease_round_trips();
  }
  return s;
}

void Admission::WarnWithoutLease(const std::vector<std::shared_ptr<Quota>>& quotas) {
  if (!options_.log_warning) return;
  const absl::Time now = clock_.MonotonicNow();
  if (now - last_warning_ < absl::Minutes(1)) return;
  bool warned = false;
  for (const std::shared_ptr<Quota>& quota : quotas) {
    auto& [open_seen, closed_seen] = warned_counts_[quota.get()];
    const int64_t open = quota->fail_open_admissions();
    const int64_t closed = quota->fail_closed_refusals();
    if (open > open_seen) {
      options_.log_warning(absl::StrCat(
          quota->label(), ": the control plane cannot renew the gateway's lease; admitted ",
          open - open_seen, " requests without one (fail open)"));
      warned = true;
    }
    if (closed > closed_seen) {
      options_.log_warning(absl::StrCat(
          quota->label(), ": the control plane cannot renew the gateway's lease; refused ",
          closed - closed_seen, " requests (fail closed)"));
      warned = true;
    }
    open_seen = open;
    closed_seen = closed;
  }
  if (warned) last_warning_ = now;
}

void Admission::Run() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return kicked_ || stopping_; };
      clock_.AwaitWithDeadline(mu_, absl::Condition(&wake), clock_.MonotonicNow() + options_.tick);
      kicked_ = false;
      if (stopping_) break;
    }
    std::vector<std::shared_ptr<Quota>> quotas;
    {
      absl::MutexLock lock(&registry_mu_);
      quotas.reserve(quotas_.size() + retired_.size());
      for (const auto& [name, quota] : quotas_) quotas.push_back(quota);
      for (const auto& [quota, since] : retired_) quotas.push_back(quota);
    }
    std::vector<std::function<void()>> callbacks;
    for (const std::shared_ptr<Quota>& quota : quotas) {
      quota->Maintain(*source_, clock_, &callbacks);
    }
    for (auto& callback : callbacks) callback();
    WarnWithoutLease(quotas);

    // Per-key counters idle for a while are dropped (kept maintained a little longer for
    // requests that found them just before).
    const absl::Time now = clock_.MonotonicNow();
    absl::MutexLock lock(&registry_mu_);
    for (auto it = quotas_.begin(); it != quotas_.end();) {
      Quota& quota = *it->second;
      if (quota.id().key().empty() || !quota.Idle()) {
        idle_since_.erase(&quota);
        ++it;
        continue;
      }
      auto [since, inserted] = idle_since_.try_emplace(&quota, now);
      if (now - since->second < options_.idle_key_ttl) {
        ++it;
        continue;
      }
      idle_since_.erase(since);
      retired_.emplace_back(std::move(it->second), now);
      quotas_.erase(it++);
    }
    retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                  [now](const auto& entry) {
                                    return now - entry.second >= kRetiredGrace &&
                                           entry.first->Idle();
                                  }),
                   retired_.end());
  }
  // Shutdown: give back every lease (in-flight requests have drained by now).
  absl::MutexLock lock(&registry_mu_);
  bool answers = true;  // after the first unanswered release, the rest lapse at their expiry
  for (const auto& [name, quota] : quotas_) answers = quota->ReleaseAll(*source_, answers);
  for (const auto& [quota, since] : retired_) answers = quota->ReleaseAll(*source_, answers);
}

}  // namespace turnpike
