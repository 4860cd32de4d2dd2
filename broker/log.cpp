#include "broker/log.hpp"

#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace gh::broker {

void broker_log(LogLevel level, const std::string& message) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm t{};
  gmtime_r(&tv.tv_sec, &t);
  char stamp[64];
  snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, static_cast<long>(tv.tv_usec / 1000));
  const char* l = level == LogLevel::Info ? "info" : level == LogLevel::Warn ? "warning" : "error";
  std::string line = std::string(stamp) + " " + l + " broker: " + message + "\n";
  // One write per line, so the agent's lines (the same stderr) never cut into it.
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace gh::broker
