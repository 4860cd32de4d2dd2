// Error convention (written down once, used everywhere):
//
//  * Code that runs with full broker privileges returns failures as values:
//    Result<T> holds either a T or an Error, and the caller must look at it.
//    Nothing in the broker throws across a module boundary.
//  * Code that runs in the sandbox child after privileges are partly dropped
//    (sandbox/entry.cpp and the steps it calls) never unwinds: it reports the
//    failed step on the setup pipe and _exit()s. A half-built sandbox must not
//    go on to run anything.
//  * Messages say what failed and what the operator can do about it.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace gh {

struct Error {
  std::string message;
};

// E is Error everywhere but the Docker proxy, whose failures carry an HTTP
// status and a rule name (docker/proxy.hpp: Checked<T>).
template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(E e) : v_(std::move(e)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const E& error() const { return std::get<E>(v_); }

 private:
  std::variant<T, E> v_;
};

// Result<void> spelled as a struct so it can carry only an error.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

inline Error err(std::string m) { return Error{std::move(m)}; }

}  // namespace gh
