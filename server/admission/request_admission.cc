// Admission::Admit: one request's way through its limits (admission.h has the contract;
// docs/limits.md and docs/budgets.md the behaviour). A request resolves its route's quotas, takes
// a hold on each on the lock-free fast path, and waits (a round trip, or in the queue) only for
// the first that does not fit; a budget that says "degrade" restarts it on the cheaper route.
// A Pending runs on the request's thread until it waits, then on the lease manager's thread.
#include "server/admission/admission.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace turnpike {
namespace {

// A request refused by its rate only waits this long for a lease round trip.
constexpr absl::Duration kRoundTripWait = absl::Seconds(5);
// Requests waiting for a round trip (not queued by choice), per quota.
constexpr int kMaxRoundTripWaiters = 10000;
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

}  // namespace turnpike
