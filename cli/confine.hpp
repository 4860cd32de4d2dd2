// The `gatehouse run` front end once the broker is started: it only reads
// the broker's events and writes what the operator sees, so it gives up
// everything else first. Job output is hostile bytes; the process that
// formats it holds nothing and can do nothing but write.
#pragma once

#include "common/result.hpp"

namespace gh::cli {

// Root only: setgroups(0), the ids of nobody (65534), no_new_privs, not
// dumpable, then a seccomp allowlist of what rendering needs (read, write,
// poll, memory, signals, wait for the broker). Fails closed.
Status confine_front_end();

// For a child that processes a hostile file and prints the result: as
// confine_front_end when root; otherwise only no_new_privs and the same
// seccomp allowlist (a user cannot change ids, and needs not).
Status confine_self();

}  // namespace gh::cli
