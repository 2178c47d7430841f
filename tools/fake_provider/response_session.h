// Replays one ResponsePlan on an evhttp request, driven only by libevent timers and socket
// callbacks (never blocking, no threads): first-byte delay, chunked stream segments spaced
// by a timer, and the ending (reply end, TCP reset, or a stall). It watches the client
// connection and, if the client goes away first, frees its state and reports kAborted.
//
// Ownership: a session owns itself. It is created with `new`, started with Start(), and
// deletes itself after telling its Observer how it ended (the observer must not delete it).
// Plans that need no waiting are sent by SendImmediately() without creating a session.
// Not thread-safe: everything runs on the event loop thread that owns the evhttp.
#ifndef TURNPIKE_TOOLS_FAKE_PROVIDER_RESPONSE_SESSION_H_
#define TURNPIKE_TOOLS_FAKE_PROVIDER_RESPONSE_SESSION_H_

#include <event2/event.h>
#include <event2/http.h>

#include <cstddef>

#include "tools/fake_provider/response_plan.h"

namespace turnpike::fake_provider {

class ResponseSession {
 public:
  enum class Outcome {
    kCompleted,  // the response was sent to the end (whatever faults it contained)
    kAborted,    // the client closed the connection first
    kReset,      // the fake dropped the connection (reset fault, stall timeout, shutdown)
  };

  class Observer {
   public:
    virtual ~Observer() = default;
    // Called exactly once, just before the session deletes itself.
    virtual void OnSessionDone(ResponseSession* session, Outcome outcome) = 0;
  };

  struct Options {
    int stall_timeout_ms = 60000;
    int idle_timeout_s = 300;  // restored on the connection once the response is done
  };

  // True when `plan` can be written in full right now (no delays, no special ending).
  static bool CanSendImmediately(const ResponsePlan& plan);
  // Sends such a plan synchronously. `req` is handed back to evhttp.
  static void SendImmediately(evhttp_request* req, const ResponsePlan& plan);

  ResponseSession(event_base* base, evhttp_request* req, ResponsePlan plan, Options options,
                  Observer* observer);
  ResponseSession(const ResponseSession&) = delete;
  ResponseSession& operator=(const ResponseSession&) = delete;

  // Begins sending. May finish (and delete the session) before returning.
  void Start();

  // Server shutdown: stop all timers and callbacks and delete the session without
  // notifying the observer. The connection itself is left to evhttp_free().
  void Abandon();

  bool is_stream() const { return plan_.is_stream; }

 private:
  enum class Phase { kIdle, kFirstByteDelay, kStreaming, kAwaitFlush, kDrainBeforeReset, kStalled };

  ~ResponseSession();

  static void OnTimerThunk(evutil_socket_t fd, short what, void* arg);
  static void OnClosedThunk(evhttp_connection* evcon, void* arg);
  static void OnFlushedThunk(evhttp_connection* evcon, void* arg);

  void OnTimer();
  void OnClientGone();
  void BeginResponse();  // after the first-byte delay
  void SendSegment();    // sends plan_.segments[next_segment_++]
  void AfterLastSegment();
  void ResetConnection();
  void DropConnection();  // plain close (FIN), for the stall timeout
  void WatchConnection();
  void ReleaseConnection();
  void Schedule(int delay_ms);
  void Finish(Outcome outcome);

  // Constant after construction.
  event_base* const base_;
  const Options options_;
  Observer* const observer_;
  const ResponsePlan plan_;

  evhttp_request* req_;
  evhttp_connection* evcon_ = nullptr;
  event* timer_ = nullptr;
  evbuffer* chunk_ = nullptr;
  Phase phase_ = Phase::kIdle;
  size_t next_segment_ = 0;
  int drain_polls_ = 0;
};

}  // namespace turnpike::fake_provider

#endif  // TURNPIKE_TOOLS_FAKE_PROVIDER_RESPONSE_SESSION_H_
