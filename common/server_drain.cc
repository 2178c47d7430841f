#include "common/server_drain.h"

#include <grpc/grpc.h>

#include <thread>

#include "absl/synchronization/notification.h"

namespace turnpike {

class CountingInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit CountingInterceptor(ActiveCallCounter* counter) : counter_(counter) {
    counter_->active_.fetch_add(1, std::memory_order_acq_rel);
  }
  ~CountingInterceptor() override { counter_->active_.fetch_sub(1, std::memory_order_acq_rel); }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  ActiveCallCounter* const counter_;
};

namespace {

class CountingFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingFactory(ActiveCallCounter* counter) : counter_(counter) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new CountingInterceptor(counter_);
  }

 private:
  ActiveCallCounter* const counter_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ActiveCallCounter::Factory() {
  return std::make_unique<CountingFactory>(this);
}

void ShutdownPromptly(grpc::Server& server, absl::Duration grace,
                      const std::function<int()>& active_calls) {
  const absl::Time deadline = absl::Now() + grace;
  absl::Notification shut_down;
  // Server::Shutdown() blocks until every connection is gone; this thread closes idle ones once
  // nothing is in flight. It repeats, because a client may reconnect in the moment before the
  // listeners close (its new connection is then closed on the next turn).
  std::thread closer([&] {
    while (!shut_down.WaitForNotificationWithTimeout(absl::Milliseconds(5))) {
      if (active_calls() == 0) grpc_server_cancel_all_calls(server.c_server());
    }
  });
  server.Shutdown(absl::ToChronoTime(deadline));
  shut_down.Notify();
  closer.join();
}

}  // namespace turnpike
