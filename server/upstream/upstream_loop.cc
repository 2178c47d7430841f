#include "server/upstream/upstream_loop.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/thread_name.h"
#include "server/upstream/upstream_loop_transfer.h"

namespace turnpike {
namespace {

// The loop whose thread this is, if any: work a loop posts to itself (a timer set, or a
// transfer resumed or cancelled from a handler) needs no eventfd wake-up.
thread_local const UpstreamLoop* this_threads_loop = nullptr;

}  // namespace

UpstreamLoop::UpstreamLoop(Options options) : options_(options), clock_(*options.clock) {}

absl::StatusOr<std::unique_ptr<UpstreamLoop>> UpstreamLoop::Create(Options options) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<UpstreamLoop> loop(new UpstreamLoop(options));
  absl::Status status = loop->Init();
  if (!status.ok()) return status;
  return loop;
}

absl::Status UpstreamLoop::Init() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);

  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return absl::InternalError("curl_multi_init failed");
  multi_ = multi;
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &UpstreamLoop::SocketCallback);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &UpstreamLoop::TimerCallback);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.max_idle_connections));
  thread_ = std::thread([this] {
    NameThisThread("tp-upstream");
    this_threads_loop = this;
    Run();
  });
  return absl::OkStatus();
}

UpstreamLoop::~UpstreamLoop() {
  Stop();
  for (void* easy : idle_easy_) curl_easy_cleanup(static_cast<CURL*>(easy));
  if (multi_ != nullptr) curl_multi_cleanup(static_cast<CURLM*>(multi_));
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

void UpstreamLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

int UpstreamLoop::active_transfers() const { return active_.load(std::memory_order_relaxed); }

UpstreamLoop::TransferId UpstreamLoop::Start(HttpRequest request, TransferOptions options,
                                             std::shared_ptr<TransferHandler> handler) {
  auto transfer = std::make_unique<Transfer>();
  transfer->loop = this;
  transfer->id = next_id_.fetch_add(1, std::memory_order_relaxed);
  transfer->request = std::move(request);
  transfer->options = options;
  transfer->handler = std::move(handler);
  const TransferId id = transfer->id;
  Enqueue(Command{Command::Kind::kStart, id, std::move(transfer), {}, nullptr});
  return id;
}

UpstreamLoop::TimerId UpstreamLoop::RunAfter(absl::Duration delay, std::function<void()> fn) {
  const TimerId id = next_id_.fetch_add(1, std::memory_order_relaxed);
  Command command{Command::Kind::kTimer, id, nullptr, clock_.MonotonicNow() + delay, std::move(fn)};
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return 0;
    wake = commands_.empty() && this_threads_loop != this;
    commands_.push_back(std::move(command));
  }
  if (wake) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  return id;
}

void UpstreamLoop::CancelTimer(TimerId id) {
  if (id != 0) Enqueue(Command{Command::Kind::kCancelTimer, id, nullptr, {}, nullptr});
}

void UpstreamLoop::Resume(TransferId id) {
  Enqueue(Command{Command::Kind::kResume, id, nullptr, {}, nullptr});
}

void UpstreamLoop::Cancel(TransferId id) {
  Enqueue(Command{Command::Kind::kCancel, id, nullptr, {}, nullptr});
}

void UpstreamLoop::Enqueue(Command command) {
  std::shared_ptr<TransferHandler> rejected;
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && command.kind == Command::Kind::kStart) {
      rejected = std::move(command.transfer->handler);
    } else {
      // From the loop's own thread the command runs before the loop next waits (Run()).
      wake = commands_.empty() && this_threads_loop != this;
      commands_.push_back(std::move(command));
    }
  }
  if (rejected != nullptr) {
    // Too late to run: complete it here, outside the loop.
    rejected->OnComplete(absl::CancelledError("upstream loop stopped"));
    return;
  }
  if (wake) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

void UpstreamLoop::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  CURLM* multi = static_cast<CURLM*>(multi_);
  while (true) {
    bool posted_here;  // commands this thread queued without a wake-up: do not wait for one
    {
      absl::MutexLock lock(&mu_);
      posted_here = !commands_.empty();
    }
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, posted_here ? 0 : NextTimeoutMs());
    bool stop = false;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == wake_fd_) {
        uint64_t value;
        (void)!read(wake_fd_, &value, sizeof(value));
        continue;
      }
      int flags = 0;
      if (events[i].events & (EPOLLIN | EPOLLHUP)) flags |= CURL_CSELECT_IN;
      if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (events[i].events & EPOLLERR) flags |= CURL_CSELECT_ERR;
      int running;
      curl_multi_socket_action(multi, events[i].data.fd, flags, &running);
    }
    {
      absl::MutexLock lock(&mu_);
      stop = stopping_;
    }
    RunCommands();
    // curl's timer is one-shot: it is re-armed by TimerCallback only when curl wants a new one,
    // so disarm it before firing (re-firing an expired timer on every turn would spin).
    if (clock_.MonotonicNow() >= curl_deadline_) {
      curl_deadline_ = absl::InfiniteFuture();
      int running;
      curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    CheckDone();
    const absl::Time now = clock_.MonotonicNow();
    // First-byte and idle limits are checked every kDeadlineTick, not on every wake-up: with
    // a thousand streams a scan per event would cost more than the events themselves.
    if (now >= next_deadline_check_) {
      CheckDeadlines(now);
      next_deadline_check_ = now + kDeadlineTick;
    }
    RunTimers(now, /*all=*/false);
    if (stop) break;
  }
  // Drain: pending commands, every timer (at once) and every transfer still running (CANCELLED).
  // Their handlers may queue more work, so repeat until nothing is left.
  while (true) {
    RunCommands();
    bool ran = RunTimers(absl::InfiniteFuture(), /*all=*/true);
    std::vector<Transfer*> remaining;
    for (auto& [id, t] : transfers_) remaining.push_back(t);
    for (Transfer* t : remaining) FinishTransfer(t, absl::CancelledError("upstream loop stopped"));
    ran = ran || !remaining.empty();
    absl::MutexLock lock(&mu_);
    if (!ran && commands_.empty()) {
      stopped_ = true;
      break;
    }
  }
}

bool UpstreamLoop::RunTimers(absl::Time now, bool all) {
  bool ran = false;
  while (!timer_queue_.empty()) {
    const auto [when, id] = timer_queue_.top();
    if (!all && when > now) break;
    timer_queue_.pop();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    std::function<void()> fn = std::move(it->second);
    timers_.erase(it);
    fn();
    ran = true;
  }
  return ran;
}

void UpstreamLoop::RunCommands() {
  std::vector<Command> commands;
  {
    absl::MutexLock lock(&mu_);
    commands.swap(commands_);
  }
  for (Command& c : commands) {
    switch (c.kind) {
      case Command::Kind::kStart:
        StartTransfer(std::move(c.transfer));
        break;
      case Command::Kind::kResume: {
        auto it = transfers_.find(c.id);
        if (it != transfers_.end() && it->second->paused) {
          it->second->paused = false;
          it->second->last_data = clock_.MonotonicNow();
          // May synchronously deliver the held-back data to the write callback.
          curl_easy_pause(it->second->easy, CURLPAUSE_CONT);
        }
        break;
      }
      case Command::Kind::kCancel: {
        auto it = transfers_.find(c.id);
        if (it != transfers_.end()) {
          FinishTransfer(it->second, absl::CancelledError("cancelled by the gateway"));
        }
        break;
      }
      case Command::Kind::kTimer:
        timers_.emplace(c.id, std::move(c.fn));
        timer_queue_.emplace(c.when, c.id);
        break;
      case Command::Kind::kCancelTimer:
        timers_.erase(c.id);
        break;
    }
  }
}

int UpstreamLoop::NextTimeoutMs() {
  int timeout = -1;
  if (curl_deadline_ != absl::InfiniteFuture()) {
    const absl::Duration left = curl_deadline_ - clock_.MonotonicNow();
    timeout = static_cast<int>(std::clamp<int64_t>(
        absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), 0, 1 << 30));
  }
  // First-byte and idle deadlines are checked at kDeadlineTick granularity while transfers run.
  const int tick_ms = static_cast<int>(absl::ToInt64Milliseconds(kDeadlineTick));
  if (!transfers_.empty() && (timeout < 0 || timeout > tick_ms)) timeout = tick_ms;
  // Cancelled timers are dropped lazily; skip them so they do not cause early wake-ups.
  while (!timer_queue_.empty() && !timers_.contains(timer_queue_.top().second)) timer_queue_.pop();
  if (!timer_queue_.empty()) {
    const absl::Duration left = timer_queue_.top().first - clock_.MonotonicNow();
    const int64_t ms =
        std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    if (timeout < 0 || ms < timeout) timeout = static_cast<int>(std::min<int64_t>(ms, 1 << 30));
  }
  return timeout;
}

int UpstreamLoop::SocketCallback(void*, int fd, int what, void* userp, void*) {
  auto* self = static_cast<UpstreamLoop*>(userp);
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    return 0;
  }
  epoll_event ev{};
  ev.data.fd = fd;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev.events |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev.events |= EPOLLOUT;
  if (epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
    epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return 0;
}

int UpstreamLoop::TimerCallback(void*, long timeout_ms, void* userp) {
  auto* self = static_cast<UpstreamLoop*>(userp);
  self->curl_deadline_ = timeout_ms < 0
                             ? absl::InfiniteFuture()
                             : self->clock_.MonotonicNow() + absl::Milliseconds(timeout_ms);
  return 0;
}

}  // namespace turnpike
