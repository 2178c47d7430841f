// Verifies the audit trail in a SQLite database (docs/audit.md, "Proving the log was not
// edited"): walks every entry in order, recomputes its hash from its canonical bytes and the
// previous entry's hash, checks that its position and query columns agree with what was hashed,
// and checks every signed checkpoint against the chain and the public key. Names the first
// broken link. Used by AuditService/VerifyAudit and by the offline turnpike-audit-verify, so both
// judge a file the same way. Stateless: thread-safe given a connection the caller owns.
#ifndef TURNPIKE_CONTROLPLANE_AUDIT_VERIFIER_H_
#define TURNPIKE_CONTROLPLANE_AUDIT_VERIFIER_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/audit_chain.h"
#include "controlplane/sqlite.h"
#include "turnpike/audit/v1/audit.pb.h"

namespace turnpike::controlplane {

// `public_key`: the raw Ed25519 key checkpoints must be signed with. `trusted` are checkpoints
// held outside the database (e.g. a GetCheckpoint answer saved earlier), checked like the stored
// ones: deleting checkpoints from the file cannot hide a rewrite they cover. Errors only when the
// database cannot be read; a broken chain is an answer with intact = false.
absl::StatusOr<audit::v1::VerifyAuditResponse> VerifyAuditTrail(
    SqliteDb& db, std::string_view public_key, const std::vector<CheckpointRow>& trusted = {});

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_AUDIT_VERIFIER_H_
