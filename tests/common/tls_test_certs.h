// Self-signed certificates minted in memory for the TLS unit tests (common/tls_files.h,
// common/certificate_watch.h): a P-256 key and a certificate valid from an hour ago for
// `valid_for` (negative: already expired). Not thread-safe (a static serial).
#ifndef TURNPIKE_TESTS_COMMON_TLS_TEST_CERTS_H_
#define TURNPIKE_TESTS_COMMON_TLS_TEST_CERTS_H_

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>

#include "absl/time/time.h"

namespace turnpike::testing {

struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

inline std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

inline TestCert SelfSigned(const std::string& cn, absl::Duration valid_for) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(absl::ToInt64Seconds(valid_for)));
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_sign(cert, key, EVP_sha256());
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, cert);
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(cert);
  EVP_PKEY_free(key);
  return {BioText(cb), BioText(kb)};
}

}  // namespace turnpike::testing

#endif  // TURNPIKE_TESTS_COMMON_TLS_TEST_CERTS_H_
