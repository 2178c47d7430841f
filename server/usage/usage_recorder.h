// UsageRecorder is the request-finished sink that meters: every finished request (completions
// and embeddings; served, failed, partial, cached, degraded or refused) becomes one usage record
// in the gateway's spool, from where the shipper takes it to the control plane's ledger
// (docs/usage.md). It runs on request threads and only builds the record and queues it.
// With `reject_when_full`, a full spool makes Accepting() false so the calls refuse new requests
// (UNAVAILABLE) rather than serve unmetered traffic; otherwise records that do not fit are
// counted as dropped and the gateway keeps serving.
// Thread-safe.
#ifndef TURNPIKE_SERVER_USAGE_USAGE_RECORDER_H_
#define TURNPIKE_SERVER_USAGE_USAGE_RECORDER_H_

#include <atomic>
#include <functional>
#include <string>

#include "server/exchange/request_finished.h"
#include "server/usage/usage_spool.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike {

// The usage record of a finished request, as the control plane's ledger stores it.
usage::v1::UsageRecord ToUsageRecord(const RequestFinished& event, const std::string& node_id);

class UsageRecorder final : public RequestFinishedSink {
 public:
  // `spool` must outlive the recorder. Records that do not fit are counted by the spool
  // (UsageSpool::Stats::dropped); `on_dropped` (may be empty) is told of each, on the request's
  // thread, without locks: main logs it, at most once a minute.
  UsageRecorder(UsageSpool& spool, std::string node_id, bool reject_when_full,
                std::function<void()> on_dropped = {})
      : spool_(spool),
        node_id_(std::move(node_id)),
        reject_when_full_(reject_when_full),
        on_dropped_(std::move(on_dropped)) {}

  void OnRequestFinished(const RequestFinished& event) override;
  // False while new requests must be refused (reject mode and a full spool).
  bool Accepting() const { return !reject_when_full_ || !spool_.Full(); }

 private:
  UsageSpool& spool_;
  const std::string node_id_;
  const bool reject_when_full_;
  const std::function<void()> on_dropped_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_USAGE_USAGE_RECORDER_H_
