// libFuzzer target: the credential box opener (controlplane/secret_box.h) under the development
// master key. The first byte picks the mode:
//   bit 7 clear: the rest is sealed bytes from the database, opened for version (byte % 4); Open()
//     must refuse anything it did not seal, without crashing.
//   bit 7 set: the rest is a plaintext; it is sealed, must open to itself, and must fail to open
//     once any byte of it (chosen by the input) is flipped: this reaches the success path that
//     random sealed bytes never would.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "controlplane/secret_box.h"

using turnpike::controlplane::MasterKey;
using turnpike::controlplane::SecretBox;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const SecretBox* box =
      SecretBox::Create(MasterKey::InsecureDevelopmentKey()).value().release();
  if (size == 0) return 0;
  const int64_t version = data[0] % 4;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 0x80) == 0) {
    (void)box->Open(rest, "fuzz-credential", version);
    return 0;
  }
  absl::StatusOr<std::string> sealed = box->Seal(rest, "fuzz-credential", version);
  if (!sealed.ok()) __builtin_trap();
  absl::StatusOr<std::string> opened = box->Open(*sealed, "fuzz-credential", version);
  if (!opened.ok() || *opened != rest) __builtin_trap();
  if (box->Open(*sealed, "fuzz-credential", version + 1).ok()) __builtin_trap();
  std::string tampered = *sealed;
  const size_t at = (data[0] * 131u + size) % tampered.size();
  tampered[at] = static_cast<char>(tampered[at] ^ 0x01);
  if (box->Open(tampered, "fuzz-credential", version).ok()) __builtin_trap();
  return 0;
}
