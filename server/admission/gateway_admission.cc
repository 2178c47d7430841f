#include "server/admission/gateway_admission.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/quota_window.h"
#include "server/admission/local_lease_source.h"

namespace turnpike {

GatewayAdmission MakeGatewayAdmission(const std::string& node_id, bool from_control_plane,
                                      ConfigStore& store, Clock& clock,
                                      std::function<void(const std::string&)> log_warning) {
  GatewayAdmission result;
  std::unique_ptr<LeaseSource> source;
  if (from_control_plane) {
    ControlPlaneLeaseSource::Options cp_options;
    cp_options.node_id = node_id;
    auto control_plane = std::make_unique<ControlPlaneLeaseSource>(std::move(cp_options));
    result.control_plane = control_plane.get();
    source = std::move(control_plane);
  } else {
    // A gateway on its own: the config file's limits, counted in this process.
    source = std::make_unique<LocalLeaseSource>(
        [&store](const budget::v1::Quota& quota, absl::Time now) -> absl::StatusOr<QuotaSpec> {
          std::shared_ptr<const RuntimeConfig> config = store.Get();
          const bool budget = !quota.budget().empty();
          const LimitRule* rule =
              config == nullptr ? nullptr
                                : config->FindLimit(budget ? LimitRule::Kind::kBudget
                                                           : LimitRule::Kind::kRateLimit,
                                                    budget ? quota.budget() : quota.rate_limit());
          if (rule == nullptr) {
            return absl::NotFoundError(
                absl::StrCat("no ", budget ? "budget" : "rate limit", " named \"",
                             budget ? quota.budget() : quota.rate_limit(), "\" in the config"));
          }
          QuotaSpec spec;
          if (budget) {
            spec.limit = rule->limit_usd_micros;
            spec.window = BudgetWindowAt(rule->window, now);
          } else {
            spec.limit = quota.unit() == budget::v1::QUOTA_UNIT_TOKENS ? rule->tokens_per_minute
                                                                       : rule->requests_per_minute;
            spec.window = MinuteWindowAt(now);
          }
          return spec;
        },
        clock);
  }
  Admission::Options options;
  options.log_warning = std::move(log_warning);
  result.admission = std::make_unique<Admission>(std::move(source), clock, options);
  return result;
}

void AddAdmissionMetrics(GatewayMetrics& metrics, Admission& admission) {
  Admission* a = &admission;
  metrics.AddCounter("turnpike_admission_admitted_total",
                     "Requests admitted by their rate limits and budgets.",
                     [a] { return static_cast<double>(a->stats().admitted); });
  metrics.AddCounter("turnpike_admission_refused_total",
                     "Requests refused by a rate limit or budget (or for want of a lease).",
                     [a] { return static_cast<double>(a->stats().refused); });
  metrics.AddCounter("turnpike_admission_queued_total",
                     "Requests that waited in an admission queue.",
                     [a] { return static_cast<double>(a->stats().queued); });
  metrics.AddCounter("turnpike_admission_degraded_total",
                     "Requests served by a cheaper route because a budget was exhausted.",
                     [a] { return static_cast<double>(a->stats().degraded); });
  metrics.AddCounter("turnpike_admission_fail_open_total",
                     "Requests admitted without a lease because the control plane was "
                     "unreachable and the limit fails open.",
                     [a] { return static_cast<double>(a->stats().fail_open); });
  metrics.AddCounter("turnpike_admission_fail_closed_total",
                     "Requests refused because the control plane was unreachable and the "
                     "limit's lease had lapsed (fail closed).",
                     [a] { return static_cast<double>(a->stats().fail_closed); });
  metrics.AddCounter("turnpike_lease_round_trips_total",
                     "Lease requests and releases sent to the lease source.",
                     [a] { return static_cast<double>(a->stats().lease_round_trips); });
}

}  // namespace turnpike
