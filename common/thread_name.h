// NameThisThread names the calling thread as `top -H`, `perf` and /proc/PID/task/*/comm show it
// (docs/performance.md counts context switches per thread by these names). Linux keeps the first
// 15 bytes. Thread-safe: it names only the calling thread.
#ifndef TURNPIKE_COMMON_THREAD_NAME_H_
#define TURNPIKE_COMMON_THREAD_NAME_H_

#include <pthread.h>

namespace turnpike {

inline void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_THREAD_NAME_H_
