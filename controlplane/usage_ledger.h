// UsageLedger keeps what every request used and cost (docs/usage.md): raw usage records keyed by
// request id, so a resent batch is never counted twice, and hourly rollups by (hour, capability,
// model, provider, caller) updated in the same BEGIN IMMEDIATE transaction as the raw rows they
// sum. Every newly stored record is appended to the audit trail's hash chain in the same
// transaction (controlplane/audit_chain.h). Raw rows older than the retention period are pruned
// (PruneExpired); rollups are kept, so spend by the rollup dimensions stays answerable for good. It
// owns no thread: the control plane calls PruneExpired from its sweep. Thread-safe (the Store
// serialises writes and reads; the counters are atomics).
#ifndef TURNPIKE_CONTROLPLANE_USAGE_LEDGER_H_
#define TURNPIKE_CONTROLPLANE_USAGE_LEDGER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/store.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike::controlplane {

class UsageLedger {
 public:
  struct Options {
    // Raw rows whose start time is older than this are pruned; rollups are kept.
    absl::Duration retention = absl::Hours(24 * 90);
    // A larger batch is refused whole.
    int max_batch_records = 1000;
    // Rows deleted per transaction while pruning, so ingest never waits long behind it.
    int prune_chunk_rows = 5000;
    // A spend answer (or spend export) larger than this is refused: narrow the query.
    int max_spend_rows = 100000;
  };

  // How one batch was stored. `refused` is OK, or INVALID_ARGUMENT with a google.rpc.BadRequest
  // naming every record that was refused (records[i].field); the batch's other records are
  // stored and counted in accepted/duplicates all the same.
  struct IngestResult {
    int accepted = 0;
    int duplicates = 0;
    absl::Status refused;
  };

  UsageLedger(Store& store, Clock& clock, Options options)
      : store_(store), clock_(clock), options_(options) {}

  // Stores a batch in one transaction. Errors (nothing stored): INVALID_ARGUMENT for a batch
  // over max_batch_records (field "records"); UNAVAILABLE when the database stays locked;
  // RESOURCE_EXHAUSTED when the disk is full.
  absl::StatusOr<IngestResult> Ingest(
      const google::protobuf::RepeatedPtrField<usage::v1::UsageRecord>& records);

  // Spend per time bucket and grouped dimensions. From the rollups unless grouped by end user or
  // tag, which read raw rows: then a range starting before the retention period is
  // FAILED_PRECONDITION. INVALID_ARGUMENT (BadRequest) for a malformed query; OUT_OF_RANGE for
  // an answer of more than max_spend_rows rows.
  absl::StatusOr<std::vector<usage::v1::SpendRow>> QuerySpend(
      const usage::v1::QuerySpendRequest& request);

  // One page of raw records, oldest first.
  absl::StatusOr<usage::v1::ListUsageResponse> ListUsage(
      const usage::v1::ListUsageRequest& request);
  // Every record matching the filters of `request` (its page_size/page_token ignored), oldest
  // first, read a page at a time; stops early when `fn` returns false.
  absl::Status ForEachRecord(const usage::v1::ListUsageRequest& request,
                             absl::FunctionRef<bool(const usage::v1::UsageRecord&)> fn);

  // Deletes raw rows that started before now - retention; returns how many.
  absl::StatusOr<int64_t> PruneExpired();

  // For /metrics.
  int64_t ingested_total() const { return ingested_.load(std::memory_order_relaxed); }
  int64_t duplicate_total() const { return duplicates_.load(std::memory_order_relaxed); }
  // The newest start time among records stored by this process, if any.
  std::optional<absl::Time> newest_start_time() const;
  // Seconds between now and newest_start_time() (0 before any record): how far the ledger
  // trails the requests it records.
  double lag_seconds();

 private:
  // Constant after construction.
  Store& store_;
  Clock& clock_;
  const Options options_;

  std::atomic<int64_t> ingested_{0};
  std::atomic<int64_t> duplicates_{0};
  // Unix microseconds; INT64_MIN until a record is stored.
  std::atomic<int64_t> newest_start_us_{INT64_MIN};
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_USAGE_LEDGER_H_
