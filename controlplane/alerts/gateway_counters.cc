#include "controlplane/alerts/gateway_counters.h"

#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;
using config::v1::ReportHealthRequest;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::Time ProcessStart(const ReportHealthRequest& r) {
  return r.has_process_start() ? FromProto(r.process_start()) : absl::InfinitePast();
}

int64_t RateLimited(const ReportHealthRequest& r, const std::string& capability) {
  for (const config::v1::AdmissionRefusals& c : r.admission_refusals()) {
    if (c.capability() == capability) return c.rate_limited();
  }
  return 0;
}

}  // namespace

int64_t CounterIncrease(const std::vector<CounterSample>& samples, absl::Time since,
                        const std::function<int64_t(const ReportHealthRequest&)>& value) {
  int64_t total = 0;
  const CounterSample* prev = nullptr;
  for (const CounterSample& s : samples) {
    const int64_t v = value(s.counters);
    if (s.received <= since) {
      prev = &s;
      continue;
    }
    if (prev == nullptr) {
      // No baseline: whole only if this process started within the window.
      if (ProcessStart(s.counters) > since) total += v;
    } else {
      const int64_t before = value(prev->counters);
      const bool restarted = ProcessStart(s.counters) != ProcessStart(prev->counters) || v < before;
      // After a restart the new process counted from zero: its value is all new (and, with a
      // baseline before the window, the process started after it).
      total += restarted ? v : v - before;
    }
    prev = &s;
  }
  return total;
}

std::vector<Observation> ObserveRefusals(const a::AlertRule& rule,
                                         const std::vector<GatewaySignal>& gateways,
                                         absl::Time now) {
  const absl::Duration window = FromProto(rule.window());
  const absl::Time since = now - window;
  std::set<std::string> capabilities;
  for (const GatewaySignal& g : gateways) {
    for (const CounterSample& s : g.counters) {
      for (const config::v1::AdmissionRefusals& c : s.counters.admission_refusals()) {
        if (rule.capability().empty() || c.capability() == rule.capability()) {
          capabilities.insert(c.capability());
        }
      }
    }
  }
  std::vector<Observation> out;
  for (const std::string& capability : capabilities) {
    int64_t refused = 0;
    int gateways_refusing = 0;
    for (const GatewaySignal& g : gateways) {
      const int64_t n = CounterIncrease(
          g.counters, since,
          [&capability](const ReportHealthRequest& r) { return RateLimited(r, capability); });
      refused += n;
      if (n > 0) ++gateways_refusing;
    }
    Observation o;
    o.subject = capability;
    o.value = static_cast<double>(refused) / absl::ToDoubleMinutes(window);
    o.breaching = o.value > rule.threshold();
    o.summary = absl::StrFormat(
        "rate limits of capability %s refused %d request(s) over %s on %d gateway(s): %.1f per "
        "minute (threshold %g per minute)",
        capability, refused, absl::FormatDuration(window), gateways_refusing, o.value,
        rule.threshold());
    out.push_back(std::move(o));
  }
  return out;
}

std::vector<Observation> ObserveSpools(const a::AlertRule& rule,
                                       const std::vector<GatewaySignal>& gateways) {
  std::vector<Observation> out;
  for (const GatewaySignal& g : gateways) {
    if (!g.connected || g.counters.empty()) continue;
    const ReportHealthRequest& latest = g.counters.back().counters;
    if (!latest.has_usage_spool()) continue;
    const config::v1::UsageSpoolState& spool = latest.usage_spool();
    const absl::Duration age = FromProto(spool.oldest_pending_age());
    Observation o;
    o.subject = g.node_id;
    o.value = static_cast<double>(spool.pending_records());
    o.breaching = (rule.spool_records() > 0 && spool.pending_records() > rule.spool_records()) ||
                  (rule.has_spool_age() && age > FromProto(rule.spool_age()));
    std::string thresholds;
    if (rule.spool_records() > 0) {
      thresholds = absl::StrFormat("%d records", rule.spool_records());
    }
    if (rule.has_spool_age()) {
      thresholds += absl::StrFormat("%s%s", thresholds.empty() ? "" : " or ",
                                    absl::FormatDuration(FromProto(rule.spool_age())));
    }
    o.summary = absl::StrFormat(
        "usage spool of gateway %s holds %d record(s) (%d bytes) not yet in the ledger, the "
        "oldest waiting %s (threshold %s); %d dropped since it started",
        g.node_id, spool.pending_records(), spool.pending_bytes(),
        absl::FormatDuration(absl::Trunc(age, absl::Seconds(1))), thresholds,
        spool.dropped_records());
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace turnpike::controlplane
