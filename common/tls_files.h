// The certificate files a TLS listener serves with, read and checked with OpenSSL. Start-up
// calls LoadTlsMaterial so that a missing, unreadable or mismatched key and certificate stop the
// process with a message naming the file and the problem (gRPC's own file watcher would only log
// and then fail every handshake); CertificateWatch calls it again whenever the files change.
// Stateless functions; thread-safe.
#ifndef TURNPIKE_COMMON_TLS_FILES_H_
#define TURNPIKE_COMMON_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace turnpike {

struct TlsFileSet {
  std::string cert_path;       // PEM certificate chain, leaf first
  std::string key_path;        // PEM private key of the leaf (unencrypted)
  std::string client_ca_path;  // PEM CA bundle for client certificates; empty: none asked for
};

// What the files held when they were read.
struct TlsMaterial {
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;
  absl::Time not_after;  // the leaf certificate's notAfter
  std::string subject;   // the leaf's subject, one line (for logs)
};

// Reads and checks the files: each exists and is readable, the certificate file holds at least
// one PEM certificate, the key file a PEM private key that matches the first certificate, the CA
// file at least one PEM certificate. FAILED_PRECONDITION naming the file otherwise.
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFileSet& files);

// Days from `now` until `not_after`; negative once it has passed.
double DaysLeft(absl::Time not_after, absl::Time now);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_TLS_FILES_H_
