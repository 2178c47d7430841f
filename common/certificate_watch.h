// CertificateWatch follows a TLS listener's certificate files after start-up, for what gRPC's
// own file watcher does not do: it says when a new certificate was picked up or a rewrite was
// refused (a key that does not match, a half-written file: the certificate in use stays), warns
// ahead of expiry with the days left (at start, after each reload, then once a day), and holds
// the current material for listeners gRPC does not serve (/metrics) and for the expiry gauge.
// Its thread waits through the injected Clock. Reports go to Options::log (libraries do not log).
// Thread-safe.
#ifndef TURNPIKE_COMMON_CERTIFICATE_WATCH_H_
#define TURNPIKE_COMMON_CERTIFICATE_WATCH_H_

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/log_severity.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/tls_files.h"

namespace turnpike {

class CertificateWatch {
 public:
  using LogFn = std::function<void(absl::LogSeverity, const std::string&)>;
  struct Options {
    TlsFileSet files;
    // How often the files are checked for changes (the same period gRPC's watcher uses).
    absl::Duration interval = absl::Seconds(60);
    // A certificate with less than this left is warned about (then again every `rewarn`).
    absl::Duration warn_before = absl::Hours(24 * 30);
    absl::Duration rewarn = absl::Hours(24);
    LogFn log;
  };

  // Loads the files (failing as LoadTlsMaterial does), logs the expiry warning if due, and, when
  // `start_thread`, checks again every interval until destroyed. Tests pass false and call
  // CheckNow().
  static absl::StatusOr<std::unique_ptr<CertificateWatch>> Start(Options options, Clock& clock,
                                                                 bool start_thread = true);
  ~CertificateWatch();
  CertificateWatch(const CertificateWatch&) = delete;
  CertificateWatch& operator=(const CertificateWatch&) = delete;

  // Re-reads the files if they changed since the last look, and warns about expiry if due.
  void CheckNow();
  // The material in use: the last valid pair read. Never null.
  std::shared_ptr<const TlsMaterial> current() const;
  // Days until the current certificate's notAfter, by the clock (negative once expired).
  double days_left() const;
  int64_t reloads() const;
  int64_t reload_failures() const;
  const TlsFileSet& files() const { return options_.files; }

 private:
  struct FileStamp {
    struct timespec mtime {};
    off_t size = -1;
    ino_t inode = 0;
    bool operator==(const FileStamp& o) const {
      return mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec && size == o.size &&
             inode == o.inode;
    }
  };
  struct Stamps {
    FileStamp cert, key, ca;
    bool operator==(const Stamps& o) const { return cert == o.cert && key == o.key && ca == o.ca; }
  };

  CertificateWatch(Options options, Clock& clock) : options_(std::move(options)), clock_(clock) {}
  Stamps Stat() const;
  using Report = std::pair<absl::LogSeverity, std::string>;
  // The expiry warning due now, if any (logged by the caller once the lock is released).
  std::optional<Report> ExpiryWarning(const TlsMaterial& material, bool force)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(absl::LogSeverity severity, const std::string& message) const;
  void Run();

  const Options options_;
  Clock& clock_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const TlsMaterial> current_ ABSL_GUARDED_BY(mu_);
  Stamps seen_ ABSL_GUARDED_BY(mu_);
  absl::Time last_warning_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t reloads_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reload_failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_CERTIFICATE_WATCH_H_
