// gatehouse-worker: exec'd by the sandbox entry as the job's pid 1, with no
// capabilities, no_new_privs, Landlock and seccomp already in force, fd 3
// the channel to the broker and 0-2 on /dev/null.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "worker/worker.hpp"

namespace gh::worker {

void Channel::send(ipc::Type t, std::string_view payload) {
  std::string frame = ipc::encode(t, payload);
  for (;;) {
    ssize_t n = ::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(frame.size())) return;
    if (n < 0 && errno == EINTR) continue;
    _exit(3);  // the broker is gone: nothing to report to
  }
}

std::optional<ipc::Message> Channel::recv() {
  // In .bss, not zeroed per call: only the pages a message touches fault in.
  static char buf[ipc::kMaxMessageBytes + 1];
  ssize_t n;
  do n = ::recv(fd_, buf, sizeof buf, MSG_TRUNC);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return std::nullopt;
  if (static_cast<size_t>(n) > sizeof buf) return std::nullopt;  // truncated: over the limit
  auto d = ipc::decode(std::string_view(buf, static_cast<size_t>(n)), ipc::kMaxMessageBytes);
  return d.message;
}

}  // namespace gh::worker

int main() {
  using namespace gh;
  // First of all: the steps run as our uid, and a dumpable pid 1 would let
  // any of them open /proc/1/mem and rewrite the next step's command (or
  // read the job spec's secrets). Not dumpable, /proc/1's files belong to
  // root and ptrace access checks need CAP_SYS_PTRACE, which no job holds.
  // The job's seccomp filter allows prctl (sandbox/seccomp.cpp).
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return 2;
  // fd 3 had to survive execve to get here; job processes must not inherit it.
  if (fcntl(ipc::kWorkerChannelFd, F_SETFD, FD_CLOEXEC) != 0) return 2;
  worker::Channel ch(ipc::kWorkerChannelFd);

  std::string hello;
  ipc::put_u32(hello, ipc::kProtocolVersion);
  ch.send(ipc::Type::Hello, hello);

  auto m = ch.recv();
  if (!m || m->type != ipc::Type::JobSpec) return 2;
  auto spec = ipc::decode_job_spec(m->payload);
  if (!spec) return 2;

  worker::run_job(*spec, ch);
  ch.send(ipc::Type::JobFinished, {});
  return 0;
}
