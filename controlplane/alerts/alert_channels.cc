// AlertRules' channels: validation, sealing, the redacted listing, and audited changes. A
// channel's audit entry is its listing (name, kind, scheme and host, fingerprint), never its URL
// or routing key.
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "controlplane/admin_audit.h"
#include "controlplane/alerts/alert_rules.h"
#include "controlplane/proto_util.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

namespace a = ::turnpike::alert::v1;

constexpr size_t kMaxUrlBytes = 2048;
constexpr size_t kMaxRoutingKeyBytes = 256;

// The URL checks; messages never quote the URL.
void CheckUrl(absl::string_view url, const std::string& path, Violations& v) {
  if (url.size() > kMaxUrlBytes) {
    v.Add(path, absl::StrCat("is longer than ", kMaxUrlBytes, " bytes"));
    return;
  }
  absl::string_view rest = url;
  if (absl::StartsWith(rest, "https://")) {
    rest.remove_prefix(8);
  } else if (absl::StartsWith(rest, "http://")) {
    rest.remove_prefix(7);
  } else {
    v.Add(path, "must be an http:// or https:// URL");
    return;
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      v.Add(path, "must not contain spaces or control characters");
      return;
    }
  }
  if (rest.empty() || rest[0] == '/' || rest[0] == ':' || rest[0] == '?') {
    v.Add(path, "has no host");
  }
}

// scheme://host[:port] without user info, path or query: what lists show.
std::string Redact(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return "";
  absl::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  const size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) rest.remove_prefix(at + 1);
  return absl::StrCat(url.substr(0, scheme_end), "://", rest);
}

std::string SealName(const std::string& channel) { return absl::StrCat("alert-channel/", channel); }

constexpr char kChannelColumns[] =
    "SELECT name, kind, url_redacted, fingerprint FROM alert_channels";

a::AlertChannel ChannelFromRow(SqliteStatement& s) {
  a::AlertChannel c;
  c.set_name(s.ColumnText(0));
  c.set_kind(static_cast<a::ChannelKind>(s.ColumnInt(1)));
  c.set_url_redacted(s.ColumnText(2));
  c.set_fingerprint(s.ColumnText(3));
  return c;
}

}  // namespace

absl::Status AlertRules::ValidateChannel(const a::AlertChannel& channel) {
  Violations v;
  ValidateName(channel.name(), "channel.name", v);
  switch (channel.kind()) {
    case a::CHANNEL_KIND_WEBHOOK:
    case a::CHANNEL_KIND_SLACK:
      CheckUrl(channel.url(), "channel.url", v);
      if (!channel.routing_key().empty()) {
        v.Add("channel.routing_key", "applies to PAGERDUTY channels only");
      }
      break;
    case a::CHANNEL_KIND_PAGERDUTY:
      if (!channel.url().empty()) CheckUrl(channel.url(), "channel.url", v);
      if (channel.routing_key().empty() || channel.routing_key().size() > kMaxRoutingKeyBytes) {
        v.Add("channel.routing_key", "must be 1 to 256 bytes (the integration's routing key)");
      }
      for (char c : channel.routing_key()) {
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
          v.Add("channel.routing_key", "must not contain spaces or control characters");
          break;
        }
      }
      break;
    default:
      v.Add("channel.kind",
            "must be CHANNEL_KIND_WEBHOOK, CHANNEL_KIND_SLACK or "
            "CHANNEL_KIND_PAGERDUTY");
  }
  if (!channel.url_redacted().empty()) v.Add("channel.url_redacted", "is output only");
  if (!channel.fingerprint().empty()) v.Add("channel.fingerprint", "is output only");
  return v.ToStatus();
}

absl::StatusOr<a::AlertChannel> AlertRules::CreateChannel(const a::AlertChannel& channel,
                                                          const std::string& actor) {
  TP_RETURN_IF_ERROR(ValidateChannel(channel));
  const std::string url = channel.kind() == a::CHANNEL_KIND_PAGERDUTY && channel.url().empty()
                              ? std::string(kPagerDutyEventsUrl)
                              : channel.url();
  TP_ASSIGN_OR_RETURN(std::string sealed, box_.Seal(absl::StrCat(url, "\n", channel.routing_key()),
                                                    SealName(channel.name()), 1));
  a::AlertChannel listed;
  listed.set_name(channel.name());
  listed.set_kind(channel.kind());
  listed.set_url_redacted(Redact(url));
  listed.set_fingerprint(box_.Fingerprint(absl::StrCat(url, "\n", channel.routing_key())));
  const absl::Time now = clock_.Now();
  TP_RETURN_IF_ERROR(store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("INSERT INTO alert_channels (name, kind, sealed, url_redacted, "
                                   "fingerprint, create_time) VALUES (?, ?, ?, ?, ?, ?)"));
    s.Bind(1, listed.name())
        .Bind(2, static_cast<int64_t>(listed.kind()))
        .BindBlob(3, sealed)
        .Bind(4, listed.url_redacted())
        .Bind(5, listed.fingerprint())
        .Bind(6, absl::ToUnixMicros(now));
    absl::Status st = s.Run();
    if (st.code() == absl::StatusCode::kAlreadyExists ||
        st.code() == absl::StatusCode::kFailedPrecondition) {
      return absl::AlreadyExistsError(absl::StrCat("alert channel \"", listed.name(), "\" exists"));
    }
    TP_RETURN_IF_ERROR(st);
    // The listing only: the URL and routing key stay sealed.
    return AuditAdminChange(db, now, actor, "CreateAlertChannel", "alert_channel", listed.name(),
                            nullptr, &listed);
  }));
  return listed;
}

absl::Status AlertRules::DeleteChannel(const std::string& name, const std::string& actor) {
  const absl::Time now = clock_.Now();
  return store_.Write([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement rules, db.Prepare("SELECT name, spec FROM alert_rules"));
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, rules.Step());
      if (!row) break;
      a::AlertRule rule;
      if (!rule.ParseFromString(rules.ColumnText(1))) continue;
      for (const std::string& c : rule.channels()) {
        if (c == name) {
          return absl::FailedPreconditionError(absl::StrCat(
              "alert rule \"", rule.name(), "\" names channel \"", name, "\"; update it first"));
        }
      }
    }
    TP_ASSIGN_OR_RETURN(SqliteStatement row,
                        db.Prepare(absl::StrCat(kChannelColumns, " WHERE name = ?")));
    row.Bind(1, name);
    TP_ASSIGN_OR_RETURN(bool found, row.Step());
    if (!found) return absl::NotFoundError(absl::StrCat("no alert channel named \"", name, "\""));
    const a::AlertChannel before = ChannelFromRow(row);
    TP_ASSIGN_OR_RETURN(SqliteStatement s, db.Prepare("DELETE FROM alert_channels WHERE name = ?"));
    s.Bind(1, name);
    TP_RETURN_IF_ERROR(s.Run());
    return AuditAdminChange(db, now, actor, "DeleteAlertChannel", "alert_channel", name, &before,
                            nullptr);
  });
}

absl::StatusOr<AlertListPage<a::AlertChannel>> AlertRules::ListChannels(
    int page_size, const std::string& page_token) {
  TP_ASSIGN_OR_RETURN(int limit, PageSize(page_size));
  TP_ASSIGN_OR_RETURN(std::string after, DecodePageToken(page_token));
  AlertListPage<a::AlertChannel> page;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        SqliteStatement s,
        db.Prepare(absl::StrCat(kChannelColumns, " WHERE name > ? ORDER BY name LIMIT ?")));
    s.Bind(1, after).Bind(2, static_cast<int64_t>(limit) + 1);
    while (true) {
      TP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return absl::OkStatus();
      page.items.push_back(ChannelFromRow(s));
    }
  }));
  if (page.items.size() > static_cast<size_t>(limit)) {
    page.items.resize(limit);
    page.next_page_token = EncodePageToken(page.items.back().name());
  }
  return page;
}

absl::StatusOr<OpenedChannel> AlertRules::OpenChannel(const std::string& name) {
  OpenedChannel out;
  std::string sealed;
  TP_RETURN_IF_ERROR(store_.Read([&](SqliteDb& db) -> absl::Status {
    TP_ASSIGN_OR_RETURN(SqliteStatement s,
                        db.Prepare("SELECT kind, sealed FROM alert_channels WHERE name = ?"));
    s.Bind(1, name);
    TP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::NotFoundError(absl::StrCat("no alert channel named \"", name, "\""));
    out.kind = static_cast<a::ChannelKind>(s.ColumnInt(0));
    sealed = s.ColumnText(1);
    return absl::OkStatus();
  }));
  TP_ASSIGN_OR_RETURN(std::string plain, box_.Open(sealed, SealName(name), 1));
  const size_t nl = plain.find('\n');
  out.name = name;
  out.url = plain.substr(0, nl);
  if (nl != std::string::npos) out.routing_key = plain.substr(nl + 1);
  return out;
}

}  // namespace turnpike::controlplane
