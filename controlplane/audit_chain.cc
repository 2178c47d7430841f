#include "controlplane/audit_chain.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controlplane/usage_rows.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace turnpike::controlplane {
namespace {

namespace au = ::turnpike::audit::v1;

constexpr char kRowColumns[] =
    "seq, kind, time, recorded_time, request_id, caller, capability, provider, canonical, "
    "prev_hash, hash";

AuditRow ReadRow(const SqliteStatement& s) {
  AuditRow r;
  r.seq = s.ColumnInt(0);
  r.kind = static_cast<int>(s.ColumnInt(1));
  r.time_us = s.ColumnInt(2);
  r.recorded_us = s.ColumnInt(3);
  r.request_id = s.ColumnText(4);
  r.caller = s.ColumnText(5);
  r.capability = s.ColumnText(6);
  r.provider = s.ColumnText(7);
  r.canonical = s.ColumnText(8);
  r.prev_hash = s.ColumnText(9);
  r.hash = s.ColumnText(10);
  return r;
}

// Sets the entry's seq from the head, hashes it and inserts it.
absl::Status Append(SqliteDb& db, au::ChainedEntry& entry, AuditKind kind, absl::Time now) {
  TP_ASSIGN_OR_RETURN(std::optional<AuditRow> head, ChainHead(db));
  AuditRow row;
  row.seq = head.has_value() ? head->seq + 1 : 1;
  row.prev_hash = head.has_value() ? head->hash : AuditGenesisHash();
  entry.set_seq(row.seq);
  row.kind = static_cast<int>(kind);
  row.time_us = ToMicros(entry.time());
  row.recorded_us = absl::ToUnixMicros(now);
  if (entry.has_request()) {
    row.request_id = entry.request().request_id();
    row.caller = entry.request().caller();
    row.capability = entry.request().capability();
    row.provider = entry.request().provider();
  }
  row.canonical = CanonicalBytes(entry);
  row.hash = AuditEntryHash(row.canonical, row.prev_hash);
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare(absl::StrCat("INSERT INTO audit_chain (", kRowColumns,
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")));
  s.Bind(1, row.seq).Bind(2, int64_t{row.kind}).Bind(3, row.time_us).Bind(4, row.recorded_us);
  s.Bind(5, row.request_id).Bind(6, row.caller).Bind(7, row.capability).Bind(8, row.provider);
  s.BindBlob(9, row.canonical).BindBlob(10, row.prev_hash).BindBlob(11, row.hash);
  return s.Run();
}

}  // namespace

std::string Sha256Raw(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string AuditEntryHash(std::string_view canonical, std::string_view prev_hash) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, &kAuditLeafPrefix, 1);
  EVP_DigestUpdate(ctx, canonical.data(), canonical.size());
  EVP_DigestUpdate(ctx, prev_hash.data(), prev_hash.size());
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string AuditGenesisHash() { return std::string(kAuditHashBytes, '\0'); }

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string CheckpointMessage(int64_t size, std::string_view head_hash, int64_t time_us) {
  return absl::StrCat("turnpike-audit-checkpoint-v1\n", size, "\n", HexEncode(head_hash), "\n",
                      time_us, "\n");
}

std::string CanonicalBytes(const au::ChainedEntry& entry) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    entry.SerializeToCodedStream(&coded);
  }
  return out;
}

absl::Status AppendRequestEntry(SqliteDb& db, const usage::v1::UsageRecord& record,
                                absl::Time now) {
  au::ChainedEntry entry;
  *entry.mutable_time() = record.start_time();
  *entry.mutable_request() = record;
  return Append(db, entry, AuditKind::kRequest, now);
}

absl::Status AppendAdminChangeEntry(SqliteDb& db, const au::AdminChange& change, absl::Time now) {
  au::ChainedEntry entry;
  *entry.mutable_time() = change.time();
  *entry.mutable_admin_change() = change;
  return Append(db, entry, AuditKind::kAdminChange, now);
}

absl::StatusOr<std::optional<AuditRow>> ChainHead(SqliteDb& db) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare(absl::StrCat("SELECT ", kRowColumns,
                                              " FROM audit_chain ORDER BY seq DESC LIMIT 1")));
  TP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<AuditRow>();
  return std::optional<AuditRow>(ReadRow(s));
}

absl::StatusOr<std::vector<AuditRow>> ReadChain(SqliteDb& db, int64_t after_seq, int limit) {
  TP_ASSIGN_OR_RETURN(
      SqliteStatement s,
      db.Prepare(absl::StrCat("SELECT ", kRowColumns,
                              " FROM audit_chain WHERE seq > ?1 ORDER BY seq LIMIT ?2")));
  s.Bind(1, after_seq).Bind(2, int64_t{limit});
  std::vector<AuditRow> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back(ReadRow(s));
  }
}

absl::StatusOr<std::vector<CheckpointRow>> ReadCheckpoints(SqliteDb& db) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("SELECT size, head_hash, time, key_id, signature FROM "
                                 "audit_checkpoints ORDER BY size"));
  std::vector<CheckpointRow> out;
  while (true) {
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    CheckpointRow c;
    c.size = s.ColumnInt(0);
    c.head_hash = s.ColumnText(1);
    c.time_us = s.ColumnInt(2);
    c.key_id = s.ColumnText(3);
    c.signature = s.ColumnText(4);
    out.push_back(std::move(c));
  }
}

absl::Status InsertCheckpoint(SqliteDb& db, const CheckpointRow& c) {
  TP_ASSIGN_OR_RETURN(SqliteStatement s,
                      db.Prepare("INSERT INTO audit_checkpoints (size, head_hash, time, key_id, "
                                 "signature) VALUES (?1, ?2, ?3, ?4, ?5)"));
  s.Bind(1, c.size).BindBlob(2, c.head_hash).Bind(3, c.time_us).Bind(4, c.key_id);
  s.BindBlob(5, c.signature);
  return s.Run();
}

au::AuditEntry ToAuditEntry(const AuditRow& row) {
  au::AuditEntry e;
  e.mutable_entry()->ParseFromString(row.canonical);
  e.set_canonical(row.canonical);
  e.set_prev_hash(HexEncode(row.prev_hash));
  e.set_hash(HexEncode(row.hash));
  return e;
}

au::Checkpoint ToCheckpoint(const CheckpointRow& row) {
  au::Checkpoint c;
  c.set_size(row.size);
  c.set_head_hash(HexEncode(row.head_hash));
  *c.mutable_time() = FromMicros(row.time_us);
  c.set_signature(row.signature);
  c.set_key_id(row.key_id);
  return c;
}

}  // namespace turnpike::controlplane
