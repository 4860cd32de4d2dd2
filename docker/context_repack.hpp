// The build context the daemon gets is the one the proxy read: the job's
// tar (plain or compressed) is read entry by entry with libarchive and
// written again as a plain pax tar, so a crafted archive that libarchive
// and Go's archive/tar would read differently (duplicate or overlapping
// headers, odd extensions, trailing data) cannot show the proxy one
// Dockerfile and the daemon another.
#pragma once

#include <cstdint>

#include "common/unique_fd.hpp"
#include "docker/proxy.hpp"

namespace gh::docker {

struct Repacked {
  UniqueFd fd;  // a memfd at offset 0
  uint64_t size = 0;
};

// Reads the context from `in` (from its current offset) and writes the
// repacked tar to a new memfd of at most `max_bytes` (an unpacked bomb is
// refused: 413 "build-context"). Refusals: 400 "build-context" for what is
// not a readable tar.
Checked<Repacked> repack_context(int in, uint64_t max_bytes);

}  // namespace gh::docker
