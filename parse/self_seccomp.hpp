// The allowlist gatehouse-parse applies to itself before it reads a byte
// of its request: reading and writing the fds it has, memory (never
// executable), compiling seccomp filters into a memfd, clocks, futexes and
// exit. No open/openat, no socket, no exec, no fork, no signals to others.
#pragma once

#include <string>

namespace gh::parse {

// Applies the filter to the calling (only) thread; "" when done, else what
// failed. Everything that opens files or probes the kernel on first use
// (OpenSSL's configuration, libseccomp's API level) must have run before.
std::string apply_self_seccomp();

}  // namespace gh::parse
