// The audit evidence of a finished request (turnpike.usage.v1.AuditEvidence, docs/audit.md): the
// provider's host, the content policy, and what that policy lets the trail keep of the request's
// and reply's text (hashes, redacted excerpts). Pure functions, no state:
// thread-safe. Hashing and redacting a large prompt is not cheap, so UsageRecorder runs
// FillContentEvidence on its own thread, never on a request's.
#ifndef TURNPIKE_SERVER_USAGE_AUDIT_EVIDENCE_H_
#define TURNPIKE_SERVER_USAGE_AUDIT_EVIDENCE_H_

#include <cstddef>

#include "server/exchange/request_finished.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike {

// The cheap part, from the event alone (host, policy name): safe on a request's thread.
void FillEvidenceHeader(const RequestFinished& event, usage::v1::AuditEvidence& evidence);

// The expensive part: request and reply SHA-256 (HASH and above), and redacted excerpts of at
// most `excerpt_max_bytes` each (REDACTED and FULL alike: the trail is immutable, so it never
// holds unredacted text; FULL's text goes to the request log only).
void FillContentEvidence(const RequestContent& content, size_t excerpt_max_bytes,
                         usage::v1::AuditEvidence& evidence);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_USAGE_AUDIT_EVIDENCE_H_
