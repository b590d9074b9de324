// The time source of the emulator core: the store stamps creationTimestamp/managedFields
// with it and the simulated controllers measure rollout delays with it. Tests inject
// FakeClock and advance it by hand.
//
// Thread-safety: implementations are safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace driftless::kube_emulator {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
};

class RealClock : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

// A clock that only moves when told to.
class FakeClock : public Clock {
 public:
  explicit FakeClock(std::chrono::system_clock::time_point start =
                         std::chrono::system_clock::time_point(std::chrono::seconds(1798000000)))
      : now_us_(std::chrono::duration_cast<std::chrono::microseconds>(start.time_since_epoch())
                    .count()) {}
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(std::chrono::microseconds(now_us_.load()));
  }
  void Advance(std::chrono::microseconds d) { now_us_ += d.count(); }

 private:
  std::atomic<long long> now_us_;
};

// RFC 3339 in UTC with second precision: "2026-11-28T10:00:00Z".
std::string Rfc3339(std::chrono::system_clock::time_point t);
// Parses Rfc3339 output (and fractional seconds); returns false on malformed input.
bool ParseRfc3339(const std::string& s, std::chrono::system_clock::time_point* out);

}  // namespace driftless::kube_emulator
