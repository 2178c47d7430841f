#include "common/certificate_watch.h"

#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/thread_name.h"

namespace turnpike {
namespace {

std::string Days(double days) { return absl::StrFormat("%.1f", days); }

}  // namespace

absl::StatusOr<std::unique_ptr<CertificateWatch>> CertificateWatch::Start(Options options,
                                                                          Clock& clock,
                                                                          bool start_thread) {
  std::unique_ptr<CertificateWatch> watch(new CertificateWatch(std::move(options), clock));
  const Stamps stamps = watch->Stat();
  std::optional<Report> warning;
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(watch->options_.files);
  if (!material.ok()) return material.status();
  {
    absl::MutexLock lock(&watch->mu_);
    watch->seen_ = stamps;
    watch->current_ = std::make_shared<const TlsMaterial>(*std::move(material));
    warning = watch->ExpiryWarning(*watch->current_, /*force=*/true);
  }
  if (warning.has_value()) watch->Log(warning->first, warning->second);
  if (start_thread) {
    watch->thread_ = std::thread([w = watch.get()] {
      NameThisThread("tp-cert-watch");
      w->Run();
    });
  }
  return watch;
}

CertificateWatch::~CertificateWatch() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CertificateWatch::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      clock_.AwaitWithDeadline(mu_, absl::Condition(&stop_),
                               clock_.MonotonicNow() + options_.interval);
      if (stop_) return;
    }
    CheckNow();
  }
}

CertificateWatch::Stamps CertificateWatch::Stat() const {
  auto stamp = [](const std::string& path) {
    FileStamp s;
    struct stat st;
    if (!path.empty() && stat(path.c_str(), &st) == 0) {
      s.mtime = st.st_mtim;
      s.size = st.st_size;
      s.inode = st.st_ino;
    }
    return s;
  };
  return {stamp(options_.files.cert_path), stamp(options_.files.key_path),
          stamp(options_.files.client_ca_path)};
}

void CertificateWatch::CheckNow() {
  const Stamps stamps = Stat();
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = !(stamps == seen_);
  }
  std::optional<Report> warning;
  if (!changed) {
    {
      absl::MutexLock lock(&mu_);
      warning = ExpiryWarning(*current_, /*force=*/false);
    }
    if (warning.has_value()) Log(warning->first, warning->second);
    return;
  }
  // Read outside the lock: scrapes and handshakes keep reading the current material meanwhile.
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(options_.files);
  std::string message;
  absl::LogSeverity severity = absl::LogSeverity::kInfo;
  {
    absl::MutexLock lock(&mu_);
    seen_ = stamps;
    if (!material.ok()) {
      ++reload_failures_;
      severity = absl::LogSeverity::kWarning;
      message = absl::StrCat("TLS files changed but were not reloaded, the certificate in use (",
                             current_->subject, ") stays: ", material.status().message());
    } else if (material->cert_pem == current_->cert_pem && material->key_pem == current_->key_pem &&
               material->client_ca_pem == current_->client_ca_pem) {
      return;  // touched, same content
    } else {
      ++reloads_;
      current_ = std::make_shared<const TlsMaterial>(*std::move(material));
      message = absl::StrCat(
          "TLS certificate reloaded from ", options_.files.cert_path, ": ", current_->subject,
          ", expires ",
          absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", current_->not_after, absl::UTCTimeZone()), " (",
          Days(DaysLeft(current_->not_after, clock_.Now())), " days left)");
    }
  }
  Log(severity, message);
  {
    absl::MutexLock lock(&mu_);
    warning = ExpiryWarning(*current_, /*force=*/severity == absl::LogSeverity::kInfo);
  }
  if (warning.has_value()) Log(warning->first, warning->second);
}

std::optional<CertificateWatch::Report> CertificateWatch::ExpiryWarning(const TlsMaterial& material,
                                                                        bool force) {
  const absl::Time now = clock_.Now();
  const absl::Duration left = material.not_after - now;
  if (left >= options_.warn_before) return std::nullopt;
  if (!force && now - last_warning_ < options_.rewarn) return std::nullopt;
  last_warning_ = now;
  const double days = DaysLeft(material.not_after, now);
  if (left <= absl::ZeroDuration()) {
    return Report{
        absl::LogSeverity::kError,
        absl::StrCat("TLS certificate ", options_.files.cert_path, " (", material.subject,
                     ") EXPIRED ", Days(-days), " days ago: clients will refuse it; renew it")};
  }
  return Report{absl::LogSeverity::kWarning,
                absl::StrCat("TLS certificate ", options_.files.cert_path, " (", material.subject,
                             ") expires in ", Days(days), " days; renew it")};
}

void CertificateWatch::Log(absl::LogSeverity severity, const std::string& message) const {
  if (options_.log) options_.log(severity, message);
}

std::shared_ptr<const TlsMaterial> CertificateWatch::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

double CertificateWatch::days_left() const {
  std::shared_ptr<const TlsMaterial> material = current();
  return DaysLeft(material->not_after, clock_.Now());
}

int64_t CertificateWatch::reloads() const {
  absl::MutexLock lock(&mu_);
  return reloads_;
}

int64_t CertificateWatch::reload_failures() const {
  absl::MutexLock lock(&mu_);
  return reload_failures_;
}

}  // namespace turnpike
