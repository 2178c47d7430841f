#include "tools/fake_provider/response_session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <string>

namespace turnpike::fake_provider {
namespace {

// How long (in 1 ms polls) a reset waits for the kernel to hand already-written bytes to
// the peer, so "reset after N chunks" really delivers N chunks first.
constexpr int kMaxDrainPolls = 2000;

void SetHeaders(evhttp_request* req, const ResponsePlan& plan) {
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Content-Type", plan.content_type.c_str());
  for (const auto& [name, value] : plan.headers) {
    evhttp_add_header(out, name.c_str(), value.c_str());
  }
}

const char* Reason(int status) { return ReasonPhrase(status).data(); }

}  // namespace

bool ResponseSession::CanSendImmediately(const ResponsePlan& plan) {
  if (plan.first_byte_delay_ms > 0) return false;
  if (plan.kind == ResponsePlan::Kind::kReply) return true;
  return plan.kind == ResponsePlan::Kind::kStream && plan.ending == ResponsePlan::Ending::kEnd &&
         (plan.segment_delay_ms == 0 || plan.segments.size() <= 1);
}

void ResponseSession::SendImmediately(evhttp_request* req, const ResponsePlan& plan) {
  SetHeaders(req, plan);
  if (plan.kind == ResponsePlan::Kind::kReply) {
    evbuffer_add(evhttp_request_get_output_buffer(req), plan.body.data(), plan.body.size());
    evhttp_send_reply(req, plan.status, Reason(plan.status), nullptr);
    return;
  }
  evhttp_send_reply_start(req, plan.status, Reason(plan.status));
  evbuffer* buf = evbuffer_new();
  for (const std::string& seg : plan.segments) evbuffer_add(buf, seg.data(), seg.size());
  evhttp_send_reply_chunk(req, buf);
  evbuffer_free(buf);
  evhttp_send_reply_end(req);
}

ResponseSession::ResponseSession(event_base* base, evhttp_request* req, ResponsePlan plan,
                                 Options options, Observer* observer)
    : base_(base), options_(options), observer_(observer), plan_(std::move(plan)), req_(req) {
  timer_ = evtimer_new(base_, &ResponseSession::OnTimerThunk, this);
  chunk_ = evbuffer_new();
}

ResponseSession::~ResponseSession() {
  if (timer_ != nullptr) event_free(timer_);
  if (chunk_ != nullptr) evbuffer_free(chunk_);
}

void ResponseSession::Start() {
  WatchConnection();
  if (plan_.first_byte_delay_ms > 0) {
    phase_ = Phase::kFirstByteDelay;
    Schedule(plan_.first_byte_delay_ms);
    return;
  }
  BeginResponse();
}

void ResponseSession::Abandon() {
  event_del(timer_);
  if (evcon_ != nullptr) evhttp_connection_set_closecb(evcon_, nullptr, nullptr);
  // A request already detached from its (dead) connection is ours to free; one still
  // attached is freed by evhttp_free() with its connection.
  if (req_ != nullptr && evhttp_request_get_connection(req_) == nullptr) {
    evhttp_request_free(req_);
  }
  req_ = nullptr;
  delete this;
}

// Learn about a client disconnect even while we are not writing: evhttp stops reading once
// the request body is in, so re-enable reading with no read callback (pipelined bytes just
// wait in the input buffer; evhttp picks them up after the reply). EOF then reaches evhttp's
// error callback, which detaches the request and calls our close callback.
void ResponseSession::WatchConnection() {
  evcon_ = evhttp_request_get_connection(req_);
  if (evcon_ == nullptr) return;
  evhttp_connection_set_closecb(evcon_, &ResponseSession::OnClosedThunk, this);
  bufferevent* bev = evhttp_connection_get_bufferevent(evcon_);
  bufferevent_data_cb readcb;
  bufferevent_data_cb writecb;
  bufferevent_event_cb eventcb;
  void* cbarg;
  bufferevent_getcb(bev, &readcb, &writecb, &eventcb, &cbarg);
  bufferevent_setcb(bev, nullptr, writecb, eventcb, cbarg);
  // No read timeout while we hold the response open (stalls and slow streams are legal);
  // the write timeout still catches a client that stops reading.
  const timeval idle = {options_.idle_timeout_s, 0};
  bufferevent_set_timeouts(bev, nullptr, &idle);
  bufferevent_enable(bev, EV_READ);
}

// Undo WatchConnection before handing the connection back to evhttp for keep-alive.
void ResponseSession::ReleaseConnection() {
  if (evcon_ == nullptr) return;
  evhttp_connection_set_closecb(evcon_, nullptr, nullptr);
  const timeval idle = {options_.idle_timeout_s, 0};
  bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon_), &idle, &idle);
}

void ResponseSession::Schedule(int delay_ms) {
  const timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
  evtimer_add(timer_, &tv);
}

void ResponseSession::OnTimerThunk(evutil_socket_t, short, void* arg) {
  static_cast<ResponseSession*>(arg)->OnTimer();
}

void ResponseSession::OnClosedThunk(evhttp_connection*, void* arg) {
  static_cast<ResponseSession*>(arg)->OnClientGone();
}

void ResponseSession::OnFlushedThunk(evhttp_connection*, void* arg) {
  auto* self = static_cast<ResponseSession*>(arg);
  if (self->phase_ != Phase::kAwaitFlush) return;
  // Leave evhttp's write callback before freeing the connection.
  self->phase_ = Phase::kDrainBeforeReset;
  self->Schedule(0);
}

void ResponseSession::OnTimer() {
  switch (phase_) {
    case Phase::kFirstByteDelay:
      BeginResponse();
      return;
    case Phase::kStreaming:
      SendSegment();
      return;
    case Phase::kDrainBeforeReset: {
      int unsent = 0;
      const int fd =
          evcon_ == nullptr ? -1 : bufferevent_getfd(evhttp_connection_get_bufferevent(evcon_));
      if (fd >= 0 && ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0 &&
          ++drain_polls_ < kMaxDrainPolls) {
        Schedule(1);
        return;
      }
      ResetConnection();
      Finish(Outcome::kReset);
      return;
    }
    case Phase::kStalled:
      DropConnection();
      Finish(Outcome::kReset);
      return;
    default:
      return;
  }
}

void ResponseSession::OnClientGone() {
  event_del(timer_);
  // evhttp detaches a request that is still being answered from a connection that died
  // (EOF or timeout) and leaves it to us; free it now, nothing more will be sent.
  if (req_ != nullptr && evhttp_request_get_connection(req_) == nullptr) {
    evhttp_request_free(req_);
  }
  req_ = nullptr;
  evcon_ = nullptr;
  Finish(Outcome::kAborted);
}

void ResponseSession::BeginResponse() {
  switch (plan_.kind) {
    case ResponsePlan::Kind::kReset:
      ResetConnection();
      Finish(Outcome::kReset);
      return;
    case ResponsePlan::Kind::kStall:
      phase_ = Phase::kStalled;
      Schedule(options_.stall_timeout_ms);
      return;
    case ResponsePlan::Kind::kReply:
      ReleaseConnection();
      SendImmediately(req_, plan_);
      req_ = nullptr;
      Finish(Outcome::kCompleted);
      return;
    case ResponsePlan::Kind::kStream:
      SetHeaders(req_, plan_);
      evhttp_send_reply_start(req_, plan_.status, Reason(plan_.status));
      phase_ = Phase::kStreaming;
      if (plan_.segment_delay_ms == 0) {
        // Everything at once (still one SSE event per chunk), then the ending.
        while (next_segment_ + 1 < plan_.segments.size()) {
          const std::string& seg = plan_.segments[next_segment_++];
          evbuffer_add(chunk_, seg.data(), seg.size());
        }
      }
      SendSegment();
      return;
  }
}

void ResponseSession::SendSegment() {
  if (next_segment_ < plan_.segments.size()) {
    const std::string& seg = plan_.segments[next_segment_++];
    evbuffer_add(chunk_, seg.data(), seg.size());
  }
  const bool last = next_segment_ >= plan_.segments.size();
  if (last && plan_.ending == ResponsePlan::Ending::kReset) {
    if (evbuffer_get_length(chunk_) == 0) {
      phase_ = Phase::kDrainBeforeReset;
      Schedule(0);
      return;
    }
    phase_ = Phase::kAwaitFlush;
    evhttp_send_reply_chunk_with_cb(req_, chunk_, &ResponseSession::OnFlushedThunk, this);
    return;
  }
  if (evbuffer_get_length(chunk_) > 0) evhttp_send_reply_chunk(req_, chunk_);
  if (!last) {
    Schedule(plan_.segment_delay_ms);
    return;
  }
  AfterLastSegment();
}

void ResponseSession::AfterLastSegment() {
  if (plan_.ending == ResponsePlan::Ending::kStall) {
    phase_ = Phase::kStalled;
    Schedule(options_.stall_timeout_ms);
    return;
  }
  ReleaseConnection();
  evhttp_send_reply_end(req_);
  req_ = nullptr;
  Finish(Outcome::kCompleted);
}

// Aborts the TCP connection with a RST. SO_LINGER {1, 0} alone is not enough here because
// evhttp_connection_free() calls shutdown(SHUT_WR) first, which would send a FIN; connect()
// with AF_UNSPEC disconnects the socket with a RST right away, and the later shutdown/close
// then have nothing left to send.
void ResponseSession::ResetConnection() {
  if (evcon_ == nullptr) return;
  evhttp_connection_set_closecb(evcon_, nullptr, nullptr);
  const int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon_));
  if (fd >= 0) {
    const linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    sockaddr sa = {};
    sa.sa_family = AF_UNSPEC;
    connect(fd, &sa, sizeof(sa));
  }
  evhttp_connection_free(evcon_);  // also frees req_
  evcon_ = nullptr;
  req_ = nullptr;
}

void ResponseSession::DropConnection() {
  if (evcon_ == nullptr) return;
  evhttp_connection_set_closecb(evcon_, nullptr, nullptr);
  evhttp_connection_free(evcon_);  // also frees req_
  evcon_ = nullptr;
  req_ = nullptr;
}

void ResponseSession::Finish(Outcome outcome) {
  phase_ = Phase::kIdle;
  observer_->OnSessionDone(this, outcome);
  delete this;
}

}  // namespace turnpike::fake_provider
