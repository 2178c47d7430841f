#include "controlplane/audit_verifier.h"

#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controlplane/audit_signer.h"
#include "controlplane/usage_rows.h"

namespace turnpike::controlplane {
namespace {

namespace au = ::turnpike::audit::v1;

// The first problem found: its sequence number and what it is.
struct Problem {
  int64_t seq = 0;
  std::string what;
};

// Which query column of `row` disagrees with its hashed entry, or "" if none.
std::string ColumnMismatch(const AuditRow& row, const au::ChainedEntry& e) {
  if (ToMicros(e.time()) != row.time_us) return "time";
  const int kind = e.has_request()        ? static_cast<int>(AuditKind::kRequest)
                   : e.has_admin_change() ? static_cast<int>(AuditKind::kAdminChange)
                                          : 0;
  if (kind != row.kind) return "kind";
  const usage::v1::UsageRecord& r = e.request();  // the default instance for admin changes
  if (r.request_id() != row.request_id) return "request_id";
  if (r.caller() != row.caller) return "caller";
  if (r.capability() != row.capability) return "capability";
  if (r.provider() != row.provider) return "provider";
  return "";
}

// Checks one entry against what precedes it; nullopt if it holds.
std::optional<Problem> CheckEntry(const AuditRow& row, int64_t expected_seq,
                                  const std::string& expected_prev) {
  if (row.seq != expected_seq) {
    return Problem{expected_seq,
                   absl::StrCat("entry ", expected_seq, " is missing (the chain jumps to entry ",
                                row.seq, "): entries were deleted")};
  }
  if (row.prev_hash != expected_prev) {
    return Problem{row.seq, absl::StrCat("entry ", row.seq, " does not link to entry ", row.seq - 1,
                                         ": its previous hash differs (an entry before it was "
                                         "changed, removed, inserted or moved)")};
  }
  if (AuditEntryHash(row.canonical, row.prev_hash) != row.hash) {
    return Problem{row.seq, absl::StrCat("entry ", row.seq,
                                         ": its hash does not match its contents (changed)")};
  }
  au::ChainedEntry entry;
  if (!entry.ParseFromString(row.canonical)) {
    return Problem{row.seq, absl::StrCat("entry ", row.seq, ": its contents do not decode")};
  }
  if (entry.seq() != row.seq) {
    return Problem{row.seq, absl::StrCat("entry ", row.seq, " holds the entry hashed as number ",
                                         entry.seq(), " (moved)")};
  }
  const std::string column = ColumnMismatch(row, entry);
  if (!column.empty()) {
    return Problem{row.seq, absl::StrCat("entry ", row.seq, ": column ", column,
                                         " differs from what was hashed (changed)")};
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<au::VerifyAuditResponse> VerifyAuditTrail(
    SqliteDb& db, std::string_view public_key, const std::vector<CheckpointRow>& trusted) {
  TP_ASSIGN_OR_RETURN(std::vector<CheckpointRow> stored, ReadCheckpoints(db));
  std::map<int64_t, std::vector<CheckpointRow>> checkpoints;  // by size
  for (CheckpointRow& c : stored) checkpoints[c.size].push_back(std::move(c));
  for (const CheckpointRow& c : trusted) checkpoints[c.size].push_back(c);

  au::VerifyAuditResponse out;
  std::optional<Problem> problem;
  auto note = [&problem](Problem p) {
    if (!problem.has_value() || p.seq < problem->seq) problem = std::move(p);
  };
  // Signatures first: a checkpoint that does not verify proves nothing.
  for (const auto& [size, list] : checkpoints) {
    for (const CheckpointRow& c : list) {
      out.set_checkpoints_checked(out.checkpoints_checked() + 1);
      if (!VerifyAuditSignature(public_key, CheckpointMessage(c.size, c.head_hash, c.time_us),
                                c.signature)) {
        note({size, absl::StrCat("checkpoint of size ", size, " (key ", c.key_id,
                                 ") does not verify with this public key (forged or changed)")});
      }
    }
    *out.mutable_latest_checkpoint() = ToCheckpoint(list.front());
  }

  int64_t expected_seq = 1;
  std::string expected_prev = AuditGenesisHash();
  bool first = true;
  int64_t last_seq = 0;
  std::string last_hash;
  constexpr int kPage = 1000;
  while (!problem.has_value() || problem->seq > expected_seq) {
    TP_ASSIGN_OR_RETURN(std::vector<AuditRow> rows, ReadChain(db, last_seq, kPage));
    for (const AuditRow& row : rows) {
      if (first && row.seq != 1) {
        // A pruned prefix: a signed checkpoint must vouch for what came before.
        auto it = checkpoints.find(row.seq - 1);
        if (it == checkpoints.end() || it->second.front().head_hash != row.prev_hash) {
          note({1, absl::StrCat("entries 1..", row.seq - 1, " are gone and no checkpoint of size ",
                                row.seq - 1, " vouches for them (deleted, not pruned)")});
          break;
        }
        expected_seq = row.seq;
        expected_prev = row.prev_hash;
      }
      first = false;
      if (std::optional<Problem> p = CheckEntry(row, expected_seq, expected_prev)) {
        note(*std::move(p));
        break;
      }
      auto it = checkpoints.find(row.seq);
      if (it != checkpoints.end()) {
        for (const CheckpointRow& c : it->second) {
          if (c.head_hash != row.hash) {
            note(
                {row.seq, absl::StrCat("entry ", row.seq, " is not the one the checkpoint of size ",
                                       row.seq, " signed (rewritten after it was signed)")});
          }
        }
      }
      out.set_entries_checked(out.entries_checked() + 1);
      expected_prev = row.hash;
      ++expected_seq;
      last_seq = row.seq;
      last_hash = row.hash;
    }
    if (static_cast<int>(rows.size()) < kPage) break;
    if (problem.has_value() && problem->seq <= last_seq) break;
  }
  if (!checkpoints.empty() && checkpoints.rbegin()->first > last_seq) {
    note({last_seq + 1,
          absl::StrCat("the checkpoint of size ", checkpoints.rbegin()->first, " covers entries ",
                       last_seq + 1, "..", checkpoints.rbegin()->first,
                       ", which are gone (deleted from the end)")});
  }
  out.set_size(last_seq);
  out.set_head_hash(HexEncode(last_hash));
  if (problem.has_value()) {
    out.set_first_broken_seq(problem->seq);
    out.set_problem(problem->what);
  } else {
    out.set_intact(true);
  }
  return out;
}

}  // namespace turnpike::controlplane
