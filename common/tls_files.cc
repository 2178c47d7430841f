#include "common/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <time.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace turnpike {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

absl::Status Problem(const std::string& what, const std::string& path, const std::string& why) {
  return absl::FailedPreconditionError(absl::StrCat(what, " ", path, ": ", why));
}

absl::StatusOr<std::string> ReadAll(const std::string& what, const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Problem(
        what, path,
        absl::StrCat("cannot read (", errno != 0 ? std::strerror(errno) : "open failed", ")"));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Problem(what, path, "cannot read (I/O error)");
  return out.str();
}

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// No passphrase prompt: an encrypted key fails to load instead of blocking on the terminal.
int NoPassphrase(char*, int, int, void*) { return 0; }

// The first certificate of a PEM bundle, or null.
X509Ptr FirstCertificate(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  return cert;
}

std::string SubjectLine(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  return buf;
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFileSet& files) {
  TlsMaterial out;
  absl::StatusOr<std::string> cert_pem = ReadAll("certificate", files.cert_path);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadAll("private key", files.key_path);
  if (!key_pem.ok()) return key_pem.status();
  X509Ptr leaf = FirstCertificate(*cert_pem);
  if (leaf == nullptr) {
    return Problem("certificate", files.cert_path, "holds no PEM certificate");
  }
  BioPtr key_bio = MemBio(*key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return Problem("private key", files.key_path,
                   "holds no PEM private key (an encrypted key is not supported)");
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    return Problem("private key", files.key_path,
                   absl::StrCat("does not match the certificate in ", files.cert_path));
  }
  struct tm not_after {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf.get()), &not_after) != 1) {
    return Problem("certificate", files.cert_path, "has an unreadable notAfter date");
  }
  out.not_after = absl::FromTM(not_after, absl::UTCTimeZone());
  out.subject = SubjectLine(leaf.get());
  if (!files.client_ca_path.empty()) {
    absl::StatusOr<std::string> ca_pem = ReadAll("client CA bundle", files.client_ca_path);
    if (!ca_pem.ok()) return ca_pem.status();
    if (FirstCertificate(*ca_pem) == nullptr) {
      return Problem("client CA bundle", files.client_ca_path, "holds no PEM certificate");
    }
    out.client_ca_pem = *std::move(ca_pem);
  }
  out.cert_pem = *std::move(cert_pem);
  out.key_pem = *std::move(key_pem);
  return out;
}

double DaysLeft(absl::Time not_after, absl::Time now) {
  return absl::FDivDuration(not_after - now, absl::Hours(24));
}

}  // namespace turnpike
