// The worker: pid 1 of the job's pid namespace. It runs the steps in order,
// reaps orphans, enforces no_output_timeout, and relays output and results
// to the broker over the channel (fd 3). It trusts the broker, and trusts
// nothing the steps do.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ipc/messages.hpp"

namespace gh::worker {

class Channel {
 public:
  explicit Channel(int fd) : fd_(fd) {}
  int fd() const { return fd_; }
  // Sends one framed message; the worker exits if the broker is gone.
  void send(ipc::Type t, std::string_view payload);
  // Receives one message; nullopt on EOF or a framing error.
  std::optional<ipc::Message> recv();

 private:
  int fd_;
};

// Runs every step of the spec and returns when the job is over and every
// process in the namespace is gone.
void run_job(const ipc::JobSpec& spec, Channel& ch);

}  // namespace gh::worker
