// ConfigAdmin: the master key. Checks at start that every sealed credential opens, and rotates
// every credential onto a new master key in batches that survive a crash (docs/security.md).
#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/config_admin.h"
#include "controlplane/proto_util.h"

namespace turnpike::controlplane {
namespace {

// Present while a rotation is under way; its value is the id of the key it rotates to.
constexpr char kRotationMarker[] = "master_key_rotation";
constexpr char kMasterKeyId[] = "master_key_id";

std::string KeysOf(const SecretBox& box) {
  return box.previous_key_id_hex().empty()
             ? absl::StrCat("master key id ", box.key_id_hex())
             : absl::StrCat("master key id ", box.key_id_hex(), " and previous key id ",
                            box.previous_key_id_hex());
}

}  // namespace

absl::Status ConfigAdmin::CheckSealedSecrets(SqliteDb& db, const SecretBox& box,
                                             const std::string& path) {
  TP_ASSIGN_OR_RETURN(std::vector<SealedVersion> sealed, ListSealedVersions(db, "", 0));
  std::map<std::string, int> unknown;  // key id -> versions sealed under it
  for (const SealedVersion& v : sealed) {
    std::string id = SecretBox::SealedKeyIdHex(v.sealed);
    if (!box.Knows(id)) ++unknown[id.empty() ? "(malformed)" : id];
  }
  if (!unknown.empty()) {
    std::vector<std::string> parts;
    for (const auto& [id, n] : unknown) parts.push_back(absl::StrCat(n, " under ", id));
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", path, " holds credential versions sealed under another master key (",
        absl::StrJoin(parts, ", "), "), but this process has ", KeysOf(box),
        "; start with the master key this database was sealed with, or during a rotation with "
        "--master_key_file=NEW --previous_master_key_file=OLD"));
  }
  // Every version opens: a tampered or mis-bound row is found now, not by the first push.
  for (const SealedVersion& v : sealed) {
    absl::StatusOr<std::string> opened = box.Open(v.sealed, v.credential, v.version);
    if (!opened.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", path, ": stored credentials cannot be opened: ", opened.status().message()));
    }
  }
  TP_ASSIGN_OR_RETURN(std::optional<std::string> rotating, GetMeta(db, kRotationMarker));
  TP_ASSIGN_OR_RETURN(std::vector<SealedVersion> other, ListSealedVersions(db, box.key_id(), 1));
  if (!rotating.has_value() && other.empty()) {
    TP_ASSIGN_OR_RETURN(std::optional<std::string> stored, GetMeta(db, kMasterKeyId));
    if (stored != box.key_id_hex()) TP_RETURN_IF_ERROR(PutMeta(db, kMasterKeyId, box.key_id_hex()));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ConfigAdmin::MasterKeyRotationPending() {
  bool pending = false;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::optional<std::string> marker, GetMeta(db, kRotationMarker));
    pending = marker.has_value();
    return absl::OkStatus();
  }));
  return pending;
}

absl::StatusOr<admin::v1::RotateMasterKeyResponse> ConfigAdmin::RotateMasterKey(
    const std::string& actor) {
  if (rotating_.exchange(true)) {
    return ErrorWithReason(absl::StatusCode::kAborted,
                           "a master key rotation is already running in this control plane; wait "
                           "for it and call again to see the result",
                           "ROTATION_RUNNING");
  }
  struct Done {
    std::atomic<bool>& flag;
    ~Done() { flag.store(false); }
  } done_on_return{rotating_};

  admin::v1::RotateMasterKeyResponse out;
  out.set_key_id(box_.key_id_hex());
  std::set<std::string> previous_ids;
  bool marked = false;
  // Mark first: from here until the last batch, a restart knows to finish the rotation.
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(std::optional<std::string> marker, GetMeta(db, kRotationMarker));
    TP_ASSIGN_OR_RETURN(std::vector<SealedVersion> other, ListSealedVersions(db, box_.key_id(), 1));
    marked = marker.has_value() || !other.empty();
    if (!other.empty()) TP_RETURN_IF_ERROR(PutMeta(db, kRotationMarker, box_.key_id_hex()));
    return absl::OkStatus();
  }));
  if (!marked) return out;  // nothing sealed under another key, and no rotation to finish

  const int batch = std::max(1, options_.master_key_rotation_batch);
  while (true) {
    int64_t done = 0, remaining = 0;
    TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
      TP_ASSIGN_OR_RETURN(std::vector<SealedVersion> rows,
                          ListSealedVersions(db, box_.key_id(), batch));
      for (const SealedVersion& v : rows) {
        previous_ids.insert(SecretBox::SealedKeyIdHex(v.sealed));
        // Opens under the previous key (FAILED_PRECONDITION if neither key sealed it: the batch
        // rolls back and nothing is lost).
        TP_ASSIGN_OR_RETURN(std::string secret, box_.Open(v.sealed, v.credential, v.version));
        absl::StatusOr<std::string> resealed = box_.Seal(secret, v.credential, v.version);
        std::string fingerprint = box_.Fingerprint(secret);
        std::fill(secret.begin(), secret.end(), '\0');
        if (!resealed.ok()) return resealed.status();
        TP_RETURN_IF_ERROR(
            ResealCredentialVersion(db, v.credential, v.version, *resealed, fingerprint));
        ++done;
      }
      TP_ASSIGN_OR_RETURN(remaining,
                          db.QueryInt(absl::StrCat(
                              "SELECT count(*) FROM credential_versions WHERE sealed IS NOT NULL "
                              "AND hex(substr(sealed, 5, 8)) != '",
                              absl::AsciiStrToUpper(box_.key_id_hex()), "'")));
      return absl::OkStatus();
    }));
    out.set_resealed(out.resealed() + done);
    out.set_remaining(remaining);
    if (done > 0 && options_.on_rotation_progress) {
      options_.on_rotation_progress(out.resealed(), remaining);
    }
    if (done == 0 || remaining == 0) break;
    if (options_.master_key_rotation_pause > absl::ZeroDuration()) {
      static const bool kNever = false;
      absl::Mutex wait_mu;
      absl::MutexLock lock(&wait_mu);
      clock_.AwaitWithDeadline(wait_mu, absl::Condition(&kNever),
                               clock_.MonotonicNow() + options_.master_key_rotation_pause);
    }
  }
  for (const std::string& id : previous_ids) out.add_previous_key_ids(id);
  // Done: one audited change clears the marker and records the key every credential is under.
  TP_RETURN_IF_ERROR(
      Commit(actor, [&](SqliteDb& db, absl::Time, std::vector<Change>& changes) -> absl::Status {
        TP_ASSIGN_OR_RETURN(std::optional<std::string> stored, GetMeta(db, kMasterKeyId));
        TP_RETURN_IF_ERROR(DeleteMeta(db, kRotationMarker));
        TP_RETURN_IF_ERROR(PutMeta(db, kMasterKeyId, box_.key_id_hex()));
        changes.push_back({"RotateMasterKey", "master_key", box_.key_id_hex(),
                           stored.has_value() ? absl::StrCat("{\"keyId\":\"", *stored, "\"}") : "",
                           absl::StrCat("{\"keyId\":\"", box_.key_id_hex(),
                                        "\",\"resealed\":", out.resealed(), "}")});
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace turnpike::controlplane
