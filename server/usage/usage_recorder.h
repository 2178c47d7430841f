// UsageRecorder is the request-finished sink that meters and audits: every finished request
// (completions and embeddings; served, failed, partial, cached, degraded or refused) becomes one
// usage record in the gateway's spool, from where the shipper takes it to the control plane's
// ledger (docs/usage.md), which chains it into the audit trail (docs/audit.md). On a request's
// thread it only builds the record; a request whose route keeps content (a content policy other
// than NONE) is handed to the recorder's digest thread, which hashes and redacts the text
// (audit_evidence.h) and then spools the record. Should that queue be full, the record is
// digested on the request's thread rather than lost (counted in inline_digests).
// With `reject_when_full`, a full spool makes Accepting() false so the calls refuse new requests
// (UNAVAILABLE) rather than serve unmetered traffic; otherwise records that do not fit are
// counted as dropped and the gateway keeps serving.
// Thread-safe.
#ifndef TURNPIKE_SERVER_USAGE_USAGE_RECORDER_H_
#define TURNPIKE_SERVER_USAGE_USAGE_RECORDER_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/exchange/request_finished.h"
#include "server/usage/usage_spool.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike {

// The usage record of a finished request, as the control plane's ledger stores it, with the
// cheap part of its audit evidence (no hashing: see FillContentEvidence).
usage::v1::UsageRecord ToUsageRecord(const RequestFinished& event, const std::string& node_id);

class UsageRecorder final : public RequestFinishedSink {
 public:
  struct Options {
    bool reject_when_full = false;
    // Most bytes of request text, and of reply text, an audit excerpt keeps (REDACTED).
    size_t excerpt_max_bytes = 2048;
    // Records waiting for the digest thread; beyond it they are digested inline.
    size_t digest_queue_capacity = 4096;
  };

  // `spool` must outlive the recorder. Records that do not fit are counted by the spool
  // (UsageSpool::Stats::dropped); `on_dropped` (may be empty) is told of each, on the thread that
  // spooled it, without locks: main logs it, at most once a minute.
  UsageRecorder(UsageSpool& spool, std::string node_id, Options options,
                std::function<void()> on_dropped = {});
  UsageRecorder(UsageSpool& spool, std::string node_id, bool reject_when_full,
                std::function<void()> on_dropped = {})
      : UsageRecorder(spool, std::move(node_id), Options{reject_when_full}, std::move(on_dropped)) {
  }
  // Spools what the digest thread still holds, then stops it.
  ~UsageRecorder() override;

  void OnRequestFinished(const RequestFinished& event) override;
  // False while new requests must be refused (reject mode and a full spool).
  bool Accepting() const { return !options_.reject_when_full || !spool_.Full(); }
  // Waits until every record accepted before the call is in the spool (tests, shutdown).
  void Flush();
  // Records digested on a request's thread because the digest queue was full.
  int64_t inline_digests() const { return inline_digests_.load(std::memory_order_relaxed); }

 private:
  using Pending = std::pair<usage::v1::UsageRecord, std::shared_ptr<const RequestContent>>;
  void DigestLoop();
  void Spool(Pending& pending);

  // Constant after construction.
  UsageSpool& spool_;
  const std::string node_id_;
  const Options options_;
  const std::function<void()> on_dropped_;

  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  int64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;  // queued so far
  int64_t handled_ ABSL_GUARDED_BY(mu_) = 0;   // of those, spooled (or dropped by the spool)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> inline_digests_{0};

  std::thread digester_;  // last: starts once everything above is set
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_USAGE_USAGE_RECORDER_H_
