// AuditTrail answers for the control plane's hash-chained audit trail (docs/audit.md): queries
// over its entries, verification of the whole chain (controlplane/audit_verifier.h), signed
// checkpoints of its head, and retention pruning that keeps the chain verifiable from the
// newest checkpoint it prunes up to. Entries are appended elsewhere, inside the transactions of
// what they record (usage ingest, admin changes; controlplane/audit_chain.h). It owns no thread:
// the control plane calls Checkpoint() and PruneExpired() from its loops. Without a signing key,
// entries are still chained but no checkpoint is signed (and nothing is pruned).
// Thread-safe (the Store serialises access; the signer is immutable).
#ifndef TURNPIKE_CONTROLPLANE_AUDIT_TRAIL_H_
#define TURNPIKE_CONTROLPLANE_AUDIT_TRAIL_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/audit_signer.h"
#include "controlplane/store.h"
#include "turnpike/audit/v1/audit.pb.h"

namespace turnpike::controlplane {

class AuditTrail {
 public:
  struct Options {
    // Entries covered by a checkpoint signed longer ago than this are pruned; zero keeps
    // everything.
    absl::Duration retention = absl::ZeroDuration();
  };

  // `signer` may be null (no checkpoints). `store` and `clock` must outlive the trail.
  AuditTrail(Store& store, Clock& clock, std::unique_ptr<AuditSigner> signer, Options options)
      : store_(store), clock_(clock), signer_(std::move(signer)), options_(options) {}

  // A page of entries, oldest first. INVALID_ARGUMENT (BadRequest) for a malformed request.
  absl::StatusOr<audit::v1::QueryAuditResponse> Query(const audit::v1::QueryAuditRequest& request);
  // A page of admin changes, newest first (from admin_audit).
  absl::StatusOr<audit::v1::ListAdminChangesResponse> ListAdminChanges(
      const audit::v1::ListAdminChangesRequest& request);
  // Walks the whole chain. FAILED_PRECONDITION without a signing key (nothing to check
  // checkpoints with).
  absl::StatusOr<audit::v1::VerifyAuditResponse> Verify();
  // The newest checkpoint and the public key. FAILED_PRECONDITION without a signing key.
  absl::StatusOr<audit::v1::GetCheckpointResponse> GetCheckpoint();
  // Signs a checkpoint of the head if entries were appended since the last one; true if it
  // signed. FAILED_PRECONDITION without a signing key.
  absl::StatusOr<bool> Checkpoint();
  // Deletes the entries covered by the newest checkpoint signed before now - retention, but
  // never the head, so the chain stays verifiable from that checkpoint; returns how many.
  absl::StatusOr<int64_t> PruneExpired();

  bool signing() const { return signer_ != nullptr; }

 private:
  absl::Status NeedSigner() const;

  // Constant after construction.
  Store& store_;
  Clock& clock_;
  const std::unique_ptr<AuditSigner> signer_;
  const Options options_;
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_AUDIT_TRAIL_H_
