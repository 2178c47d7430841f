#include "server/admission/admission.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/thread_name.h"

namespace turnpike {
namespace {

// A request refused by its rate only waits this long for a lease round trip.
constexpr absl::Duration kRoundTripWait = absl::Seconds(5);
// Requests waiting for a round trip (not queued by choice), per quota.
constexpr int kMaxRoundTripWaiters = 10000;
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

// The most a request can cost on any target of `route`; NOT_FOUND-like error when a target has
// no price (a budget cannot reserve what it cannot price).
absl::StatusOr<int64_t> WorstCaseCost(const RouteEntry& route, const LimitRule& budget,
                                      int64_t input_tokens, int64_t output_tokens) {
  int64_t worst = 0;
  for (const TargetEntry& target : route.targets) {
    if (!target.price.has_value()) {
      absl::Status status = absl::FailedPreconditionError(
          absl::StrCat("budget \"", budget.name, "\" applies to capability \"", route.capability,
                       "\" but model \"", target.model, "\" of provider \"", target.provider->name,
                       "\" has no price; add one so the gateway can reserve the request's cost"));
      AttachReason(status, "PRICE_UNKNOWN");
      return status;
    }
    // Every input token at the dearest input rate (a cache write can cost more than a plain
    // input token), every output token at the output rate.
    TokenCounts tokens{.input = input_tokens, .output = output_tokens};
    const PriceRates& rates = *target.price;
    if (rates.cache_write > rates.input && rates.cache_write >= rates.cached_input) {
      tokens.cache_write_input = input_tokens;
    } else if (rates.cached_input > rates.input) {
      tokens.cached_input = input_tokens;
    }
    worst = std::max(worst, RuntimeConfig::CostOf(target, tokens).total);
  }
  return worst;
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

// ---- One request's way through its limits ----

class Admission::Pending : public std::enable_shared_from_this<Pending> {
 public:
  Pending(Admission* admission, AdmissionRequest request,
          std::function<void(absl::StatusOr<Admitted>)> done)
      : admission_(admission), request_(std::move(request)), done_(std::move(done)) {}

  // Resolves the request's quotas on its route and reserves from them.
  void Begin() {
    steps_.clear();
    next_ = 0;
    const int64_t output_tokens = !request_.text_output     ? 0
                                  : request_.max_tokens > 0 ? request_.max_tokens
                                                            : request_.route->default_max_tokens;
    for (const LimitRule* rule : request_.route->limits) {
      if (!rule->Matches(request_.caller, request_.tier)) continue;
      if (rule->kind == LimitRule::Kind::kBudget) {
        absl::StatusOr<int64_t> cost =
            WorstCaseCost(*request_.route, *rule, request_.input_tokens, output_tokens);
        if (!cost.ok()) return Finish(cost.status());
        steps_.push_back({rule, admission_->QuotaFor(*rule, 0, ""), std::max<int64_t>(*cost, 1)});
        continue;
      }
      std::string key;
      if (rule->key == config::v1::RATE_LIMIT_KEY_PER_CALLER) key = request_.caller;
      if (rule->key == config::v1::RATE_LIMIT_KEY_PER_END_USER) key = request_.end_user;
      if (rule->requests_per_minute > 0) {
        steps_.push_back({rule, admission_->QuotaFor(*rule, 0, key), 1});
      }
      if (rule->tokens_per_minute > 0) {
        const int64_t tokens = request_.input_tokens + output_tokens;
        if (tokens > rule->tokens_per_minute) {
          return Finish(absl::InvalidArgumentError(
              absl::StrCat("the request may use up to ", tokens,
                           " tokens (input bound + max_tokens), more than "
                           "rate limit \"",
                           rule->name, "\" allows in a minute (", rule->tokens_per_minute,
                           "); lower max_tokens or split the input")));
        }
        steps_.push_back({rule, admission_->QuotaFor(*rule, 1, key), tokens});
      }
    }
    Continue();
  }

  // Takes the remaining steps on the fast path; the first one that does not fit waits.
  void Continue() {
    while (next_ < steps_.size()) {
      Step& step = steps_[next_];
      Quota::Reservation reservation;
      if (step.quota->TryReserve(step.amount, admission_->clock_.MonotonicNow(), &reservation)) {
        holds_.push_back({step.quota, reservation});
        ++next_;
        continue;
      }
      const config::v1::OverLimitAction action = ActionOf(*step.rule);
      const absl::Time now = admission_->clock_.MonotonicNow();
      if (now >= request_.deadline) {
        return Finish(
            absl::DeadlineExceededError("the deadline passed while waiting for admission"));
      }
      Quota::Waiter waiter;
      waiter.need = step.amount;
      waiter.queue = action == config::v1::OVER_LIMIT_ACTION_QUEUE;
      const absl::Duration wait =
          waiter.queue ? request_.route->admission.queue_max_wait : kRoundTripWait;
      waiter.give_up = std::min(request_.deadline, now + wait);
      waiter.done = [self = shared_from_this()](absl::StatusOr<Quota::Reservation> result) {
        self->OnWaited(std::move(result));
      };
      if (waiter.queue) admission_->queued_.fetch_add(1, std::memory_order_relaxed);
      const int max_length =
          waiter.queue ? request_.route->admission.queue_max_length : kMaxRoundTripWaiters;
      if (!step.quota->AddWaiter(std::move(waiter), max_length)) {
        absl::Status status = absl::ResourceExhaustedError(
            absl::StrCat("the admission queue of ", step.quota->label(), " is full (", max_length,
                         " requests waiting)"));
        AttachReason(status, step.rule->kind == LimitRule::Kind::kBudget ? "BUDGET_EXHAUSTED"
                                                                         : "RATE_LIMITED");
        return Refused(std::move(status));
      }
      return;  // OnWaited continues, on the lease manager's thread
    }
    Admitted admitted;
    admitted.route = request_.route;
    admitted.degraded = degraded_;
    admitted.metadata = Metadata();
    if (!holds_.empty()) admitted.ticket = std::make_shared<AdmissionTicket>(std::move(holds_));
    holds_.clear();
    admission_->admitted_.fetch_add(1, std::memory_order_relaxed);
    done_(std::move(admitted));
  }

 private:
  struct Step {
    const LimitRule* rule;
    std::shared_ptr<Quota> quota;
    int64_t amount;
  };

  config::v1::OverLimitAction ActionOf(const LimitRule& rule) const {
    return rule.kind == LimitRule::Kind::kBudget ? rule.on_exhausted
                                                 : request_.route->admission.on_rate_limited;
  }

  void OnWaited(absl::StatusOr<Quota::Reservation> result) {
    Step& step = steps_[next_];
    if (result.ok()) {
      holds_.push_back({step.quota, *result});
      ++next_;
      Continue();
      return;
    }
    Refused(result.status());
  }

  void Refused(absl::Status status) {
    const Step& step = steps_[next_];
    if (absl::IsResourceExhausted(status) && step.rule->kind == LimitRule::Kind::kBudget &&
        step.rule->on_exhausted == config::v1::OVER_LIMIT_ACTION_DEGRADE && !degraded_ &&
        step.rule->degrade_to != nullptr) {
      // Serve from the cheaper route instead, under that route's own limits.
      ReleaseHolds();
      degraded_ = true;
      admission_->degraded_.fetch_add(1, std::memory_order_relaxed);
      request_.route = step.rule->degrade_to;
      Begin();
      return;
    }
    Finish(std::move(status));
  }

  void Finish(absl::Status status) {
    ReleaseHolds();
    admission_->refused_.fetch_add(1, std::memory_order_relaxed);
    // A limit out of capacity (refused, or its wait outlived the deadline); not a request or
    // config error found while the steps were built.
    if (next_ < steps_.size() &&
        (absl::IsResourceExhausted(status) || absl::IsDeadlineExceeded(status))) {
      const bool budget = steps_[next_].rule->kind == LimitRule::Kind::kBudget;
      absl::MutexLock lock(&admission_->refusals_mu_);
      Refusals& r = admission_->refusals_[request_.route->capability];
      ++(budget ? r.budget_exhausted : r.rate_limited);
    }
    done_(std::move(status));
  }

  void ReleaseHolds() {
    for (const AdmissionTicket::Hold& hold : holds_) hold.quota->Settle(hold.reservation, 0);
    holds_.clear();
  }

  std::vector<std::pair<std::string, std::string>> Metadata() const {
    int64_t requests = -1, tokens = -1, usd = -1;
    auto lower = [](int64_t& slot, int64_t value) {
      slot = slot < 0 ? value : std::min(slot, value);
    };
    for (const Step& step : steps_) {
      const int64_t left = step.quota->RemainingHint();
      switch (step.quota->kind()) {
        case Quota::Kind::kRequests:
          lower(requests, left);
          break;
        case Quota::Kind::kTokens:
          lower(tokens, left);
          break;
        case Quota::Kind::kUsdMicros:
          lower(usd, left);
          break;
      }
    }
    std::vector<std::pair<std::string, std::string>> out;
    if (requests >= 0) out.emplace_back("x-turnpike-remaining-requests", absl::StrCat(requests));
    if (tokens >= 0) out.emplace_back("x-turnpike-remaining-tokens", absl::StrCat(tokens));
    if (usd >= 0) out.emplace_back("x-turnpike-remaining-budget-usd-micros", absl::StrCat(usd));
    return out;
  }

  Admission* const admission_;
  AdmissionRequest request_;
  std::function<void(absl::StatusOr<Admitted>)> done_;
  std::vector<Step> steps_;
  size_t next_ = 0;
  std::vector<AdmissionTicket::Hold> holds_;
  bool degraded_ = false;
};

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

void Admission::Admit(AdmissionRequest request,
                      std::function<void(absl::StatusOr<Admitted>)> done) {
  if (request.route == nullptr || request.route->limits.empty()) {
    Admitted admitted;
    admitted.route = request.route;
    done(std::move(admitted));
    return;
  }
  auto pending = std::make_shared<Pending>(this, std::move(request), std::move(done));
  pending->Begin();
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
