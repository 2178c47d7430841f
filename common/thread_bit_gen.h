// A random generator owned by the calling thread, for per-request draws on the hot path (retry
// jitter, weighted target picks) without a shared mutex: each thread draws from its own
// absl::BitGen. absl::BitGen is not thread-safe, so the reference must only be used on the thread
// that obtained it (a planner driven from one UpstreamLoop thread qualifies). Components that own
// a thread should prefer to own a generator and inject it; this is for callers that do not.
// Header-only.
#ifndef TURNPIKE_COMMON_THREAD_BIT_GEN_H_
#define TURNPIKE_COMMON_THREAD_BIT_GEN_H_

#include "absl/random/bit_gen_ref.h"
#include "absl/random/random.h"

namespace turnpike {

inline absl::BitGenRef ThisThreadBitGen() {
  thread_local absl::BitGen gen;
  return absl::BitGenRef(gen);
}

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_THREAD_BIT_GEN_H_
