// The watchdog (watchdog.h): arrival messages, the polling thread and the failure report.
#include "framework/dist/watchdog.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "framework/core/error.h"
#include "framework/dist/mpi_check.h"

namespace tessera::dist {
namespace {

constexpr int kArrivalTag = 7301;

std::string format_seconds(double s) {
  std::ostringstream out;
  out.precision(s < 10 ? 2 : 0);
  out << std::fixed << s;
  std::string text = out.str();
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  return text;
}

}  // namespace

std::string CollectiveInfo::label() const {
  std::string text = detail::cat(collective_kind_name(kind), " #", sequence);
  if (!name.empty()) text += " (" + name + ")";
  return text;
}

// ---- PendingCollective ----

PendingCollective::PendingCollective(CollectiveInfo info, Watchdog* watchdog, bool polls_mpi)
    : info_(std::move(info)), watchdog_(watchdog), start_(Clock::now()), polls_mpi_(polls_mpi) {
  deadline_ = start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(watchdog->timeout_s()));
}

double PendingCollective::measured_seconds() const { return std::chrono::duration<double>(end_ - start_).count(); }

void PendingCollective::mark_done() {
  end_ = Clock::now();
  CollectiveRecord record{info_.kind, info_.name, info_.sequence, info_.dtype, info_.bytes, measured_seconds()};
  // Counted before it reads as done, so whoever sees it done also sees it in the stats.
  watchdog_->stats().add_completed(record);
  done_.store(true, std::memory_order_release);
}

bool PendingCollective::test() {
  if (done()) return true;
  std::string error;
  bool complete = false;
  if (polls_mpi_) {
    std::lock_guard<std::recursive_timed_mutex> lock(watchdog_->mpi_mutex());
    if (done()) return true;
    complete = poll(error);
    if (complete) mark_done();
  } else {
    std::lock_guard<std::mutex> lock(poll_mutex_);
    if (done()) return true;
    complete = poll(error);
    if (complete) mark_done();
  }
  if (!error.empty())
    watchdog_->fail(info_, std::chrono::duration<double>(Clock::now() - start_).count(), error);
  return complete;
}

bool PendingCollective::host_wait(Clock::time_point until) {
  // Yield for the first millisecond (collectives of up to tens of MiB finish within it, and a
  // sleep overshoots by up to its whole length), then sleep with a growing pause so that waiting
  // ranks leave the cores to the ones still computing.
  const auto spin_until = Clock::now() + std::chrono::milliseconds(1);
  auto pause = std::chrono::microseconds(20);
  const bool poll_arrivals_here = polls_mpi_ && !watchdog_->thread_may_call_mpi();
  while (true) {
    if (test()) return true;
    if (poll_arrivals_here) {
      std::lock_guard<std::recursive_timed_mutex> lock(watchdog_->mpi_mutex());
      watchdog_->poll_arrivals();
    }
    const auto now = Clock::now();
    if (now >= deadline_) watchdog_->fail(info_, watchdog_->timeout_s(), "");
    if (now >= until) return false;
    if (now < spin_until) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(500));
    }
  }
}

void PendingCollective::wait_for_use() {
  host_wait(Clock::time_point::max());
  finish_once();
}

void PendingCollective::finish_once() {
  if (finished_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(finish_mutex_);
  if (finished_.load(std::memory_order_relaxed)) return;
  on_finish();
  finished_.store(true, std::memory_order_release);
}

// ---- Watchdog ----

Watchdog::Watchdog(MPI_Comm world, double timeout_s, bool thread_may_call_mpi, CommStats* stats)
    : timeout_s_(timeout_s), thread_may_call_mpi_(thread_may_call_mpi), stats_(stats),
      main_thread_(std::this_thread::get_id()) {
  TESSERA_CHECK(timeout_s > 0, "dist.timeout_s must be positive, got ", timeout_s);
  TESSERA_MPI_CHECK(MPI_Comm_dup(world, &comm_));
  TESSERA_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  TESSERA_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  TESSERA_MPI_CHECK(MPI_Comm_size(comm_, &world_));
  receives_.resize(static_cast<size_t>(world_));
  arrived_ = std::make_unique<std::atomic<uint64_t>[]>(static_cast<size_t>(world_));
  for (int p = 0; p < world_; ++p) arrived_[p].store(0);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(list_mutex_);
    stop_ = true;
  }
  list_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::set_timeout_s(double seconds) {
  TESSERA_CHECK(seconds > 0, "dist.timeout_s must be positive, got ", seconds);
  timeout_s_.store(seconds);
}

CollectiveInfo Watchdog::enter(CollectiveKind kind, const std::string& name, DType dtype, int64_t count,
                               int64_t bytes) {
  CollectiveInfo info{kind, name, next_sequence_++, dtype, count, bytes};
  stats_->add_issued(kind, dtype, bytes);
  if (world_ == 1) return info;

  ArrivalMessage message{};
  message.sequence = info.sequence;
  message.count = count;
  message.kind = static_cast<uint8_t>(kind);
  message.dtype = static_cast<uint8_t>(dtype);
  std::strncpy(message.name, name.c_str(), sizeof(message.name) - 1);

  PendingSend send;
  send.message = std::make_unique<ArrivalMessage>(message);
  for (int p = 0; p < world_; ++p) {
    if (p == rank_) continue;
    MPI_Request request = MPI_REQUEST_NULL;
    int rc = MPI_Isend(send.message.get(), sizeof(ArrivalMessage), MPI_BYTE, p, kArrivalTag, comm_, &request);
    if (rc != MPI_SUCCESS) fail(info, 0.0, "sending the arrival message failed: " + mpi_error_text(rc));
    send.requests.push_back(request);
    PendingReceive receive;
    receive.expected = message;
    receive.buffer = std::make_unique<ArrivalMessage>();
    rc = MPI_Irecv(receive.buffer.get(), sizeof(ArrivalMessage), MPI_BYTE, p, kArrivalTag, comm_, &receive.request);
    if (rc != MPI_SUCCESS) fail(info, 0.0, "posting the arrival receive failed: " + mpi_error_text(rc));
    receives_[static_cast<size_t>(p)].push_back(std::move(receive));
  }
  sends_.push_back(std::move(send));
  poll_arrivals();
  return info;
}

std::string Watchdog::describe(const ArrivalMessage& m) {
  char name[sizeof(m.name) + 1] = {};
  std::memcpy(name, m.name, sizeof(m.name));
  return detail::cat(collective_kind_name(static_cast<CollectiveKind>(m.kind)), " #", m.sequence,
                     name[0] ? std::string(" (") + name + ")" : std::string(), " of ", m.count, " ",
                     dtype_name(static_cast<DType>(m.dtype)));
}

std::string Watchdog::receive_arrivals() {
  std::string mismatch;
  for (int p = 0; p < world_; ++p) {
    auto& queue = receives_[static_cast<size_t>(p)];
    while (!queue.empty()) {
      int flag = 0;
      const int rc = MPI_Test(&queue.front().request, &flag, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) {
        if (mismatch.empty()) mismatch = detail::cat("receiving from rank ", p, " failed: ", mpi_error_text(rc));
        break;
      }
      if (!flag) break;
      const ArrivalMessage& got = *queue.front().buffer;
      const ArrivalMessage& expected = queue.front().expected;
      const bool same = got.sequence == expected.sequence && got.count == expected.count &&
                        got.kind == expected.kind && got.dtype == expected.dtype &&
                        std::memcmp(got.name, expected.name, sizeof(got.name)) == 0;
      if (!same && mismatch.empty())
        mismatch = detail::cat("collective mismatch: this rank's collective #", expected.sequence, " is ",
                               describe(expected), " but rank ", p, " entered ", describe(got),
                               " (every rank must issue the same collectives in the same order)");
      arrived_[p].store(got.sequence, std::memory_order_relaxed);
      queue.pop_front();
    }
  }
  while (!sends_.empty()) {
    int flag = 0;
    auto& requests = sends_.front().requests;
    if (MPI_Testall(static_cast<int>(requests.size()), requests.data(), &flag, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
      break;
    if (!flag) break;
    sends_.pop_front();
  }
  return mismatch;
}

void Watchdog::poll_arrivals() {
  if (world_ == 1) return;
  const std::string mismatch = receive_arrivals();
  if (!mismatch.empty()) {
    CollectiveInfo none;
    none.sequence = next_sequence_ - 1;
    fail(none, 0.0, mismatch);
  }
}

std::vector<int> Watchdog::missing_ranks(uint64_t sequence) {
  std::vector<int> missing;
  for (int p = 0; p < world_; ++p)
    if (p != rank_ && arrived_[p].load(std::memory_order_relaxed) < sequence) missing.push_back(p);
  return missing;
}

void Watchdog::fail(const CollectiveInfo& info, double waited_s, const std::string& error) {
  if (failing_.exchange(true)) {
    // Another thread is reporting and will end the process; never return.
    std::this_thread::sleep_for(std::chrono::seconds(60));
    std::_Exit(kCollectiveFailureExit);
  }
  // Whatever happens below, the process ends.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(20));
    std::_Exit(kCollectiveFailureExit);
  }).detach();

  std::string mismatch;
  const bool may_poll = thread_may_call_mpi_ || std::this_thread::get_id() == main_thread_;
  if (may_poll && world_ > 1 && mpi_mutex_.try_lock_for(std::chrono::milliseconds(200))) {
    mismatch = receive_arrivals();
    mpi_mutex_.unlock();
  }

  std::ostringstream line;
  const bool is_mismatch = error.rfind("collective mismatch", 0) == 0;
  if (is_mismatch) {
    line << "tessera: " << error << " (detected on rank " << rank_ << ")";
  } else {
    line << "tessera: collective " << info.label();
    if (error.empty()) {
      line << " timed out after " << format_seconds(timeout_s()) << " s on rank " << rank_ << ": ";
    } else {
      line << " failed after " << format_seconds(waited_s) << " s on rank " << rank_ << ": " << error << "; ";
    }
    const std::vector<int> missing = missing_ranks(info.sequence);
    if (world_ == 1) {
      line << "the only rank";
    } else if (missing.empty()) {
      line << "every rank arrived, but the collective did not complete";
    } else {
      line << "rank(s) ";
      for (size_t i = 0; i < missing.size(); ++i) line << (i ? ", " : "") << missing[i];
      line << " did not arrive";
    }
    if (!mismatch.empty()) line << "; " << mismatch;
  }
  line << "\n";
  const std::string text = line.str();
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
  std::fflush(stdout);

  std::map<int, std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(hooks_mutex_);
    hooks = abort_hooks_;
  }
  for (auto& [id, hook] : hooks) {
    try {
      hook();
    } catch (...) {
    }
  }
  std::_Exit(kCollectiveFailureExit);
}

int Watchdog::add_abort_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(hooks_mutex_);
  abort_hooks_[next_hook_] = std::move(hook);
  return next_hook_++;
}

void Watchdog::remove_abort_hook(int id) {
  std::lock_guard<std::mutex> lock(hooks_mutex_);
  abort_hooks_.erase(id);
}

void Watchdog::track(const std::shared_ptr<PendingCollective>& op) {
  {
    std::lock_guard<std::mutex> lock(list_mutex_);
    watched_.push_back(op);
  }
  list_cv_.notify_one();
}

bool Watchdog::wait_idle(double seconds) {
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::shared_ptr<PendingCollective>> snapshot;
  {
    std::lock_guard<std::mutex> lock(list_mutex_);
    snapshot = watched_;
  }
  for (const auto& op : snapshot)
    if (!op->done() && !op->host_wait(until)) return false;
  return true;
}

void Watchdog::run() {
  auto pause = std::chrono::microseconds(50);
  auto last_arrival_poll = Clock::now();
  while (true) {
    std::vector<std::shared_ptr<PendingCollective>> snapshot;
    {
      std::unique_lock<std::mutex> lock(list_mutex_);
      watched_.erase(std::remove_if(watched_.begin(), watched_.end(), [](const auto& op) { return op->done(); }),
                     watched_.end());
      if (watched_.empty() && !stop_) list_cv_.wait_for(lock, std::chrono::milliseconds(50));
      if (stop_) return;
      snapshot = watched_;
    }
    bool progressed = false;
    for (const auto& op : snapshot) {
      if (op->done()) continue;
      if (!op->polls_mpi() || thread_may_call_mpi_) progressed |= op->test();
      if (!op->done() && Clock::now() >= op->deadline()) fail(op->info(), timeout_s(), "");
    }
    const auto now = Clock::now();
    if (thread_may_call_mpi_ && world_ > 1 && now - last_arrival_poll > std::chrono::milliseconds(5)) {
      if (mpi_mutex_.try_lock()) {
        poll_arrivals();
        mpi_mutex_.unlock();
      }
      last_arrival_poll = now;
    }
    if (snapshot.empty()) continue;
    pause = progressed ? std::chrono::microseconds(50) : std::min(pause * 2, std::chrono::microseconds(1000));
    std::this_thread::sleep_for(pause);
  }
}

void Watchdog::shutdown() {
  {
    std::lock_guard<std::mutex> lock(list_mutex_);
    stop_ = true;
  }
  list_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (comm_ == MPI_COMM_NULL) return;
  std::lock_guard<std::recursive_timed_mutex> lock(mpi_mutex_);
  // After the final barrier every peer has sent all its arrival messages; give them a moment
  // to land, then cancel whatever is left so that the communicator can be freed.
  const auto until = Clock::now() + std::chrono::seconds(5);
  auto outstanding = [&] {
    if (!sends_.empty()) return true;
    for (const auto& q : receives_)
      if (!q.empty()) return true;
    return false;
  };
  while (outstanding() && Clock::now() < until) {
    receive_arrivals();
    if (outstanding()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& queue : receives_) {
    for (auto& r : queue) {
      if (r.request == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&r.request);
      MPI_Request_free(&r.request);
    }
    queue.clear();
  }
  for (auto& send : sends_)
    for (auto& request : send.requests)
      if (request != MPI_REQUEST_NULL) MPI_Request_free(&request);
  sends_.clear();
  MPI_Comm_free(&comm_);
  comm_ = MPI_COMM_NULL;
}

}  // namespace tessera::dist
