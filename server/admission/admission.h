// Admission decides, before any upstream work, whether a request fits its route's rate limits and
// budgets (docs/limits.md, docs/budgets.md). Each limit that matches the request (capability,
// caller, tier; a key per caller or end user) is a Quota; the request reserves its upper bound
// from each, in order (rate limits, then budgets), and gets an AdmissionTicket that settles the
// real usage when the request ends (AdmissionSettler, a RequestFinishedSink). A limit that says no
// rejects (RESOURCE_EXHAUSTED with the reason, the limit's name and when capacity returns),
// queues the request until capacity returns, or, for a budget, serves it from a cheaper route.
// A background thread (the lease manager) keeps every quota's lease from the LeaseSource.
//
// Threading: Admit() may be called from any thread; its answer comes inline when every lease
// covers the request (no lock on that path for limits shared by all callers), otherwise on the
// lease manager's thread. Thread-safe.
//
// request_admission.cc has Admit() (one request's steps through its quotas); admission.cc the
// tickets, the quotas by rule and key, and the lease manager's loop.
#ifndef TURNPIKE_SERVER_ADMISSION_ADMISSION_H_
#define TURNPIKE_SERVER_ADMISSION_ADMISSION_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/admission/lease_source.h"
#include "server/admission/quota.h"
#include "server/config/runtime_config.h"
#include "server/exchange/request_finished.h"

namespace turnpike {

// What a request holds from admission until it settles. Settle() runs once, when the request
// ends; a ticket destroyed unsettled releases what it holds (the request never ran).
class AdmissionTicket {
 public:
  struct Hold {
    std::shared_ptr<Quota> quota;
    Quota::Reservation reservation;
  };
  explicit AdmissionTicket(std::vector<Hold> holds) : holds_(std::move(holds)) {}
  ~AdmissionTicket();
  AdmissionTicket(const AdmissionTicket&) = delete;
  AdmissionTicket& operator=(const AdmissionTicket&) = delete;

  // Settles every hold to what the request used: one request, its input + output tokens, its
  // cost (the reserved amount when the cost is unknown: the safe side).
  void Settle(int64_t input_tokens, int64_t output_tokens, int64_t cost_usd_micros,
              bool cost_known);

 private:
  const std::vector<Hold> holds_;
  std::atomic<bool> settled_{false};
};

struct AdmissionRequest {
  const RouteEntry* route = nullptr;
  std::string caller;
  std::string tier;
  std::string end_user;
  // Upper bound of the input tokens (InputTokensUpperBound).
  int64_t input_tokens = 0;
  // The request's max_tokens; 0 means the route's default_max_tokens.
  int64_t max_tokens = 0;
  // False for embeddings: no output tokens.
  bool text_output = true;
  absl::Time deadline = absl::InfiniteFuture();  // monotonic
};

struct Admitted {
  // Null when no limit applies.
  std::shared_ptr<AdmissionTicket> ticket;
  // The route to serve: the request's, or the cheaper one a budget degraded it to.
  const RouteEntry* route = nullptr;
  bool degraded = false;
  // What is left, for the response metadata (x-turnpike-remaining-*).
  std::vector<std::pair<std::string, std::string>> metadata;
};

class Admission {
 public:
  struct Options {
    // How often the lease manager looks at every quota (heartbeats, windows, queued requests).
    absl::Duration tick = absl::Milliseconds(100);
    // A per-caller or per-end-user counter idle this long is forgotten.
    absl::Duration idle_key_ttl = absl::Minutes(2);
    // Told, at most once a minute, which limits admitted without a lease (failing open) or
    // refused for want of one (failing closed). Optional.
    std::function<void(const std::string&)> log_warning;
  };
  struct Stats {
    int64_t admitted = 0;
    int64_t refused = 0;
    int64_t queued = 0;
    int64_t degraded = 0;
    int64_t fail_open = 0;
    int64_t fail_closed = 0;
    int64_t lease_round_trips = 0;
  };
  // Requests one capability's limits refused since start, by the kind of limit that refused them
  // (reported to the control plane, which alerts on their rate: docs/alerts.md).
  struct Refusals {
    int64_t rate_limited = 0;
    int64_t budget_exhausted = 0;
  };

  Admission(std::unique_ptr<LeaseSource> source, Clock& clock, Options options);
  ~Admission();  // stops the lease manager and releases every lease

  // Calls `done` exactly once: inline, or later on the lease manager's thread.
  void Admit(AdmissionRequest request, std::function<void(absl::StatusOr<Admitted>)> done);

  Stats stats() const;
  // Refusals by capability since start (capabilities never refused are absent).
  std::map<std::string, Refusals> RefusalsByCapability() const;

 private:
  class Pending;
  friend class Pending;

  // The quota of `rule` (which: 0 requests or dollars, 1 tokens) for `key`.
  std::shared_ptr<Quota> QuotaFor(const LimitRule& rule, int which, const std::string& key);
  void Kick();
  void Run();
  // Lease manager thread: the once-a-minute warning about limits without a lease.
  void WarnWithoutLease(const std::vector<std::shared_ptr<Quota>>& quotas);

  const std::unique_ptr<LeaseSource> source_;
  Clock& clock_;
  const Options options_;

  std::atomic<int64_t> admitted_{0};
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> queued_{0};
  std::atomic<int64_t> degraded_{0};
  // Written on the refusal path only (never on an admission).
  mutable absl::Mutex refusals_mu_;
  std::map<std::string, Refusals> refusals_ ABSL_GUARDED_BY(refusals_mu_);

  mutable absl::Mutex registry_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Quota>> quotas_ ABSL_GUARDED_BY(registry_mu_);
  // Per-key quotas dropped from `quotas_`, maintained until idle past a grace period.
  std::vector<std::pair<std::shared_ptr<Quota>, absl::Time>> retired_ ABSL_GUARDED_BY(registry_mu_);
  absl::flat_hash_map<const Quota*, absl::Time> idle_since_ ABSL_GUARDED_BY(registry_mu_);

  absl::Mutex mu_;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Lease manager thread only.
  absl::Time last_warning_ = absl::InfinitePast();
  absl::flat_hash_map<const Quota*, std::pair<int64_t, int64_t>> warned_counts_;

  std::thread thread_;
};

// Settles each request's ticket when its outcome is decided, before the caller hears it, so the
// caller's next request sees the capacity back (docs/architecture.md, "Where a request ends").
class AdmissionSettler final : public RequestFinishedSink {
 public:
  void OnRequestDecided(const RequestFinished& event) override;
  void OnRequestFinished(const RequestFinished&) override {}
};

// Upper bound of a request's input tokens from its text: every token of the byte-level tokenizers
// providers use covers at least one byte, plus a per-message allowance for role markers.
int64_t InputTokensUpperBound(int64_t text_bytes, int messages);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_ADMISSION_ADMISSION_H_
