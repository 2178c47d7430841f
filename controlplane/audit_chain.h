// The hash chain of the audit trail (docs/audit.md, "The chain"): how an entry's canonical bytes
// and hash are made, how entries and signed checkpoints are appended to and read from SQLite
// (tables audit_chain and audit_checkpoints, migrations/0005_audit_chain.sql). Requests and
// admin changes share one chain, so one checkpoint covers both and their relative order is
// proven too. Appends run inside the caller's write transaction (the usage ingest, an admin
// change), so an entry commits with what it records or not at all. Free functions over a
// connection the caller holds: no state of their own.
#ifndef TURNPIKE_CONTROLPLANE_AUDIT_CHAIN_H_
#define TURNPIKE_CONTROLPLANE_AUDIT_CHAIN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/sqlite.h"
#include "turnpike/audit/v1/audit.pb.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike::controlplane {

inline constexpr size_t kAuditHashBytes = 32;
// The domain-separation byte in front of an entry's bytes (RFC 6962's leaf prefix): no entry
// hash can be confused with a hash of anything else the trail signs or hashes.
inline constexpr char kAuditLeafPrefix = '\x00';

enum class AuditKind : int { kRequest = 1, kAdminChange = 2 };

// An entry as stored: hashes are raw 32-byte strings.
struct AuditRow {
  int64_t seq = 0;
  int kind = 0;
  int64_t time_us = 0;
  int64_t recorded_us = 0;
  std::string request_id, caller, capability, provider;  // empty for admin changes
  std::string canonical;
  std::string prev_hash;
  std::string hash;
};

// A signed checkpoint as stored.
struct CheckpointRow {
  int64_t size = 0;
  std::string head_hash;  // raw
  int64_t time_us = 0;
  std::string key_id;
  std::string signature;
};

// SHA-256(0x00 || canonical || prev_hash), raw.
std::string AuditEntryHash(std::string_view canonical, std::string_view prev_hash);
// The first entry's previous hash: 32 zero bytes.
std::string AuditGenesisHash();
// Raw SHA-256 of `bytes`.
std::string Sha256Raw(std::string_view bytes);
std::string HexEncode(std::string_view bytes);
// Bytes from lower- or upper-case hex; nullopt if `hex` is not hex.
std::optional<std::string> HexDecode(std::string_view hex);
// The bytes a checkpoint's signature covers.
std::string CheckpointMessage(int64_t size, std::string_view head_hash, int64_t time_us);
// The deterministic serialization of `entry`.
std::string CanonicalBytes(const audit::v1::ChainedEntry& entry);

// Appends a request (`record`, with its audit evidence) or an admin change at the chain's head,
// inside the caller's write transaction on `db`; `now` is stored as the recorded time.
absl::Status AppendRequestEntry(SqliteDb& db, const usage::v1::UsageRecord& record, absl::Time now);
absl::Status AppendAdminChangeEntry(SqliteDb& db, const audit::v1::AdminChange& change,
                                    absl::Time now);

// The newest entry (seq and hash), nullopt for an empty chain.
absl::StatusOr<std::optional<AuditRow>> ChainHead(SqliteDb& db);
// At most `limit` entries with seq > `after_seq`, in seq order.
absl::StatusOr<std::vector<AuditRow>> ReadChain(SqliteDb& db, int64_t after_seq, int limit);
// Every checkpoint, oldest first.
absl::StatusOr<std::vector<CheckpointRow>> ReadCheckpoints(SqliteDb& db);
absl::Status InsertCheckpoint(SqliteDb& db, const CheckpointRow& checkpoint);

// The API view of a row (decodes `canonical`; an undecodable one leaves `entry` empty).
audit::v1::AuditEntry ToAuditEntry(const AuditRow& row);
audit::v1::Checkpoint ToCheckpoint(const CheckpointRow& row);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_AUDIT_CHAIN_H_
