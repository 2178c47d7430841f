// A real HTTP webhook receiver for the alert tests: libevent's evhttp on 127.0.0.1 (port chosen
// by the kernel) on its own thread. It records every POST (path and body) and answers the first
// `fail_first` of them with 503, the rest with 200. Thread-safe.
#ifndef TURNPIKE_TESTS_CONTROLPLANE_ALERTS_WEBHOOK_RECEIVER_H_
#define TURNPIKE_TESTS_CONTROLPLANE_ALERTS_WEBHOOK_RECEIVER_H_

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace turnpike::controlplane::testing {

class WebhookReceiver {
 public:
  struct Request {
    std::string path;
    std::string body;
    int answered = 0;
  };

  explicit WebhookReceiver(int fail_first = 0) : fail_first_(fail_first) {
    static std::once_flag once;
    std::call_once(once, [] { evthread_use_pthreads(); });
    base_ = event_base_new();
    http_ = evhttp_new(base_);
    evhttp_set_gencb(http_, &WebhookReceiver::Handle, this);
    evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http_, "127.0.0.1", 0);
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    if (bound != nullptr && getsockname(evhttp_bound_socket_get_fd(bound),
                                        reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([b = base_] { event_base_loop(b, EVLOOP_NO_EXIT_ON_EMPTY); });
  }

  ~WebhookReceiver() {
    static const timeval kNow = {0, 0};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* b) { event_base_loopbreak(static_cast<event_base*>(b)); },
        base_, &kNow);
    thread_.join();
    evhttp_free(http_);
    event_base_free(base_);
  }

  int port() const { return port_; }
  std::string Url(const std::string& path = "/hook") const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  std::vector<Request> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // Requests answered 2xx.
  int delivered() const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const Request& r : requests_) n += r.answered == 200 ? 1 : 0;
    return n;
  }
  void set_fail_first(int n) {
    absl::MutexLock lock(&mu_);
    fail_first_ = n;
    failed_ = 0;
  }

 private:
  static void Handle(evhttp_request* request, void* self) {
    auto* r = static_cast<WebhookReceiver*>(self);
    Request got;
    const char* path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(request));
    got.path = path != nullptr ? path : "";
    evbuffer* in = evhttp_request_get_input_buffer(request);
    got.body.resize(evbuffer_get_length(in));
    evbuffer_copyout(in, got.body.data(), got.body.size());
    {
      absl::MutexLock lock(&r->mu_);
      got.answered = r->failed_ < r->fail_first_ ? 503 : 200;
      if (got.answered != 200) ++r->failed_;
      r->requests_.push_back(got);
    }
    if (got.answered != 200) {
      evhttp_send_error(request, got.answered, "failing on purpose");
    } else {
      evhttp_send_reply(request, 200, "OK", nullptr);
    }
  }

  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  int port_ = 0;
  std::thread thread_;
  mutable absl::Mutex mu_;
  int fail_first_ ABSL_GUARDED_BY(mu_);
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike::controlplane::testing

#endif  // TURNPIKE_TESTS_CONTROLPLANE_ALERTS_WEBHOOK_RECEIVER_H_
