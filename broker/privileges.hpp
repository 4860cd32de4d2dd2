// The broker's own privileges, reduced first thing, whoever started it: a
// hand-run `gatehouse run` as root holds no more than the systemd unit
// grants (packaging/gatehouse-broker.service).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/result.hpp"

namespace gh::broker {

// CAP_SETUID, CAP_SETGID, CAP_CHOWN and CAP_FOWNER (SECURITY.md says why
// each), plus CAP_KILL on hosts without a cgroup v2 hierarchy, where a job
// is ended by signals instead of cgroup.kill.
uint64_t broker_capabilities();

// Must run as root. Reduces the bounding, permitted, effective,
// inheritable and ambient sets to broker_capabilities(), drops every
// supplementary group, sets no_new_privs, and reads every set back.
// Fails closed: an error means the broker must not go on.
Status drop_to_broker_privileges();

// Sends `sig` to `pid`, one of the broker's own children that runs as
// `uid` (the Docker proxy, a parse child, a checkout copier). Without
// CAP_KILL, root may not signal another uid's process; a short-lived child
// that takes that uid first (CAP_SETUID, which the broker holds anyway)
// may. The child is still unreaped, so its pid cannot have been reused.
// A negative pid names the child's process group (what it started).
Status signal_as(uid_t uid, gid_t gid, pid_t pid, int sig);

}  // namespace gh::broker
